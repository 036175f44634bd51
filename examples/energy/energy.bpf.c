//go:build ignore

/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * energy - an energy-aware scheduler: one shared queue ordered by weighted
 * virtual time, served by the
 * warm CPUs that userspace picks from the energy model for the current
 * demand. While demand is low, few (and the cheapest) CPUs are warm and
 * the others stay idle; as it rises, userspace warms more. Cold CPUs take
 * queued work only when it piles up beyond what the warm ones serve.
 * Wakeups go to the warm idle CPU that runs the task at the least energy.
 *
 * Demand is measured here: the average number of runnable tasks, a
 * decaying average with a half-life (dutycycle.bpf.h), read by userspace.
 */
#include <scxkit/scx.bpf.h>
#include <scxkit/runtime.bpf.h>
#include <scxkit/vtime.bpf.h>
#include <scxkit/dutycycle.bpf.h>
#include <scxkit/energy.bpf.h>

#define SHARED_DSQ 0

/* Half-life of task and machine duty cycles. */
const volatile u64 half_life_ns = 100000000; /* 100 ms */
/* Cold CPUs help when more than nr_warm + spill_queued tasks wait. */
const volatile u32 spill_queued = 2;

struct energy_stats {
	u64 direct;     /* woke on the cheapest idle warm CPU */
	u64 queued;     /* waited in the shared queue */
	u64 pinned;     /* could run on no warm CPU: queued on its own CPU */
	u64 dispatched; /* a warm CPU took a task from the queue */
	u64 spilled;    /* a cold CPU took a task from the queue */
	u64 perf_set;   /* performance targets applied */
};
SK_STATS_DEFINE(struct energy_stats);

/* The vtime clock: virtual time of the task that started running last. */
static u64 vtime_now;

/* The number of runnable tasks, as a decaying average: the demand. */
struct demand {
	struct bpf_spin_lock lock;
	u32 _pad;
	struct sk_dcycle runnable;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct demand);
} demand SEC(".maps");

/* Per task: its duty cycle, the fraction of time it is runnable. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sk_dcycle);
} task_dc SEC(".maps");

/* Per CPU: the plan sequence whose performance target it applied. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u32);
} perf_seq SEC(".maps");

static __always_inline void count_runnable(s32 delta)
{
	u32 zero = 0;
	struct demand *d = bpf_map_lookup_elem(&demand, &zero);
	u64 now = bpf_ktime_get_ns();
	s64 level;

	if (!d)
		return;
	bpf_spin_lock(&d->lock);
	level = (s64)d->runnable.running + delta;
	sk_dcycle_set_level(&d->runnable, now, level < 0 ? 0 : (u32)level, half_life_ns);
	bpf_spin_unlock(&d->lock);
}

/* task_util - @p's utilisation estimate in capacity units: its duty cycle
 * times the capacity of the fastest CPU. */
static __always_inline u32 task_util(struct task_struct *p)
{
	struct sk_dcycle *dc = bpf_task_storage_get(&task_dc, p, 0, 0);

	if (!dc)
		return 0;
	return sk_dcycle_read(dc, bpf_ktime_get_ns(), half_life_ns) >> (SK_DCYCLE_SHIFT - 10);
}

/* fits_warm - whether @p may run on some warm CPU. */
static __always_inline bool fits_warm(struct task_struct *p)
{
	u32 nr = scx_bpf_nr_cpu_ids(), cpu;

	if (p->nr_cpus_allowed >= nr)
		return true;
	if (nr > SK_ENERGY_MAX_CPUS)
		nr = SK_ENERGY_MAX_CPUS;
	bpf_for(cpu, 0, nr) {
		if (sk_energy_is_warm(cpu) && bpf_cpumask_test_cpu(cpu, p->cpus_ptr))
			return true;
	}
	return false;
}

/* overflowing - whether the queue holds more than the warm CPUs serve. */
static __always_inline bool overflowing(void)
{
	return scx_bpf_dsq_nr_queued(SHARED_DSQ) > sk_energy_nr_warm() + spill_queued;
}

SK_OPS(s32, energy_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	s32 cpu = sk_energy_pick_idle_cpu(p, prev_cpu, task_util(p));

	if (cpu >= 0) {
		sk_stat_inc(direct);
		sk_dsq_insert(p, SK_DSQ_LOCAL, sk_slice(), 0);
		return cpu;
	}
	return prev_cpu;
}

