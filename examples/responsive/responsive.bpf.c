//go:build ignore

/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * responsive - a general-purpose scheduler that needs no configuration:
 * it finds latency-sensitive tasks by how they run and lets their wakeups
 * preempt CPU-bound work (behavior.bpf.h), places wakeups on idle CPUs
 * nearest their previous one, whole idle cores first (topology.bpf.h),
 * and queues the rest in weighted virtual time order (dsq.bpf.h): by
 * default on a DSQ per CPU, from which idle CPUs steal nearest first; or
 * on a DSQ per LLC, with the load balanced between the LLCs from the
 * tasks' duty cycles (lb.bpf.h) when there is more than one.
 */
#include <scxkit/scx.bpf.h>
#include <scxkit/topology.bpf.h>
#include <scxkit/dsq.bpf.h>
#include <scxkit/lb.bpf.h>
#include <scxkit/behavior.bpf.h>

struct responsive_stats {
	u64 idle SK_STAT_HELP("Wakeups placed on an idle CPU.");
	u64 enqueued SK_STAT_HELP("Tasks queued on their domain's DSQ.");
	u64 kicked SK_STAT_HELP("Idle CPUs woken for a task queued in their domain.");
	u64 shortened SK_STAT_HELP("Slices ended early at a tick because tasks waited in the domain.");
	u64 idle_enqueued SK_STAT_HELP("Tasks queued by ops.enqueue straight onto a CPU that was idle.");
};
SK_STATS_DEFINE(struct responsive_stats);

/*
 * balance - whether the lb component runs: set before load when the
 * machine has more than one LLC. With one there is nothing to balance, and
 * skipping lb's hooks saves their bookkeeping at every wakeup and switch.
 */
const volatile bool balance;

/*
 * min_slice_ns - under contention a task's slice ends at the first tick
 * after it ran this long (sk_dsq_tick); 0 keeps whole slices.
 */
const volatile u64 min_slice_ns = 3000000;

static __always_inline u32 task_domain(struct task_struct *p)
{
	struct sk_lb_task *t = balance ? sk_lb_task_of(p) : NULL;

	return t ? t->domain : sk_dsq_of_cpu(scx_bpf_task_cpu(p));
}

SK_OPS(s32, responsive_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	u32 level;
	s32 cpu;

	sk_behavior_select(p, wake_flags);
	cpu = sk_topo_pick_idle_cpu(p, prev_cpu, &level);
	if (cpu >= 0) {
		sk_stat_inc(idle);
		sk_dsq_insert(p, SK_DSQ_LOCAL, sk_slice(), 0);
		return cpu;
	}
	cpu = sk_behavior_affine_cpu(p, wake_flags);
	if (cpu >= 0) {
		sk_dsq_insert(p, SK_DSQ_LOCAL, sk_slice(), 0);
		return cpu;
	}
	return prev_cpu;
}

SK_OPS(void, responsive_enqueue, struct task_struct *p, u64 enq_flags)
{
	s32 cpu = scx_bpf_task_cpu(p);
	u32 own, dom, level;
	bool looked = false; /* a look for an idle CPU of @p's just found none */

	if (sk_behavior_preempt_wakeup(p, enq_flags, sk_slice()))
		return;
	/*
	 * A task that did not pass through ops.select_cpu (a slice that
	 * ended, a task that may use one CPU) may find an idle CPU: run it
	 * there now rather than queue it for a steal. A wakeup of a task that
	 * may use more than one CPU did pass through it, which found none a
	 * moment ago. A task that may not migrate right now can only go where
	 * it is.
	 */
	if (!p->migration_disabled) {
		looked = (enq_flags & SK_ENQ_WAKEUP) && p->nr_cpus_allowed > 1;
		if (!looked) {
			s32 idle = sk_topo_pick_idle_cpu(p, cpu, &level);

			if (idle >= 0) {
				sk_stat_inc(idle_enqueued);
				/* The kernel wakes the idle CPU for it. */
				sk_dsq_insert(p, SK_DSQ_LOCAL_ON | idle, sk_slice(), enq_flags);
				return;
			}
			looked = true;
		}
	}
	own = dom = sk_dsq_of_cpu(cpu);
	if (balance)
		dom = sk_lb_domain(p, dom);
	sk_stat_inc(enqueued);
	if (!sk_dsq_enqueue_vtime(p, dom, sk_slice(), enq_flags)) {
		sk_dsq_insert(p, SK_DSQ_GLOBAL, sk_slice(), enq_flags);
		return;
	}
	/*
	 * Kick an idle CPU of the domain, unless a look just found none (it
	 * costs a look at the idle mask at every enqueue) and the task stays
	 * in its CPU's domain.
	 */
	if ((!looked || dom != own) && sk_dsq_kick_idle(p, dom))
		sk_stat_inc(kicked);
}

SK_OPS(void, responsive_dispatch, s32 cpu, struct task_struct *prev)
{
	sk_dsq_dispatch(cpu);
}

SK_OPS(void, responsive_tick, struct task_struct *p)
{
	if (min_slice_ns && sk_dsq_tick(p, sk_dsq_of_cpu(scx_bpf_task_cpu(p)), sk_slice(), min_slice_ns))
		sk_stat_inc(shortened);
}

SK_OPS(void, responsive_runnable, struct task_struct *p, u64 enq_flags)
{
	if (balance)
		sk_lb_runnable(p);
}

SK_OPS(void, responsive_quiescent, struct task_struct *p, u64 deq_flags)
{
	if (balance)
		sk_lb_quiescent(p);
}

SK_OPS(void, responsive_running, struct task_struct *p)
{
	sk_behavior_running(p);
	sk_dsq_started(p, task_domain(p));
}

SK_OPS(void, responsive_stopping, struct task_struct *p, bool runnable)
{
	u64 used = sk_behavior_stopping(p, runnable);

	sk_dsq_charge(p, used);
	if (balance)
		sk_lb_charge(p, used);
}

SK_OPS(void, responsive_enable, struct task_struct *p)
{
	u32 dom = sk_dsq_of_cpu(scx_bpf_task_cpu(p));

	p->scx.dsq_vtime = 0;
	if (balance && dom != SK_DSQ_NONE)
		sk_lb_task_enable(p, dom);
}

SK_OPS(void, responsive_set_cpumask, struct task_struct *p, const struct cpumask *cpumask)
{
	if (balance)
		sk_lb_set_cpumask(p, cpumask);
}

SK_OPS(void, responsive_disable, struct task_struct *p)
{
	if (balance)
		sk_lb_task_disable(p);
}

SK_OPS_SLEEPABLE(s32, responsive_init)
{
	return sk_dsq_create_all();
}

SK_OPS(void, responsive_exit, struct scx_exit_info *ei)
{
	sk_exit_record(ei);
}

SK_SCHEDULER(responsive_ops,
	.select_cpu  = (void *)responsive_select_cpu,
	.enqueue     = (void *)responsive_enqueue,
	.dispatch    = (void *)responsive_dispatch,
	.tick        = (void *)responsive_tick,
	.runnable    = (void *)responsive_runnable,
	.quiescent   = (void *)responsive_quiescent,
	.running     = (void *)responsive_running,
	.stopping    = (void *)responsive_stopping,
	.set_cpumask = (void *)responsive_set_cpumask,
	.enable      = (void *)responsive_enable,
	.disable     = (void *)responsive_disable,
	.init        = (void *)responsive_init,
	.exit        = (void *)responsive_exit);
