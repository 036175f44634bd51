/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * preempt_stats.bpf.h - the accounting part of preempt.bpf.h: the
 * per-class counters package preempt reads (struct sk_preempt_counters in
 * preempt.h), and the helpers the other parts count with.
 *
 * Counters (per class, SK_PREEMPT_MAX_IDS slots kept across
 * configurations): kicks sent for its wakeups; its tasks stopped while
 * runnable before their slice ran out and not by their own sched_yield
 * (whoever cut them short; stops by higher scheduling classes, RT or
 * deadline, leave the slice and are not counted); kicks absorbed by
 * no-preempt; run-on extensions; boosts by the starvation bound; run
 * time; and wakeup-to-run waits (from ops.runnable of a wakeup to
 * ops.running) with a log2 histogram.
 *
 * Prerequisites: vmlinux.h, <scxkit/scx.bpf.h>
 */
#ifndef __SCXKIT_PREEMPT_STATS_BPF_H
#define __SCXKIT_PREEMPT_STATS_BPF_H

#include "preempt.h"
#include "histogram.bpf.h"

_Static_assert(SK_PREEMPT_NR_BOUNDS <= SK_HIST_MAX_BOUNDS, "wait histogram bounds");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SK_PREEMPT_MAX_IDS);
	__type(key, u32);
	__type(value, struct sk_preempt_counters);
} sk_preempt_stats SEC(".maps");

static __always_inline struct sk_preempt_counters *sk_preempt_counters_of(u32 id)
{
	return bpf_map_lookup_elem(&sk_preempt_stats, &id);
}

#define sk_preempt_count(id, field, n)						\
	do {									\
		struct sk_preempt_counters *___c = sk_preempt_counters_of(id);	\
		if (___c)							\
			___c->field += (n);					\
	} while (0)

/*
 * sk_preempt_bucket - the wait histogram bucket of @ns: the first i with
 * ns <= 1µs << i, or SK_PREEMPT_NR_BOUNDS for longer waits
 * (histogram.bpf.h; the bounds are latency.Log2Bounds in Go).
 */
static __always_inline u32 sk_preempt_bucket(u64 ns)
{
	return sk_hist_bucket_log2(ns, 1000, SK_PREEMPT_NR_BOUNDS);
}

/*
 * sk_preempt_count_wait - count a wakeup of the class with counter slot
 * @id whose task waited @wait ns to run (from ops.runnable to ops.running).
 */
static __always_inline void sk_preempt_count_wait(u32 id, u64 wait)
{
	u32 b = sk_preempt_bucket(wait);
	struct sk_preempt_counters *c = sk_preempt_counters_of(id);

	if (c) {
		c->wakeups++;
		c->wait_ns += wait;
		if (b < SK_PREEMPT_NR_BUCKETS)
			c->wait_buckets[b]++;
	}
}

#endif /* __SCXKIT_PREEMPT_STATS_BPF_H */
