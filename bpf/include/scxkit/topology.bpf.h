/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * topology.bpf.h - the topology component's BPF half: per-CPU core, LLC,
 * node and capacity, sibling and LLC masks, and idle-CPU picking that
 * prefers a fully idle core, then the same LLC, then the same node.
 *
 * The data lives in the global sk_topology (.bss), which the topology
 * component (a *topology.Topology in scx.Config.Components) fills at Load:
 *
 *   topo, _ := topology.Discover(nil)
 *   cfg := scx.Config{Components: []scx.Component{topo, ...}}
 *   sched, _ := spec.Load(nil)   // Topology.Bind fills sk_topology
 *
 * Until then sk_topology.nr_cpu_ids is 0 and every helper reports "unknown"
 * (NULL, false, -1), so a scheduler that forgot the component still runs.
 */
#ifndef __SCXKIT_TOPOLOGY_BPF_H
#define __SCXKIT_TOPOLOGY_BPF_H

#include "topology.h"

struct sk_topo sk_topology SEC(".bss");

/* Levels reported by sk_topo_pick_idle_cpu. */
enum sk_topo_level {
	SK_TOPO_PICK_NONE = 0, /* no idle CPU allowed for the task */
	SK_TOPO_PICK_CORE = 1, /* a fully idle core in the LLC of prev_cpu */
	SK_TOPO_PICK_LLC = 2,  /* an idle CPU in the LLC of prev_cpu */
	SK_TOPO_PICK_NODE = 3, /* an idle CPU in the node of prev_cpu */
	SK_TOPO_PICK_ANY = 4,  /* an idle CPU anywhere */
};

/**
 * sk_topo_cpu - what the topology knows about kernel CPU @cpu, or NULL for
 * a CPU it does not describe (offline, out of range, topology not filled).
 */
static __always_inline const struct sk_topo_cpu *sk_topo_cpu(s32 cpu)
{
	if (cpu < 0 || (u32)cpu >= sk_topology.nr_cpu_ids || cpu >= SK_TOPO_MAX_CPUS)
		return NULL;
	if (!(sk_topology.cpus[cpu].flags & SK_TOPO_CPU_ONLINE))
		return NULL;
	return &sk_topology.cpus[cpu];
}

/* sk_topo_same_core - whether CPUs @a and @b are SMT siblings of one core. */
static __always_inline bool sk_topo_same_core(s32 a, s32 b)
{
	const struct sk_topo_cpu *ca = sk_topo_cpu(a), *cb = sk_topo_cpu(b);

	return ca && cb && ca->core == cb->core;
}

/* sk_topo_same_llc - whether CPUs @a and @b share a last-level cache. */
static __always_inline bool sk_topo_same_llc(s32 a, s32 b)
{
	const struct sk_topo_cpu *ca = sk_topo_cpu(a), *cb = sk_topo_cpu(b);

	return ca && cb && ca->llc == cb->llc;
}

/* sk_topo_same_node - whether CPUs @a and @b are on one NUMA node. */
static __always_inline bool sk_topo_same_node(s32 a, s32 b)
{
	const struct sk_topo_cpu *ca = sk_topo_cpu(a), *cb = sk_topo_cpu(b);

	return ca && cb && ca->node == cb->node;
}

/*
 * ___sk_topo_has - whether kernel CPU @cpu is in mask @idx of the array
 * @masks (core_cpus, llc_cpus or node_cpus) of sk_topology.
 *
 * Both indexes are bounds-checked right at the access, behind barrier_var:
 * callers often "know" they are in range (a loop bound, a checked field),
 * and clang would otherwise fold the checks away or apply them to another
 * copy of the value, leaving the verifier with an unbounded offset.
 */
#define ___sk_topo_has(masks, max, idx, cpu)					\
	({									\
		u32 ___i = (idx), ___c = (cpu);					\
		barrier_var(___i);						\
		barrier_var(___c);						\
		___i < (max) && ___c < SK_TOPO_MAX_CPUS &&			\
			(sk_topology.masks[___i].bits[___c / 64] & (1ULL << (___c % 64))); \
	})

/* sk_topo_core_has - whether kernel CPU @cpu belongs to dense core @core. */
static __always_inline bool sk_topo_core_has(u32 core, s32 cpu)
{
	return cpu >= 0 && ___sk_topo_has(core_cpus, SK_TOPO_MAX_CPUS, core, cpu);
}

/* sk_topo_llc_has - whether kernel CPU @cpu belongs to dense LLC @llc. */
static __always_inline bool sk_topo_llc_has(u32 llc, s32 cpu)
{
	return cpu >= 0 && ___sk_topo_has(llc_cpus, SK_TOPO_MAX_LLCS, llc, cpu);
}

