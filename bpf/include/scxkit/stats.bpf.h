/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * stats.bpf.h - per-CPU event counters that package scx sums and reports.
 *
 * A scheduler describes its counters as a struct of u64 fields and passes
 * it to SK_STATS_DEFINE:
 *
 *   struct simple_stats { u64 enqueued; u64 dispatched; };
 *   SK_STATS_DEFINE(struct simple_stats);
 *   ...
 *   sk_stat_inc(enqueued);
 *
 * The struct becomes the value of the per-CPU array map sk_stats, so each
 * CPU increments its own copy without atomics. Userspace learns the counter
 * names from the struct's BTF: scx.Stats carries one value per field, in
 * field order, summed over CPUs. A field may carry its help text, which
 * the Prometheus metrics and the scx_stats socket show:
 *
 *   struct simple_stats { u64 enqueued SK_STAT_HELP("Tasks queued."); };
 */
#ifndef __SCXKIT_STATS_BPF_H
#define __SCXKIT_STATS_BPF_H

/* SK_STAT_HELP - the help text of a counter field, in its BTF (decl tag). */
#define SK_STAT_HELP(text) __attribute__((btf_decl_tag("sk_help:" text)))

#define SK_STATS_DEFINE(stats_type)							\
	struct {								\
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);			\
		__uint(max_entries, 1);						\
		__type(key, u32);						\
		__type(value, stats_type);						\
	} sk_stats SEC(".maps");						\
										\
	static __always_inline stats_type *sk_stats_this_cpu(void)			\
	{									\
		u32 zero = 0;							\
		return bpf_map_lookup_elem(&sk_stats, &zero);			\
	}

/* sk_stat_add - add @n to counter @field of this CPU. */
#define sk_stat_add(field, n)							\
	do {									\
		__typeof__(sk_stats_this_cpu()) ___s = sk_stats_this_cpu();	\
		if (___s)							\
			___s->field += (n);					\
	} while (0)

/* sk_stat_inc - count one event in counter @field of this CPU. */
#define sk_stat_inc(field) sk_stat_add(field, 1)

#endif /* __SCXKIT_STATS_BPF_H */
