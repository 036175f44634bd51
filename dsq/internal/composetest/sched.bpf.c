//go:build ignore

/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * sched - dsq and preempt composed: a task's domain is the dsq domain of
 * the CPU it last ran on; it waits in dsq's DSQ of (domain, class), the
 * class preempt.bpf.h gives it, ordered by weighted virtual time (one
 * clock per class). preempt orders the classes at dispatch and picks
 * idle CPUs and victims of wakeups within the task's domain. No component
 * owns a callback: the scheduler composes them here.
 */
#include <scxkit/scx.bpf.h>
#include <scxkit/runtime.bpf.h>
#include <scxkit/vtime.bpf.h>
#include <scxkit/topology.bpf.h>
#include <scxkit/dsq.bpf.h>
#include <scxkit/preempt.bpf.h>

static __always_inline u32 task_domain(struct task_struct *p)
{
	return sk_dsq_of_cpu(scx_bpf_task_cpu(p));
}

/* The vtime clock of @p's queue: its class in the domain of its CPU. */
static __always_inline u64 *class_clock(struct task_struct *p)
{
	return sk_dsq_class_clock(task_domain(p), sk_preempt_class_of(p));
}

SK_OPS(s32, sched_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	return sk_preempt_select_cpu_on(p, prev_cpu, wake_flags, task_domain(p));
}

SK_OPS(void, sched_runnable, struct task_struct *p, u64 enq_flags)
{
	sk_preempt_runnable(p, enq_flags);
}

SK_OPS(void, sched_enqueue, struct task_struct *p, u64 enq_flags)
{
	u64 vtime = sk_vtime_queue(p, class_clock(p), sk_slice());

	sk_preempt_enqueue_on(p, enq_flags, vtime, task_domain(p));
}

SK_OPS(void, sched_dispatch, s32 cpu, struct task_struct *prev)
{
	sk_preempt_dispatch_on(cpu, prev);
}

SK_OPS(void, sched_running, struct task_struct *p)
{
	sk_runtime_start(p);
	sk_preempt_running(p);
	sk_vtime_running(p, class_clock(p));
}

SK_OPS(void, sched_stopping, struct task_struct *p, bool runnable)
{
	sk_preempt_stopping(p, runnable);
	sk_vtime_charge(p, sk_runtime_used(p));
}

SK_OPS(void, sched_tick, struct task_struct *p)
{
	sk_preempt_tick(p);
}

SK_OPS(bool, sched_yield, struct task_struct *from, struct task_struct *to)
{
	return sk_preempt_yield(from, to);
}

SK_OPS(void, sched_enable, struct task_struct *p)
{
	sk_preempt_enable(p);
	sk_vtime_enable(p, class_clock(p));
}

SK_OPS_SLEEPABLE(s32, sched_init)
{
	return sk_dsq_create_all();
}

SK_OPS(void, sched_exit, struct scx_exit_info *ei)
{
	sk_exit_record(ei);
}

SK_SCHEDULER(sched_ops,
	.select_cpu = (void *)sched_select_cpu,
	.runnable   = (void *)sched_runnable,
	.enqueue    = (void *)sched_enqueue,
	.dispatch   = (void *)sched_dispatch,
	.running    = (void *)sched_running,
	.stopping   = (void *)sched_stopping,
	.tick       = (void *)sched_tick,
	.yield      = (void *)sched_yield,
	.enable     = (void *)sched_enable,
	.init       = (void *)sched_init,
	.exit       = (void *)sched_exit);
