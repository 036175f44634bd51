/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * histogram.bpf.h - the bucket of a value in a histogram of upper bounds,
 * for every component that counts durations in one: latency.bpf.h (bounds
 * that package latency writes into .rodata) and preempt.bpf.h (log2 bounds,
 * 1 µs << i, which are latency.Log2Bounds in Go).
 *
 * With n strictly increasing bounds b[0..n), bucket i < n counts the values
 * v with b[i-1] < v <= b[i] (bucket 0: v <= b[0]) and bucket n those above
 * b[n-1]: Prometheus's "le" buckets. The Go twin is latency.Histogram's
 * bucket method, which package latency and package preempt decode with;
 * both searches below are the same binary search as that one.
 *
 *   u32 b = sk_hist_bucket(delay, bounds, nr_bounds);     bounds in an array
 *   u32 b = sk_hist_bucket_log2(wait, 1000, 26);          bounds 1000 << i
 *
 * Prerequisites: vmlinux.h, <bpf/bpf_helpers.h>
 */
#ifndef __SCXKIT_HISTOGRAM_BPF_H
#define __SCXKIT_HISTOGRAM_BPF_H

/* The most bounds a histogram has; an array of bounds holds this many. */
#define SK_HIST_MAX_BOUNDS 64
/* Steps of a binary search over SK_HIST_MAX_BOUNDS + 1 buckets. */
#define SK_HIST_STEPS 7

/*
 * ___sk_hist_bucket - the first i < @n with @v <= bound i, or @n: bound i
 * is @bounds[i], or @base << i when @bounds is NULL. Callers pass a
 * constant @bounds or NULL, so the choice folds away once inlined.
 */
static __always_inline u32 ___sk_hist_bucket(u64 v, const volatile u64 *bounds, u64 base, u32 n)
{
	u32 lo = 0, hi = n < SK_HIST_MAX_BOUNDS ? n : SK_HIST_MAX_BOUNDS;
	int i;

	for (i = 0; i < SK_HIST_STEPS && lo < hi; i++) {
		u32 mid = (lo + hi) / 2;
		u64 bound;

		/* mid < hi <= SK_HIST_MAX_BOUNDS; the verifier wants to see it. */
		if (mid >= SK_HIST_MAX_BOUNDS)
			break;
		bound = bounds ? bounds[mid] : base << mid;
		if (v <= bound)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/**
 * sk_hist_bucket - the bucket of @v in a histogram whose @n bounds are
 * @bounds[0..n); @bounds has room for SK_HIST_MAX_BOUNDS (a global, such
 * as a .rodata array Go fills), and @n above that counts as that.
 */
static __always_inline u32 sk_hist_bucket(u64 v, const volatile u64 *bounds, u32 n)
{
	return ___sk_hist_bucket(v, bounds, 0, n);
}

/**
 * sk_hist_bucket_log2 - the bucket of @v in a histogram of the @n bounds
 * @base << i (i < @n, at most SK_HIST_MAX_BOUNDS, and @base << (@n - 1)
 * must not overflow).
 */
static __always_inline u32 sk_hist_bucket_log2(u64 v, u64 base, u32 n)
{
	return ___sk_hist_bucket(v, NULL, base, n);
}

#endif /* __SCXKIT_HISTOGRAM_BPF_H */