SK_OPS(void, energy_enqueue, struct task_struct *p, u64 enq_flags)
{
	s32 cpu;

	if (!fits_warm(p)) {
		/* No warm CPU may run it: its own CPU does, warm or not. */
		cpu = scx_bpf_task_cpu(p);
		sk_stat_inc(pinned);
		sk_dsq_insert(p, SK_DSQ_LOCAL_ON | cpu, sk_slice(), enq_flags);
		scx_bpf_kick_cpu(cpu, SK_KICK_IDLE);
		return;
	}
	sk_stat_inc(queued);
	/* By weighted virtual time, crediting at most one slice of sleep. */
	scx_bpf_dsq_insert_vtime(p, SHARED_DSQ, sk_slice(), sk_vtime_queue(p, &vtime_now, sk_slice()), enq_flags);
	cpu = sk_energy_pick_idle_cpu(p, scx_bpf_task_cpu(p), task_util(p));
	if (cpu < 0 && overflowing())
		cpu = scx_bpf_pick_idle_cpu(p->cpus_ptr, 0);
	if (cpu >= 0)
		scx_bpf_kick_cpu(cpu, SK_KICK_IDLE);
}

SK_OPS(void, energy_dispatch, s32 cpu, struct task_struct *prev)
{
	if (sk_energy_is_warm(cpu)) {
		if (sk_dsq_move_to_local(SHARED_DSQ))
			sk_stat_inc(dispatched);
	} else if (overflowing()) {
		if (sk_dsq_move_to_local(SHARED_DSQ))
			sk_stat_inc(spilled);
	}
}

SK_OPS(void, energy_runnable, struct task_struct *p, u64 enq_flags)
{
	struct sk_dcycle *dc = bpf_task_storage_get(&task_dc, p, 0, 0);

	if (dc)
		sk_dcycle_update(dc, bpf_ktime_get_ns(), true, half_life_ns);
	count_runnable(1);
}

SK_OPS(void, energy_quiescent, struct task_struct *p, u64 deq_flags)
{
	struct sk_dcycle *dc = bpf_task_storage_get(&task_dc, p, 0, 0);

	if (dc)
		sk_dcycle_update(dc, bpf_ktime_get_ns(), false, half_life_ns);
	count_runnable(-1);
}

SK_OPS(void, energy_running, struct task_struct *p)
{
	s32 cpu = scx_bpf_task_cpu(p);
	u32 zero = 0, *seq = bpf_map_lookup_elem(&perf_seq, &zero);

	sk_runtime_start(p);
	sk_vtime_running(p, &vtime_now);
	/* Apply a new plan's performance target once per CPU. */
	if (seq && *seq != sk_energy_plan.seq) {
		*seq = sk_energy_plan.seq;
		sk_energy_apply_perf(cpu);
		sk_stat_inc(perf_set);
	}
}

SK_OPS(void, energy_stopping, struct task_struct *p, bool runnable)
{
	/* Charge the time it ran, scaled by 100 / weight. */
	sk_vtime_charge(p, sk_runtime_used(p));
}

SK_OPS(void, energy_enable, struct task_struct *p)
{
	sk_vtime_enable(p, &vtime_now);
}

SK_OPS(s32, energy_init_task, struct task_struct *p, struct scx_init_task_args *args)
{
	struct sk_dcycle *dc = bpf_task_storage_get(&task_dc, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);

	if (!dc)
		return -12; /* -ENOMEM */
	dc->last_ns = bpf_ktime_get_ns();
	return 0;
}

SK_OPS_SLEEPABLE(s32, energy_init)
{
	return scx_bpf_create_dsq(SHARED_DSQ, -1);
}

SK_OPS(void, energy_exit, struct scx_exit_info *ei)
{
	sk_exit_record(ei);
}

SK_SCHEDULER(energy_ops,
	.select_cpu = (void *)energy_select_cpu,
	.enqueue    = (void *)energy_enqueue,
	.dispatch   = (void *)energy_dispatch,
	.runnable   = (void *)energy_runnable,
	.quiescent  = (void *)energy_quiescent,
	.running    = (void *)energy_running,
	.stopping   = (void *)energy_stopping,
	.enable     = (void *)energy_enable,
	.init_task  = (void *)energy_init_task,
	.init       = (void *)energy_init,
	.exit       = (void *)energy_exit);
