//go:build ignore

/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * sched - every component at once: topology picks idle CPUs, dsq keeps
 * one queue per (LLC domain, class), lb moves tasks between the domains,
 * preempt classifies tasks and orders the classes at dispatch, and smt
 * keeps groups of classes off each other's SMT siblings, filtering which
 * classes a CPU may take. No component owns a callback but dsq; the
 * scheduler composes them here.
 *
 * A task's domain is the one lb gives it; its class is preempt's, as a
 * dsq class; its group is smt's for that class.
 */
#include <scxkit/scx.bpf.h>
#include <scxkit/runtime.bpf.h>
#include <scxkit/vtime.bpf.h>
#include <scxkit/topology.bpf.h>
#include <scxkit/dsq.bpf.h>
#include <scxkit/lb.bpf.h>
/* smt before preempt: preempt then prefers victims whose core smt lets run the waker. */
#include <scxkit/smt.bpf.h>
#include <scxkit/preempt.bpf.h>

struct combined_stats {
	u64 idle_picks;   /* wakeups given an idle CPU of their domain */
	u64 idle_elsewhere; /* idle CPU outside the domain, or forced idle: kicked, left alone */
};
SK_STATS_DEFINE(struct combined_stats);

/* task_domain - @p's lb domain, or its CPU's before lb tracks it. */
static __always_inline u32 task_domain(struct task_struct *p)
{
	struct sk_lb_task *t = sk_lb_task_of(p);

	return t ? t->domain : sk_dsq_of_cpu(scx_bpf_task_cpu(p));
}

/* task_class - @p's preempt class as a dsq class. */
static __always_inline u32 task_class(struct task_struct *p)
{
	return sk_preempt_dsq_class(sk_preempt_class_of(p));
}

SK_OPS(s32, sched_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	u32 level;
	s32 cpu = sk_topo_pick_idle_cpu(p, prev_cpu, &level);

	if (cpu < 0)
		return prev_cpu;
	/*
	 * No insertion into the local DSQ here: smt lets only the CPU
	 * itself, in ops.dispatch, decide what it runs next. An idle CPU
	 * outside the task's domain is for lb to use, and one whose core
	 * smt holds for another group (forced idle) would not run the task:
	 * it was claimed (its idle bit cleared), so kick it to go idle
	 * again, visibly, and leave the task to ops.enqueue, which looks
	 * for a CPU that fits.
	 */
	if (sk_dsq_of_cpu(cpu) != task_domain(p) || !sk_smt_allows_on(cpu, task_class(p))) {
		sk_stat_inc(idle_elsewhere);
		scx_bpf_kick_cpu(cpu, SK_KICK_IDLE);
		return prev_cpu;
	}
	sk_stat_inc(idle_picks);
	return cpu;
}

SK_OPS(void, sched_runnable, struct task_struct *p, u64 enq_flags)
{
	sk_preempt_runnable(p, enq_flags);
	sk_lb_runnable(p);
}

SK_OPS(void, sched_quiescent, struct task_struct *p, u64 deq_flags)
{
	sk_lb_quiescent(p);
}

SK_OPS(void, sched_enqueue, struct task_struct *p, u64 enq_flags)
{
	u32 dom = sk_lb_domain(p, sk_dsq_of_cpu(scx_bpf_task_cpu(p)));
	u32 cls = task_class(p);
	u64 vtime;

	if (sk_smt_enqueue_on(p, enq_flags, cls, sk_preempt_queue_slice(p, false)))
		return;
	vtime = sk_vtime_queue(p, sk_dsq_class_clock(dom, cls), sk_slice());
	sk_preempt_enqueue_on(p, enq_flags, vtime, dom);
}

SK_OPS(void, sched_dispatch, s32 cpu, struct task_struct *prev)
{
	u64 allowed = sk_smt_dispatch_on(cpu, prev, prev ? task_class(prev) : 0);

	if (allowed)
		sk_smt_dispatched_on(cpu, sk_preempt_dispatch_on_mask(cpu, prev, allowed));
}

SK_OPS(void, sched_running, struct task_struct *p)
{
	u32 cls = task_class(p);

	sk_runtime_start(p);
	sk_preempt_running(p);
	sk_smt_running_on(p, cls);
	sk_vtime_running(p, sk_dsq_class_clock(task_domain(p), cls));
}

SK_OPS(void, sched_stopping, struct task_struct *p, bool runnable)
{
	u64 used = sk_runtime_used(p);

	sk_preempt_stopping(p, runnable);
	sk_smt_stopping(p, runnable);
	sk_vtime_charge(p, used);
	sk_lb_charge(p, used);
}

SK_OPS(void, sched_tick, struct task_struct *p)
{
	sk_preempt_tick(p);
}

SK_OPS(bool, sched_yield, struct task_struct *from, struct task_struct *to)
{
	return sk_preempt_yield(from, to);
}

SK_OPS(void, sched_update_idle, s32 cpu, bool idle)
{
	sk_smt_update_idle(cpu, idle);
}

SK_OPS(void, sched_set_cpumask, struct task_struct *p, const struct cpumask *cpumask)
{
	sk_lb_set_cpumask(p, cpumask);
}

SK_OPS(void, sched_enable, struct task_struct *p)
{
	u32 dom = sk_dsq_of_cpu(scx_bpf_task_cpu(p));

	sk_preempt_enable(p);
	if (dom != SK_DSQ_NONE)
		sk_lb_task_enable(p, dom);
	sk_vtime_enable(p, sk_dsq_class_clock(task_domain(p), task_class(p)));
}

SK_OPS(void, sched_disable, struct task_struct *p)
{
	sk_smt_disable(p);
	sk_lb_task_disable(p);
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
	.select_cpu  = (void *)sched_select_cpu,
	.runnable    = (void *)sched_runnable,
	.quiescent   = (void *)sched_quiescent,
	.enqueue     = (void *)sched_enqueue,
	.dispatch    = (void *)sched_dispatch,
	.running     = (void *)sched_running,
	.stopping    = (void *)sched_stopping,
	.tick        = (void *)sched_tick,
	.yield       = (void *)sched_yield,
	.update_idle = (void *)sched_update_idle,
	.set_cpumask = (void *)sched_set_cpumask,
	.enable      = (void *)sched_enable,
	.disable     = (void *)sched_disable,
	.init        = (void *)sched_init,
	.exit        = (void *)sched_exit);
