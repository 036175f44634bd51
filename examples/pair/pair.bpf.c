//go:build ignore

/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * pair - SMT isolation: hardware threads of one core run tasks of one
 * class (an isolated cgroup, or the system class of all other tasks) at a
 * time, built on smt.bpf.h.
 *
 * Each class has a DSQ ordered by weighted virtual time (one vtime clock
 * per class); smt.bpf.h decides which class a CPU serves and when a core
 * changes hands. The scheduler adds the vtime bookkeeping (vtime.bpf.h).
 */
#include <scxkit/scx.bpf.h>
#include <scxkit/runtime.bpf.h>
#include <scxkit/vtime.bpf.h>
#include <scxkit/smt.bpf.h>

struct pair_stats {
	u64 enqueued;   /* tasks queued on a class DSQ */
	u64 dispatched; /* dispatch calls that found something to run */
	u64 idle;       /* dispatch calls that left the CPU idle */
};
SK_STATS_DEFINE(struct pair_stats);

/* The vtime clocks: virtual time of the task that started running last, per class. */
static u64 vtime_now[SK_SMT_MAX_CLASSES];

/* class_clock - the vtime clock of @p's class. */
static __always_inline u64 *class_clock(struct task_struct *p)
{
	return sk_vtime_clock(vtime_now, SK_SMT_MAX_CLASSES, sk_smt_class_of(p));
}

SK_OPS(s32, pair_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	return sk_smt_select_cpu(p, prev_cpu, wake_flags);
}

SK_OPS(void, pair_enqueue, struct task_struct *p, u64 enq_flags)
{
	/* Credit at most one slice of sleep. */
	u64 vtime = sk_vtime_queue(p, class_clock(p), sk_slice());

	sk_stat_inc(enqueued);
	sk_smt_enqueue(p, enq_flags, sk_slice(), vtime);
}

SK_OPS(void, pair_dispatch, s32 cpu, struct task_struct *prev)
{
	if (sk_smt_dispatch(cpu, prev))
		sk_stat_inc(dispatched);
	else
		sk_stat_inc(idle);
}

SK_OPS(void, pair_running, struct task_struct *p)
{
	u64 *clock = class_clock(p);

	sk_runtime_start(p);
	sk_smt_running(p);
	sk_vtime_running(p, clock);
}

SK_OPS(void, pair_stopping, struct task_struct *p, bool runnable)
{
	sk_smt_stopping(p, runnable);
	sk_vtime_charge(p, sk_runtime_used(p));
}

SK_OPS(void, pair_update_idle, s32 cpu, bool idle)
{
	sk_smt_update_idle(cpu, idle);
}

SK_OPS(void, pair_disable, struct task_struct *p)
{
	sk_smt_disable(p);
}

SK_OPS(void, pair_enable, struct task_struct *p)
{
	sk_vtime_enable(p, class_clock(p));
}

SK_OPS_SLEEPABLE(s32, pair_init)
{
	return sk_smt_init();
}

SK_OPS(void, pair_exit, struct scx_exit_info *ei)
{
	sk_exit_record(ei);
}

SK_SCHEDULER(pair_ops,
	.select_cpu  = (void *)pair_select_cpu,
	.enqueue     = (void *)pair_enqueue,
	.dispatch    = (void *)pair_dispatch,
	.running     = (void *)pair_running,
	.stopping    = (void *)pair_stopping,
	.update_idle = (void *)pair_update_idle,
	.enable      = (void *)pair_enable,
	.disable     = (void *)pair_disable,
	.init        = (void *)pair_init,
	.exit        = (void *)pair_exit);
