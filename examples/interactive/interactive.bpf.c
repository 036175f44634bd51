//go:build ignore

/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * interactive - a weighted virtual-time scheduler whose preemption policy
 * is set per class of work, built on preempt.bpf.h: which wakeups preempt
 * which running tasks, how long slices are, and whether a task yields at
 * the end of its slice or runs on while no higher class waits.
 *
 * Each class has a DSQ ordered by weighted virtual time (one vtime clock
 * per class, as in pair); preempt.bpf.h picks the class a CPU runs next
 * and whom a waking task preempts.
 */
#include <scxkit/scx.bpf.h>
#include <scxkit/runtime.bpf.h>
#include <scxkit/vtime.bpf.h>
#include <scxkit/preempt.bpf.h>

struct interactive_stats {
	u64 enqueued;   /* tasks queued on a class DSQ */
	u64 dispatched; /* dispatch calls that found something to run */
	u64 idle;       /* dispatch calls that left the CPU idle */
};
SK_STATS_DEFINE(struct interactive_stats);

/* The vtime clocks: virtual time of the task that started running last, per class. */
static u64 vtime_now[SK_PREEMPT_MAX_CLASSES];

/* class_clock - the vtime clock of @p's class. */
static __always_inline u64 *class_clock(struct task_struct *p)
{
	return sk_vtime_clock(vtime_now, SK_PREEMPT_MAX_CLASSES, sk_preempt_class_of(p));
}

SK_OPS(s32, interactive_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	return sk_preempt_select_cpu(p, prev_cpu, wake_flags);
}

SK_OPS(void, interactive_runnable, struct task_struct *p, u64 enq_flags)
{
	sk_preempt_runnable(p, enq_flags);
}

SK_OPS(void, interactive_enqueue, struct task_struct *p, u64 enq_flags)
{
	/* Credit at most one slice of sleep. */
	u64 vtime = sk_vtime_queue(p, class_clock(p), sk_slice());

	sk_stat_inc(enqueued);
	sk_preempt_enqueue(p, enq_flags, vtime);
}

SK_OPS(void, interactive_dispatch, s32 cpu, struct task_struct *prev)
{
	if (sk_preempt_dispatch(cpu, prev))
		sk_stat_inc(dispatched);
	else
		sk_stat_inc(idle);
}

SK_OPS(void, interactive_running, struct task_struct *p)
{
	u64 *clock = class_clock(p);

	sk_runtime_start(p);
	sk_preempt_running(p);
	sk_vtime_running(p, clock);
}

SK_OPS(void, interactive_stopping, struct task_struct *p, bool runnable)
{
	sk_preempt_stopping(p, runnable);
	sk_vtime_charge(p, sk_runtime_used(p));
}

SK_OPS(void, interactive_tick, struct task_struct *p)
{
	sk_preempt_tick(p);
}

SK_OPS(bool, interactive_yield, struct task_struct *from, struct task_struct *to)
{
	return sk_preempt_yield(from, to);
}

SK_OPS(void, interactive_enable, struct task_struct *p)
{
	sk_preempt_enable(p);
	sk_vtime_enable(p, class_clock(p));
}

SK_OPS_SLEEPABLE(s32, interactive_init)
{
	return sk_preempt_init();
}

SK_OPS(void, interactive_exit, struct scx_exit_info *ei)
{
	sk_exit_record(ei);
}

SK_SCHEDULER(interactive_ops,
	.select_cpu = (void *)interactive_select_cpu,
	.runnable   = (void *)interactive_runnable,
	.enqueue    = (void *)interactive_enqueue,
	.dispatch   = (void *)interactive_dispatch,
	.running    = (void *)interactive_running,
	.stopping   = (void *)interactive_stopping,
	.tick       = (void *)interactive_tick,
	.yield      = (void *)interactive_yield,
	.enable     = (void *)interactive_enable,
	.init       = (void *)interactive_init,
	.exit       = (void *)interactive_exit);
