//go:build ignore

/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * statstest - host tests of stats.bpf.h's gauges: SK_STAT_GAUGE fields
 * summed over CPUs and the global SK_GAUGES_DEFINE struct. SEC("syscall")
 * programs, run through BPF_PROG_TEST_RUN with no scheduler attached; the
 * Go test sets the in_ globals, runs a program on a CPU it picks, and
 * reads the stats back through the reader Scheduler.ReadStats uses.
 */
#include <scxkit/scx.bpf.h>

struct statstest_stats {
	u64 events SK_STAT_HELP("Events counted.");
	u64 queued SK_STAT_GAUGE SK_STAT_HELP("Tasks queued now, summed over CPUs.");
	u64 cpu_level SK_STAT_GAUGE;
};
SK_STATS_DEFINE(struct statstest_stats);

struct statstest_gauges {
	u64 nest_size SK_STAT_HELP("CPUs in the nest.");
	s64 balance;
};
SK_GAUGES_DEFINE(struct statstest_gauges);

u64 in_events;
s64 in_queued;	/* added (or, if below zero, subtracted) on this CPU */
u64 in_cpu_level;
u64 in_nest_size;
s64 in_balance_add, in_balance_sub;

/* per_cpu changes this CPU's part of the SK_STATS_DEFINE struct. */
SEC("syscall")
int per_cpu(void *ctx)
{
	sk_stat_add(events, in_events);
	if (in_queued >= 0)
		sk_stat_add(queued, in_queued);
	else
		sk_stat_sub(queued, -in_queued);
	sk_stat_set(cpu_level, in_cpu_level);
	return 0;
}

/* global sets nest_size and changes balance by +in_balance_add and
 * -in_balance_sub. */
SEC("syscall")
int global(void *ctx)
{
	sk_gauge_set(nest_size, in_nest_size);
	sk_gauge_add(balance, in_balance_add);
	sk_gauge_sub(balance, in_balance_sub);
	return 0;
}
