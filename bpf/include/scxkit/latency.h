/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * latency.h - what latency.bpf.h shares with package latency: per-cgroup
 * counters and histograms, the per-task and per-CPU state of queueing-delay
 * accounting, and the outlier record. Fixed-width types and explicit
 * padding only; bpf2go generates the Go layouts.
 *
 * Times are ns of bpf_ktime_get_ns() (CLOCK_MONOTONIC). A cgroup is named
 * by its cgroup v2 id, the inode number of its directory in the cgroup2
 * mount; 0 stands for "no cgroup": the CPU is idle.
 */
#ifndef __SCXKIT_LATENCY_H
#define __SCXKIT_LATENCY_H

/*
 * Histogram: up to SK_LAT_MAX_BOUNDS upper bounds (inclusive, strictly
 * increasing, ns), so up to SK_LAT_MAX_BOUNDS + 1 buckets: bucket i counts
 * delays d with bounds[i-1] < d <= bounds[i], the last one d > bounds[n-1].
 */
#define SK_LAT_MAX_BOUNDS 64
#define SK_LAT_NR_BUCKETS (SK_LAT_MAX_BOUNDS + 1)

/* What a wait began with: sk_lat_task.kind, sk_lat_outlier.kind. */
#define SK_LAT_WAKEUP 1  /* woken up (sched_wakeup, sched_wakeup_new) */
#define SK_LAT_PREEMPT 2 /* switched out while runnable (preempted, yielded) */

/*
 * sk_lat_stats - one cgroup's counters on one CPU (the value of the per-CPU
 * hash sk_lat_stats, key = cgroup id). Package latency sums the CPUs.
 *
 * oncpu_ns doubles as the clock that splits waits: a task waiting on CPU c
 * saw its own cgroup run for the growth of c's oncpu_ns of its cgroup, and
 * any task run for the growth of c's sk_lat_cpu.busy_ns.
 */
struct sk_lat_stats {
	u64 wakeups;        /* waits that began with a wakeup, ended on a CPU */
	u64 preempts;       /* waits that began with a switch-out while runnable */
	u64 delay_ns;       /* sum of those waits (queueing delay) */
	u64 same_ns;        /* part of delay_ns: the CPU ran this cgroup */
	u64 other_ns;       /* part of delay_ns: the CPU ran another cgroup */
	u64 idle_ns;        /* part of delay_ns: the CPU ran no task (idle) */
	u64 oncpu_ns;       /* time the cgroup's tasks ran on this CPU */
	u64 offcpu_ns;      /* time its tasks slept: blocked until woken */
	u64 outliers;       /* waits sent to the outlier ring buffer */
	u64 outliers_lost;  /* outliers the full ring buffer refused */
	u64 buckets[SK_LAT_NR_BUCKETS]; /* waits by delay, see SK_LAT_MAX_BOUNDS */
	u64 _pad;
};

/*
 * sk_lat_cpu - what a CPU runs (the per-CPU array sk_lat_cpus, one entry;
 * other CPUs read it with bpf_map_lookup_percpu_elem).
 */
struct sk_lat_cpu {
	u64 cgid;     /* cgroup of the running task, 0 when idle */
	u64 since_ns; /* when it began to run, 0 before the first switch seen */
	u64 busy_ns;  /* time any task other than idle ran, since the first switch */
	u32 tracked;  /* cgid is tracked: its oncpu_ns is counted */
	u32 _pad;
};

/*
 * sk_lat_task - a task's state (task storage sk_lat_tasks).
 *
 * While the task waits (wait_ns != 0), same0 and busy0 are its cgroup's
 * oncpu_ns on wait_cpu and wait_cpu's busy_ns when the wait began (or when
 * it moved to wait_cpu); same_acc and busy_acc hold what it saw on the CPUs
 * it waited on before.
 */
struct sk_lat_task {
	u64 cgid;     /* its cgroup when the wait or the sleep began */
	u64 wait_ns;  /* when the current wait began, 0 if not waiting */
	u64 sleep_ns; /* when it blocked, 0 if not asleep (or not seen) */
	u64 same0;
	u64 busy0;
	u64 same_acc;
	u64 busy_acc;
	u32 wait_cpu; /* the CPU it waits on */
	u32 kind;     /* SK_LAT_WAKEUP or SK_LAT_PREEMPT */
};

/* sk_lat_outlier - one wait of at least the threshold (ring buffer sk_lat_outliers). */
struct sk_lat_outlier {
	u64 cgid;
	u64 delay_ns;
	u64 same_ns;
	u64 other_ns;
	u64 idle_ns;
	u64 at_ns;     /* when the wait ended (bpf_ktime_get_ns) */
	u32 pid;       /* thread id */
	u32 tgid;      /* process id */
	u32 cpu;       /* the CPU it ran on at the end of the wait */
	u32 kind;      /* SK_LAT_WAKEUP or SK_LAT_PREEMPT */
	char comm[16];
};

#endif /* __SCXKIT_LATENCY_H */