/* sk_topo_node_has - whether kernel CPU @cpu belongs to dense node @node. */
static __always_inline bool sk_topo_node_has(u32 node, s32 cpu)
{
	return cpu >= 0 && ___sk_topo_has(node_cpus, SK_TOPO_MAX_NODES, node, cpu);
}

/*
 * sk_topo_claim_near - claim an idle CPU that @p may run on, in the LLC
 * (@in_node false) or node (@in_node true) numbered @idx. With @idle_smt,
 * only CPUs whose whole core is idle qualify. Scans upwards from @start so
 * that wakeups spread instead of piling onto the lowest CPU.
 */
static __always_inline s32 sk_topo_claim_near(struct task_struct *p, bool in_node, u32 idx,
					      const struct cpumask *idle_smt, u32 start)
{
	u32 nr = sk_topology.nr_cpu_ids;
	s32 i;

	if (nr > SK_TOPO_MAX_CPUS)
		nr = SK_TOPO_MAX_CPUS;
	if (start >= nr)
		start = 0;
	bpf_for(i, 0, nr) {
		u32 cpu = start + i;

		if (cpu >= nr)
			cpu -= nr;
		if (in_node ? !sk_topo_node_has(idx, cpu) : !sk_topo_llc_has(idx, cpu))
			continue;
		if (!bpf_cpumask_test_cpu(cpu, p->cpus_ptr))
			continue;
		if (idle_smt && !bpf_cpumask_test_cpu(cpu, idle_smt))
			continue;
		if (scx_bpf_test_and_clear_cpu_idle(cpu))
			return cpu;
	}
	return -1;
}

/**
 * sk_topo_pick_idle_cpu - find and claim an idle CPU for @p near @prev_cpu
 * @level: set to the enum sk_topo_level of the pick
 *
 * Preference: @prev_cpu itself if its whole core is idle, a fully idle core
 * in @prev_cpu's LLC, any idle CPU in that LLC, then in its node, then
 * anywhere. Returns the claimed CPU (its idle bit cleared, so no other
 * waker takes it), or -1. Needs the kernel's builtin idle tracking
 * (no ops.update_idle, or SCX_OPS_KEEP_BUILTIN_IDLE).
 */
static __always_inline s32 sk_topo_pick_idle_cpu(struct task_struct *p, s32 prev_cpu, u32 *level)
{
	const struct sk_topo_cpu *prev = sk_topo_cpu(prev_cpu);
	const struct cpumask *idle_smt;
	u32 start = prev_cpu >= 0 ? prev_cpu : 0;
	s32 cpu = -1;

	*level = SK_TOPO_PICK_NONE;
	if (!prev)
		return -1;
	/*
	 * A busy machine has no idle CPU at most wakeups: one look at the
	 * idle mask spares the scans below, each over every CPU.
	 */
	idle_smt = scx_bpf_get_idle_cpumask();
	cpu = bpf_cpumask_intersects(idle_smt, p->cpus_ptr) ? 0 : -1;
	scx_bpf_put_idle_cpumask(idle_smt);
	if (cpu < 0)
		return -1;
	cpu = -1;

	idle_smt = scx_bpf_get_idle_smtmask();
	if (bpf_cpumask_test_cpu(prev_cpu, idle_smt) && bpf_cpumask_test_cpu(prev_cpu, p->cpus_ptr) &&
	    scx_bpf_test_and_clear_cpu_idle(prev_cpu)) {
		cpu = prev_cpu;
		*level = SK_TOPO_PICK_CORE;
		goto out;
	}
	cpu = sk_topo_claim_near(p, false, prev->llc, idle_smt, start);
	if (cpu >= 0) {
		*level = SK_TOPO_PICK_CORE;
		goto out;
	}
	cpu = sk_topo_claim_near(p, false, prev->llc, NULL, start);
	if (cpu >= 0) {
		*level = SK_TOPO_PICK_LLC;
		goto out;
	}
	cpu = sk_topo_claim_near(p, true, prev->node, NULL, start);
	if (cpu >= 0) {
		*level = SK_TOPO_PICK_NODE;
		goto out;
	}
	cpu = scx_bpf_pick_idle_cpu(p->cpus_ptr, 0);
	if (cpu >= 0)
		*level = SK_TOPO_PICK_ANY;
out:
	scx_bpf_put_idle_cpumask(idle_smt);
	return cpu;
}

#endif /* __SCXKIT_TOPOLOGY_BPF_H */
