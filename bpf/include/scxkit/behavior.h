/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * behavior.h - what behavior.bpf.h and package behavior share: the
 * settings Go writes before attach and the counters it reads. Fixed-width
 * types and explicit padding only; bpf2go generates the Go layouts from
 * package behavior's types.bpf.c.
 */
#ifndef __SCXKIT_BEHAVIOR_H
#define __SCXKIT_BEHAVIOR_H

/* CPUs whose running task behavior.bpf.h tracks; others are never victims. */
#define SK_BEHAVIOR_MAX_CPUS 512

/* sk_behavior_conf.flags */
#define SK_BEHAVIOR_NO_PREEMPT (1U << 0) /* classify and count only, never preempt */
#define SK_BEHAVIOR_NO_AFFINE (1U << 1)  /* sync wakeups do not follow the waker */

/*
 * Settings, written by package behavior at bind (behavior.Options). A
 * zero short_burst_ns classifies no task as latency-sensitive.
 */
struct sk_behavior_conf {
	/* A task whose run-burst average is below this is latency-sensitive. */
	u64 short_burst_ns;
	/* A task may be preempted once it ran this long since it last woke. */
	u64 victim_min_run_ns;
	u32 flags;
	u32 __pad;
};

/* Counters, one per CPU (summed by package behavior). */
struct sk_behavior_counters {
	u64 wakeups;       /* tasks woke up */
	u64 sync_wakeups;  /* ... from a waker about to sleep (SCX_WAKE_SYNC) */
	u64 affine;        /* sync wakeups placed on the waker's CPU */
	u64 sensitive;     /* non-sync wakeups of latency-sensitive tasks */
	u64 preempted;     /* ... that preempted a longer-running task */
	u64 no_victim;     /* ... that found no task to preempt */
};

#endif /* __SCXKIT_BEHAVIOR_H */
