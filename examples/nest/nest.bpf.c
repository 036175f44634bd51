//go:build ignore

/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * nest - a core-packing scheduler: work runs on a small "primary nest" of
 * CPUs that grows only when work waits, and CPUs left idle leave it, so a
 * light load keeps few CPUs busy (the others stay in deep idle states) and
 * a heavy one spreads over all of them.
 *
 * The sets are CPU sets (cpuset.bpf.h) that Go reads as variables:
 *   primary  the CPUs work runs on; never fewer than min_primary;
 *   reserve  every other CPU.
 *
 * ops.select_cpu claims the lowest idle primary CPU for a waking task. When every primary CPU is busy the task
 * waits in the queue, unless this is the impatience-th such wakeup in a
 * row: then the nest grows by an idle reserve CPU, which the task takes
 * (scx_nest's "impatience"). ops.enqueue queues the other tasks (preempted, yielding,
 * none idle at wakeup) by weighted virtual time in one shared DSQ and
 * wakes an idle primary CPU for them; with none, the nest grows by one
 * idle reserve CPU when more tasks wait than the nest has CPUs, or when
 * the task may not run on any primary CPU; a reserve CPU that takes
 * queued work joins the nest. A periodic timer (timer.bpf.h)
 * moves primary CPUs that have been idle for shrink_after_ns back to the
 * reserve, from the idle times the idle component records
 * (idle.bpf.h, ops.update_idle).
 *
 * Tasks bound to one CPU (per-CPU kernel threads) run on that CPU, in or
 * out of the nest.
 */
#include <scxkit/scx.bpf.h>
#include <scxkit/runtime.bpf.h>
#include <scxkit/vtime.bpf.h>
#include <scxkit/cpuset.bpf.h>
#include <scxkit/idle.bpf.h>
#include <scxkit/timer.bpf.h>

#define SHARED_DSQ 0

/* Set by the Go side before load: -shrink-after, -sweep, -min-nest, -impatience. */
const volatile u64 shrink_after_ns = 10 * 1000 * 1000;
const volatile u64 sweep_ns = 5 * 1000 * 1000;
const volatile u32 min_primary = 1;
const volatile u64 impatience = 2;

/* Wakeups in a row that found no idle primary CPU. */
static u64 misses;

/* The nests. Go reads them with package cpuset. */
struct sk_cpuset primary SEC(".bss");
struct sk_cpuset reserve SEC(".bss");

struct nest_stats {
	u64 direct SK_STAT_HELP("Waking tasks placed on an idle primary CPU.");
	u64 queued SK_STAT_HELP("Tasks queued on the shared DSQ.");
	u64 pinned SK_STAT_HELP("Tasks bound to one CPU, queued on that CPU.");
	u64 dispatched SK_STAT_HELP("Tasks moved from the shared DSQ to a CPU.");
	u64 grew_wakeup SK_STAT_HELP("CPUs added to the nest for a waking task that found every nest CPU busy.");
	u64 grew_waiting SK_STAT_HELP("CPUs added to the nest because more tasks waited than it had CPUs.");
	u64 grew_dispatch SK_STAT_HELP("Reserve CPUs that took queued work and joined the nest.");
	u64 demoted SK_STAT_HELP("Idle CPUs moved from the primary nest to the reserve.");
	u64 sweeps SK_STAT_HELP("Runs of the sweep timer.");
};
SK_STATS_DEFINE(struct nest_stats);

struct nest_gauges {
	u64 primary_cpus SK_STAT_HELP("CPUs in the primary nest.");
};
SK_GAUGES_DEFINE(struct nest_gauges);

/* The kernel's nr_cpu_ids, from ops.init. */
static u32 nr_cpus;

/* The vtime clock: virtual time of the task that started running last. */
static u64 vtime_now;

SK_TIMER_DEFINE(sweep);

/* promote - move @cpu from the reserve into the primary nest. */
static __always_inline bool promote(s32 cpu)
{
	if (!sk_cpuset_test_and_clear(&reserve, cpu))
		return false;
	sk_cpuset_set(&primary, cpu);
	sk_gauge_set(primary_cpus, sk_cpuset_weight(&primary));
	return true;
}

SK_OPS(s32, nest_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	struct sk_cpuset idle;
	s32 cpu;

	/* One look at the idle CPUs p may use, for both nests. */
	if (!sk_cpuset_idle_view(&idle, p, SK_IDLE_ANY))
		return prev_cpu; /* none idle: queued by ops.enqueue */
	/*
	 * The lowest idle primary CPU, not prev_cpu: packing from the bottom
	 * lets the nest's top CPUs go idle long enough to leave it.
	 */
	cpu = sk_cpuset_claim(&idle, &primary, -1);
	if (cpu >= 0) {
		SK_WRITE_ONCE(misses, 0);
	} else {
		/*
		 * Every primary CPU is busy. A one-off collision waits in the
		 * queue; the impatience-th miss in a row grows the nest by one,
		 * which this task takes.
		 */
		if (__sync_add_and_fetch(&misses, 1) < impatience)
			return prev_cpu;
		cpu = sk_cpuset_claim(&idle, &reserve, prev_cpu);
		if (cpu < 0)
			return prev_cpu;
		SK_WRITE_ONCE(misses, 0);
		if (promote(cpu))
			sk_stat_inc(grew_wakeup);
	}
	sk_stat_inc(direct);
	sk_dsq_insert(p, SK_DSQ_LOCAL, sk_slice(), 0);
	return cpu;
}

