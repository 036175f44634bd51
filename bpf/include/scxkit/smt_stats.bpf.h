/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * smt_stats.bpf.h - the accounting part of smt.bpf.h: per-class counters
 * (run time, forced idle, handovers, preemptions, violations) in the
 * per-CPU hash package smt reads, keyed by the class's counter key
 * (sk_smt_layout.class_cgroup), and the intervals they are charged from.
 *
 * Forced idle: a CPU that stays idle although a class has work it may run
 * there, because a sibling holds the core for another class. The
 * interval is charged to the class in the way when it ends (the CPU runs
 * a task or finds no work).
 *
 * Prerequisites: vmlinux.h, <scxkit/scx.bpf.h>
 */
#ifndef __SCXKIT_SMT_STATS_BPF_H
#define __SCXKIT_SMT_STATS_BPF_H

#include "smt_class.bpf.h"

/* Total violations, also counted per class; read by package smt. */
u64 sk_smt_violations SEC(".bss");

/* Counters per class, keyed by the class's counter key (0: system). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, SK_SMT_MAX_CLASSES);
	__type(key, u64);
	__type(value, struct sk_smt_counters);
} sk_smt_stats SEC(".maps");

/* sk_smt_counters_of - this CPU's counters of class @cls, or NULL. */
static __always_inline struct sk_smt_counters *sk_smt_counters_of(u32 cls)
{
	u64 key;

	barrier_var(cls);
	if (cls >= SK_SMT_MAX_CLASSES)
		return NULL;
	key = sk_smt_layout.class_cgroup[cls];
	return bpf_map_lookup_elem(&sk_smt_stats, &key);
}

#define sk_smt_count(cls, field, n)						\
	do {									\
		struct sk_smt_counters *___c = sk_smt_counters_of(cls);	\
		if (___c)							\
			___c->field += (n);					\
	} while (0)

/* sk_smt_count_violation - a task of class @cls started beside another class. */
static __always_inline void sk_smt_count_violation(u32 cls)
{
	__sync_fetch_and_add(&sk_smt_violations, 1);
	sk_smt_count(cls, violations, 1);
}

/*
 * One CPU's open accounting intervals. Written only by the CPU itself;
 * siblings read fi_start racily (is it forced idle?), hence SK_WRITE_ONCE.
 */
struct sk_smt_acct {
	u64 fi_start;  /* forced idle since (scx_bpf_now), 0 when not forced idle */
	u64 fi_cls;    /* class the forced idle is charged to */
	u64 run_start; /* p->se.sum_exec_runtime at running */
	u64 run_cls;   /* class charged for the run time */
};

/* sk_smt_fi_end - the forced idle of @a, if any, ends at @now: charge it. */
static __always_inline void sk_smt_fi_end(struct sk_smt_acct *a, u64 now)
{
	u64 start = a->fi_start;

	if (!start)
		return;
	SK_WRITE_ONCE(a->fi_start, 0);
	if (now > start) {
		sk_smt_count(a->fi_cls, forced_idle_ns, now - start);
		sk_smt_count(a->fi_cls, forced_idle_events, 1);
	}
}

/*
 * sk_smt_fi_begin - forced idle of @a starts at @now, charged to class
 * @cls; one already running for @cls goes on, one charged to another class
 * ends first.
 */
static __always_inline void sk_smt_fi_begin(struct sk_smt_acct *a, u32 cls, u64 now)
{
	if (a->fi_start && a->fi_cls == cls)
		return;
	sk_smt_fi_end(a, now);
	a->fi_cls = cls;
	SK_WRITE_ONCE(a->fi_start, now ? now : 1);
}

/* sk_smt_run_begin - a task of class @cls starts running, @runtime into its life. */
static __always_inline void sk_smt_run_begin(struct sk_smt_acct *a, u32 cls, u64 runtime)
{
	a->run_start = runtime;
	a->run_cls = cls;
}

/*
 * sk_smt_run_charge - charge the run time since sk_smt_run_begin (or the
 * last charge) to its class, @runtime into the task's life, and go on
 * from there.
 */
static __always_inline void sk_smt_run_charge(struct sk_smt_acct *a, u64 runtime)
{
	if (runtime > a->run_start)
		sk_smt_count(a->run_cls, runtime_ns, runtime - a->run_start);
	a->run_start = runtime;
}

#endif /* __SCXKIT_SMT_STATS_BPF_H */
