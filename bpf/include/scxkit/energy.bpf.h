/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * energy.bpf.h - energy-aware placement: per-CPU cost tables from package
 * energy, and a plan from userspace saying which CPUs to keep warm and at
 * which performance.
 *
 *   Go:  en, _ := energy.New(model, &energy.PlannerOptions{Demand: measure})
 *        scx.Config{Components: []scx.Component{..., en}}: Bind writes
 *        the cost tables, Work a plan every PlannerOptions.Interval
 *   BPF: ops.select_cpu  cpu = sk_energy_pick_idle_cpu(p, prev_cpu, util)
 *        ops.dispatch    cold CPUs (!sk_energy_is_warm) stay idle
 *        ops.tick/running sk_energy_apply_perf(cpu)
 *
 * Until the energy component is bound, sk_energy_model.nr_cpu_ids is 0 and every CPU
 * counts as warm with an empty table: the helpers then prefer nothing, so
 * a scheduler that forgot the step behaves like a plain idle picker.
 */
#ifndef __SCXKIT_ENERGY_BPF_H
#define __SCXKIT_ENERGY_BPF_H

#include "energy.h"

struct sk_energy_model sk_energy_model SEC(".bss");
struct sk_energy_plan sk_energy_plan SEC(".bss");

/*
 * sk_energy_cpu_of - @cpu's table, or NULL if the model has none. The
 * constant bound is checked last, behind barrier_var, on the very value
 * used as the index: clang would otherwise merge the checks into flags
 * and index with an unchecked copy, which the verifier rejects.
 */
static __always_inline struct sk_energy_cpu *sk_energy_cpu_of(s32 cpu)
{
	u32 c = cpu;

	if (cpu < 0 || c >= sk_energy_model.nr_cpu_ids)
		return NULL;
	barrier_var(c);
	if (c >= SK_ENERGY_MAX_CPUS)
		return NULL;
	return &sk_energy_model.cpus[c];
}

/* sk_energy_is_warm - whether the plan keeps @cpu warm; every CPU is
 * before the first plan. */
static __always_inline bool sk_energy_is_warm(s32 cpu)
{
	u32 c = cpu;

	if (!sk_energy_plan.nr_warm)
		return true;
	barrier_var(c);
	if (cpu < 0 || c >= SK_ENERGY_MAX_CPUS)
		return false;
	return (sk_energy_plan.warm[c / 64] >> (c % 64)) & 1;
}

/* sk_energy_nr_warm - how many CPUs the plan keeps warm, 0 before the
 * first plan. */
static __always_inline u32 sk_energy_nr_warm(void)
{
	return sk_energy_plan.nr_warm;
}

/*
 * sk_energy_state_of - the index of the state @cpu runs @util (capacity
 * units) at: the lowest whose perf covers it, else the highest; -1 for a
 * CPU without a table. The table holds efficient states only, so this is
 * the kernel's choice (em_pd_get_efficient_state).
 */
static __always_inline s32 sk_energy_state_of(s32 cpu, u32 util)
{
	struct sk_energy_cpu *c = sk_energy_cpu_of(cpu);
	u32 nr, i;

	if (!c)
		return -1;
	nr = c->nr_states;
	if (!nr || nr > SK_ENERGY_MAX_STATES)
		return -1;
	bpf_for(i, 0, nr) {
		if (i >= SK_ENERGY_MAX_STATES)
			break;
		if (c->states[i].perf >= util)
			return i;
	}
	return nr - 1;
}

/* sk_energy_capacity - @cpu's capacity at its top state, 0 without a table. */
static __always_inline u32 sk_energy_capacity(s32 cpu)
{
	struct sk_energy_cpu *c = sk_energy_cpu_of(cpu);
	u32 top;

	if (!c || !c->nr_states)
		return 0;
	top = c->nr_states - 1;
	if (top >= SK_ENERGY_MAX_STATES)
		return 0;
	return c->states[top].perf;
}

/*
 * sk_energy_cost - the kernel's energy estimate of running @util on @cpu
 * alone: the cost of the state it needs times @util. U64_MAX for a CPU
 * without a table.
 */
static __always_inline u64 sk_energy_cost(s32 cpu, u32 util)
{
	struct sk_energy_cpu *c = sk_energy_cpu_of(cpu);
	s32 s = sk_energy_state_of(cpu, util);
	u32 i = s;

	if (!c || s < 0)
		return (u64)-1;
	barrier_var(i);
	if (i >= SK_ENERGY_MAX_STATES)
		return (u64)-1;
	/* At least one unit, so that an idle task still prefers cheap CPUs. */
	return (u64)c->states[i].cost * (util ? util : 1);
}

/**
 * sk_energy_pick_idle_cpu - the idle warm CPU, allowed for @p, that runs
 * @util (@p's utilisation in capacity units) at the least energy, claimed
 * (its idle bit cleared); -1 if there is none. A CPU must have the
 * capacity for @util unless no idle warm CPU has. Ties go to @prev_cpu,
 * whose caches are warm, then to the lower CPU.
 *
 * One pass over the CPUs: fine for the machines that have energy models
 * (phones, laptops, Arm servers with a handful of performance domains).
 */
static __always_inline s32 sk_energy_pick_idle_cpu(struct task_struct *p, s32 prev_cpu, u32 util)
{
	const struct cpumask *idle;
	u64 best_cost = (u64)-1, cost;
	s32 best = -1, cpu;
	bool best_fits = false, fits;
	u32 nr = scx_bpf_nr_cpu_ids();

	if (nr > SK_ENERGY_MAX_CPUS)
		nr = SK_ENERGY_MAX_CPUS;
	idle = scx_bpf_get_idle_cpumask();
	bpf_for(cpu, 0, nr) {
		if (!sk_energy_is_warm(cpu) || !bpf_cpumask_test_cpu(cpu, idle) ||
		    !bpf_cpumask_test_cpu(cpu, p->cpus_ptr))
			continue;
		cost = sk_energy_cost(cpu, util);
		fits = sk_energy_capacity(cpu) >= util;
		if (best >= 0) {
			if (best_fits && !fits)
				continue;
			if (best_fits == fits && (cost > best_cost || (cost == best_cost && cpu != prev_cpu)))
				continue;
		}
		best = cpu;
		best_cost = cost;
		best_fits = fits;
	}
	scx_bpf_put_idle_cpumask(idle);
	if (best >= 0 && scx_bpf_test_and_clear_cpu_idle(best))
		return best;
	return -1;
}

/*
 * sk_energy_apply_perf - set @cpu's performance target from the plan
 * (scx_bpf_cpuperf_set); call from ops.running or ops.tick. A target of 0
 * leaves the CPU to the kernel.
 */
static __always_inline void sk_energy_apply_perf(s32 cpu)
{
	u32 c = cpu, perf;

	barrier_var(c);
	if (cpu < 0 || c >= SK_ENERGY_MAX_CPUS)
		return;
	perf = sk_energy_plan.perf[c];
	if (perf)
		scx_bpf_cpuperf_set(cpu, perf > 1024 ? 1024 : perf);
}

#endif /* __SCXKIT_ENERGY_BPF_H */
