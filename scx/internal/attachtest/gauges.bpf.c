//go:build ignore

/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * gauges - a FIFO scheduler with each kind of stat of stats.bpf.h, to
 * test what Run's OnStats gets (TestStatsKindsAndDeltas):
 *
 *   - enqueued, a counter;
 *   - running, a gauge summed over CPUs: each CPU's part is 1 between
 *     ops.running and ops.stopping, so the level is the number of CPUs
 *     running one of the scheduler's tasks, 0 to nr_cpus;
 *   - nr_cpus, a global gauge ops.init sets to scx_bpf_nr_cpu_ids().
 */
#include <scxkit/scx.bpf.h>

struct gauges_stats {
	u64 enqueued SK_STAT_HELP("Tasks queued.");
	u64 running SK_STAT_GAUGE SK_STAT_HELP("CPUs running a task now.");
};
SK_STATS_DEFINE(struct gauges_stats);

struct gauges_gauges {
	u64 nr_cpus SK_STAT_HELP("CPU ids the kernel has.");
};
SK_GAUGES_DEFINE(struct gauges_gauges);

SK_OPS_SLEEPABLE(s32, gauges_init)
{
	sk_gauge_set(nr_cpus, scx_bpf_nr_cpu_ids());
	return 0;
}

SK_OPS(void, gauges_enqueue, struct task_struct *p, u64 enq_flags)
{
	sk_stat_inc(enqueued);
	sk_dsq_insert(p, SK_DSQ_GLOBAL, sk_slice(), enq_flags);
}

SK_OPS(void, gauges_running, struct task_struct *p)
{
	sk_stat_inc(running);
}

SK_OPS(void, gauges_stopping, struct task_struct *p, bool runnable)
{
	sk_stat_sub(running, 1);
}

SK_OPS(void, gauges_exit, struct scx_exit_info *ei)
{
	sk_exit_record(ei);
}

SK_SCHEDULER(gauges_ops,
	.init     = (void *)gauges_init,
	.enqueue  = (void *)gauges_enqueue,
	.running  = (void *)gauges_running,
	.stopping = (void *)gauges_stopping,
	.exit     = (void *)gauges_exit);
