/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * energy.h - what the energy component's BPF half shares with package
 * energy: per-CPU cost tables (energy.Planner's Bind) and the plan an
 * energy-aware scheduler follows (Planner.Write): which CPUs to keep
 * warm and at what performance.
 */
#ifndef __SCXKIT_ENERGY_H
#define __SCXKIT_ENERGY_H

#define SK_ENERGY_MAX_CPUS 512   /* kernel CPU ids below this */
#define SK_ENERGY_MAX_STATES 32  /* efficient performance states per CPU */

struct sk_energy_state {
	u32 perf; /* capacity at this state, 1024 = the fastest CPU at its top */
	u32 cost; /* the kernel's cost: energy per unit of utilisation */
};

struct sk_energy_cpu {
	u32 nr_states; /* efficient states in states[], by ascending perf; 0: no model */
	u32 domain;    /* performance domain, an index into energy.Model.Domains */
	struct sk_energy_state states[SK_ENERGY_MAX_STATES];
};

struct sk_energy_model {
	u32 nr_cpu_ids; /* CPUs below this have rows; 0 until the component is bound */
	u32 _pad;
	struct sk_energy_cpu cpus[SK_ENERGY_MAX_CPUS];
};

struct sk_energy_plan {
	u64 warm[SK_ENERGY_MAX_CPUS / 64]; /* CPUs to keep warm: bit cpu % 64 of word cpu / 64 */
	u32 nr_warm;
	u32 seq;                           /* bumped by every write, for stats */
	u32 perf[SK_ENERGY_MAX_CPUS];      /* scx_bpf_cpuperf_set target, 1..1024; 0: leave */
};

#endif /* __SCXKIT_ENERGY_H */
