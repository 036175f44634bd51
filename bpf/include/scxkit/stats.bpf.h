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

/*
 * Gauges: levels that go up and down (a queue depth, the number of CPUs
 * in a nest), beside the counters above. Package scx reports them with
 * Kind Gauge: Prometheus gauges, levels in the stats line, no rate. Two
 * kinds, for the two ways a level is kept:
 *
 * 1. A level made of per-CPU parts, such as "tasks queued on this CPU's
 *    DSQ": a field of the SK_STATS_DEFINE struct tagged SK_STAT_GAUGE.
 *    Each CPU adds to or sets its own part without atomics, and scx sums
 *    the parts. A part may go below zero (a task queued on CPU 0 and
 *    taken on CPU 1): parts wrap as u64 and their sum is the level,
 *    read as a signed 64-bit number.
 *
 *      struct nest_stats {
 *              u64 enqueued;
 *              u64 queued SK_STAT_GAUGE SK_STAT_HELP("Tasks queued now.");
 *      };
 *      SK_STATS_DEFINE(struct nest_stats);
 *      ...
 *      sk_stat_inc(queued);     in ops.enqueue, on the enqueuing CPU
 *      sk_stat_sub(queued, 1);  in ops.dispatch, on another CPU maybe
 *
 * 2. One global level that any CPU sets: the fields of a second struct,
 *    SK_GAUGES_DEFINE, a global variable (not per CPU) that scx reads as
 *    it is. sk_gauge_set stores a value; sk_gauge_add and sk_gauge_sub
 *    change it atomically, so CPUs may change one field at once. Fields
 *    are u64 or s64 and read as signed 64-bit numbers; SK_STAT_HELP
 *    gives their help text. A gauge may not share a name with a field of
 *    the SK_STATS_DEFINE struct.
 *
 *      struct nest_gauges {
 *              u64 nest_size SK_STAT_HELP("CPUs in the nest.");
 *      };
 *      SK_GAUGES_DEFINE(struct nest_gauges);
 *      ...
 *      sk_gauge_add(nest_size, 1);    a CPU joins the nest
 *      sk_gauge_set(nest_size, n);    or: recount and store
 *
 * An object may define counters, gauges, both or neither; scx.Stats
 * carries the SK_STATS_DEFINE fields first, then the SK_GAUGES_DEFINE
 * ones.
 */

/* SK_STAT_GAUGE - mark a field of the SK_STATS_DEFINE struct as a level
 * summed over CPUs rather than a counter (BTF decl tag "sk_kind:gauge"). */
#define SK_STAT_GAUGE __attribute__((btf_decl_tag("sk_kind:gauge")))

/* sk_stat_sub - subtract @n from field @field of this CPU (a gauge's part). */
#define sk_stat_sub(field, n) sk_stat_add(field, -(u64)(n))

/* sk_stat_set - set this CPU's part of gauge @field to @v. */
#define sk_stat_set(field, v)							\
	do {									\
		__typeof__(sk_stats_this_cpu()) ___s = sk_stats_this_cpu();	\
		if (___s)							\
			___s->field = (v);					\
	} while (0)

/* SK_GAUGES_DEFINE - define the global gauges, the fields of @gauges_type
 * (u64 or s64 each), as the variable sk_gauges that package scx reads. */
#define SK_GAUGES_DEFINE(gauges_type) gauges_type sk_gauges

/* sk_gauge_set - store @v in global gauge @field. */
#define sk_gauge_set(field, v)							\
	(*(volatile __typeof__(sk_gauges.field) *)&sk_gauges.field = (v))

/* sk_gauge_add - add @delta to global gauge @field, atomically. */
#define sk_gauge_add(field, delta)						\
	((void)__sync_fetch_and_add(&sk_gauges.field, (delta)))

/* sk_gauge_sub - subtract @delta from global gauge @field, atomically. */
#define sk_gauge_sub(field, delta)						\
	((void)__sync_fetch_and_sub(&sk_gauges.field, (delta)))

#endif /* __SCXKIT_STATS_BPF_H */
