//go:build ignore

/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * sched - a global-FIFO scheduler whose ops.select_cpu places wakeups with
 * sk_topo_pick_idle_cpu and counts the level of each pick. It also carries
 * the topology query program, to check the helpers while attached.
 */
#include <scxkit/scx.bpf.h>
#include <scxkit/topology.bpf.h>
#include "query.bpf.h"

struct sched_stats {
	u64 pick_core;
	u64 pick_llc;
	u64 pick_node;
	u64 pick_any;
	u64 pick_none;
	u64 enqueued;
};
SK_STATS_DEFINE(struct sched_stats);

SK_OPS(s32, sched_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	u32 level;
	s32 cpu = sk_topo_pick_idle_cpu(p, prev_cpu, &level);

	switch (level) {
	case SK_TOPO_PICK_CORE:
		sk_stat_inc(pick_core);
		break;
	case SK_TOPO_PICK_LLC:
		sk_stat_inc(pick_llc);
		break;
	case SK_TOPO_PICK_NODE:
		sk_stat_inc(pick_node);
		break;
	case SK_TOPO_PICK_ANY:
		sk_stat_inc(pick_any);
		break;
	default:
		sk_stat_inc(pick_none);
	}
	if (cpu >= 0) {
		sk_dsq_insert(p, SK_DSQ_LOCAL, sk_slice(), 0);
		return cpu;
	}
	return prev_cpu;
}

SK_OPS(void, sched_enqueue, struct task_struct *p, u64 enq_flags)
{
	sk_stat_inc(enqueued);
	sk_dsq_insert(p, SK_DSQ_GLOBAL, sk_slice(), enq_flags);
}

SK_OPS(void, sched_exit, struct scx_exit_info *ei)
{
	sk_exit_record(ei);
}

SK_SCHEDULER(sched_ops,
	.select_cpu = (void *)sched_select_cpu,
	.enqueue    = (void *)sched_enqueue,
	.exit       = (void *)sched_exit);