/* may_run_in_primary - whether @p may run on some primary CPU. */
static __always_inline bool may_run_in_primary(const struct task_struct *p)
{
	struct sk_cpuset allowed;

	/* Most tasks may run anywhere: no copy of their mask. */
	if (p->nr_cpus_allowed >= nr_cpus)
		return true;
	sk_cpuset_from_cpumask(&allowed, p->cpus_ptr, nr_cpus);
	return sk_cpuset_first_and(&allowed, &primary) >= 0;
}

SK_OPS(void, nest_enqueue, struct task_struct *p, u64 enq_flags)
{
	s32 cpu;

	if (p->nr_cpus_allowed == 1) {
		cpu = scx_bpf_task_cpu(p);
		sk_stat_inc(pinned);
		sk_dsq_insert(p, SK_DSQ_LOCAL_ON | cpu, sk_slice(), enq_flags);
		scx_bpf_kick_cpu(cpu, SK_KICK_IDLE);
		return;
	}
	sk_stat_inc(queued);
	scx_bpf_dsq_insert_vtime(p, SHARED_DSQ, sk_slice(), sk_vtime_queue(p, &vtime_now, sk_slice()), enq_flags);

	/* An idle primary CPU takes it. */
	cpu = sk_cpuset_claim_idle(&primary, p, -1, SK_IDLE_ANY);
	if (cpu < 0 && (scx_bpf_dsq_nr_queued(SHARED_DSQ) > sk_cpuset_weight(&primary) || !may_run_in_primary(p))) {
		/* Work waits: the nest grows by an idle reserve CPU. */
		cpu = sk_cpuset_claim_idle(&reserve, p, -1, SK_IDLE_ANY);
		if (cpu >= 0 && promote(cpu))
			sk_stat_inc(grew_waiting);
	}
	if (cpu >= 0)
		scx_bpf_kick_cpu(cpu, SK_KICK_IDLE);
}

SK_OPS(void, nest_dispatch, s32 cpu, struct task_struct *prev)
{
	if (!sk_dsq_move_to_local(SHARED_DSQ))
		return;
	sk_stat_inc(dispatched);
	/* A reserve CPU that takes queued work (woken for a bound task, or
	 * kicked) is doing the nest's work: it joins. */
	if (sk_cpuset_test(&reserve, cpu) && promote(cpu))
		sk_stat_inc(grew_dispatch);
}

SK_OPS(void, nest_running, struct task_struct *p)
{
	sk_runtime_start(p);
	sk_vtime_running(p, &vtime_now);
}

SK_OPS(void, nest_stopping, struct task_struct *p, bool runnable)
{
	sk_vtime_charge(p, sk_runtime_used(p));
}

SK_OPS(void, nest_enable, struct task_struct *p)
{
	sk_vtime_enable(p, &vtime_now);
}

SK_OPS(void, nest_update_idle, s32 cpu, bool idle)
{
	sk_idle_update(cpu, idle);
}

/*
 * The sweep: every sweep_ns, primary CPUs idle for shrink_after_ns or
 * longer go back to the reserve, in CPU order, as long as the nest keeps
 * min_primary CPUs.
 */
SK_TIMER_CALLBACK(nest_sweep, struct sk_timer *t)
{
	u64 now = bpf_ktime_get_ns();
	u32 weight = sk_cpuset_weight(&primary);
	s32 cpu = -1;
	u32 i;

	sk_stat_inc(sweeps);
	bpf_for(i, 0, SK_CPUSET_MAX_CPUS) {
		if (weight <= min_primary)
			break;
		cpu = sk_cpuset_next(&primary, cpu + 1);
		if (cpu < 0)
			break;
		if (sk_idle_for(cpu, now) < shrink_after_ns)
			continue;
		if (sk_cpuset_test_and_clear(&primary, cpu)) {
			sk_cpuset_set(&reserve, cpu);
			sk_stat_inc(demoted);
			weight--;
		}
	}
	sk_gauge_set(primary_cpus, sk_cpuset_weight(&primary));
}

SK_OPS_SLEEPABLE(s32, nest_init)
{
	u32 cpu, n = scx_bpf_nr_cpu_ids();

	nr_cpus = n;
	/* The nest starts with the first min_primary CPUs, the rest in reserve. */
	bpf_for(cpu, 0, SK_CPUSET_MAX_CPUS) {
		if (cpu >= n)
			break;
		if (cpu < min_primary)
			sk_cpuset_set(&primary, cpu);
		else
			sk_cpuset_set(&reserve, cpu);
	}
	sk_gauge_set(primary_cpus, sk_cpuset_weight(&primary));
	if (sk_timer_start(&sweep, sweep_ns, nest_sweep))
		return -1;
	return scx_bpf_create_dsq(SHARED_DSQ, -1);
}

SK_OPS(void, nest_exit, struct scx_exit_info *ei)
{
	sk_exit_record(ei);
}

SK_SCHEDULER(nest_ops,
	.select_cpu  = (void *)nest_select_cpu,
	.enqueue     = (void *)nest_enqueue,
	.dispatch    = (void *)nest_dispatch,
	.running     = (void *)nest_running,
	.stopping    = (void *)nest_stopping,
	.enable      = (void *)nest_enable,
	.update_idle = (void *)nest_update_idle,
	.init        = (void *)nest_init,
	.exit        = (void *)nest_exit);
