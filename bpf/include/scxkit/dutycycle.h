/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * dutycycle.h - the state of duty-cycle tracking as BPF code and package
 * lb share it: the layout that dutycycle.bpf.h updates in maps and that
 * lb.DutyCycle and lb.DutyCycleDom mirror field for field. Fixed-width
 * types and explicit padding only; bpf2go generates the Go layout of these
 * structs for an object whose globals use them (or with -type sk_dcycle
 * -type sk_dcycle_dom), and package lb's tests check that the hand-written
 * Go types have the generated layout.
 *
 * A tracked entity has a level (1 while a task is runnable, 0 while it is
 * not; for a domain bucket, the number of runnable tasks in the bucket).
 * acc is the exponentially decaying average of that level over time with a
 * configurable half-life, in fixed point with 1 << SK_DCYCLE_ACC_SHIFT
 * standing for a level of 1 (for a task: 100% duty cycle). avg is the same
 * value at the public scale, 1 << SK_DCYCLE_SHIFT = 1, rounded to nearest.
 * Both are as of last_ns; sk_dcycle_read() projects them to a later time.
 *
 * The zero value is valid and means "level 0 since time 0".
 */
#ifndef __SCXKIT_DUTYCYCLE_H
#define __SCXKIT_DUTYCYCLE_H

/* Public scale: avg == SK_DCYCLE_ONE is a duty cycle of 100%. */
#define SK_DCYCLE_SHIFT 20
#define SK_DCYCLE_ONE (1ULL << SK_DCYCLE_SHIFT)

/*
 * Internal scale of acc. The 20 extra bits keep rounding errors from
 * piling up when updates are many per half-life: an update rounds by at
 * most 2^-40, so even 10^7 updates per half-life move acc by < 2^-16.
 */
#define SK_DCYCLE_ACC_SHIFT 40

/*
 * Highest level: acc stays below level << SK_DCYCLE_ACC_SHIFT, so levels up
 * to 2^23 - 1 keep acc below 2^63. Higher levels are clamped to it.
 */
#define SK_DCYCLE_MAX_LEVEL ((1U << 23) - 1)

/*
 * Half-lives are clamped to [1, SK_DCYCLE_MAX_HALF_LIFE_NS] ns (2^48 ns is
 * about 78 hours); 0 counts as 1 ns.
 */
#define SK_DCYCLE_MAX_HALF_LIFE_NS (1ULL << 48)

/*
 * Weight buckets of a domain: a task of weight w (sched_ext weights run
 * from 1 to 10000, 100 being nice 0) counts in bucket floor(log2(w)),
 * capped at SK_DCYCLE_NR_BUCKETS - 1, so bucket b holds weights
 * [2^b, 2^(b+1)) and the last one [8192, 10000].
 */
#define SK_DCYCLE_NR_BUCKETS 14

struct sk_dcycle {
	u64 last_ns; /* time of the last update, ns */
	u64 acc;     /* average level as of last_ns, 1 << SK_DCYCLE_ACC_SHIFT = 1 */
	u64 avg;     /* acc rounded to 1 << SK_DCYCLE_SHIFT = 1 */
	u32 running; /* level since last_ns: 0 or 1 for a task, a count for a bucket */
	u32 _pad;
};

/*
 * sk_dcycle_dom - a domain's runnable tasks by weight bucket: buckets[b]
 * has the number of runnable tasks of bucket b as its level, so its avg is
 * their average number, i.e. the sum of their duty cycles (the average is
 * linear). A load balancer weighs bucket b by the weights it holds.
 */
struct sk_dcycle_dom {
	struct sk_dcycle buckets[SK_DCYCLE_NR_BUCKETS];
};

#endif /* __SCXKIT_DUTYCYCLE_H */
