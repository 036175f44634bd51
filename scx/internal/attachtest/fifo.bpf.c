//go:build ignore

/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/* fifo - a healthy minimal scheduler: every task on the global DSQ. */
#include <scxkit/scx.bpf.h>

struct fifo_stats {
	u64 enqueued;
};
SK_STATS_DEFINE(struct fifo_stats);

SK_OPS(void, fifo_enqueue, struct task_struct *p, u64 enq_flags)
{
	sk_stat_inc(enqueued);
	sk_dsq_insert(p, SK_DSQ_GLOBAL, sk_slice(), enq_flags);
}

/*
 * cgroup_set_idle exists from 7.0 on: on 6.16 the loader must drop this
 * callback rather than fail (TestDropsMissingCallbacks).
 */
SK_OPS(void, fifo_cgroup_set_idle, struct cgroup *cgrp, bool idle)
{
}

SK_OPS(void, fifo_exit, struct scx_exit_info *ei)
{
	sk_exit_record(ei);
}

SK_SCHEDULER(fifo_ops,
	.enqueue         = (void *)fifo_enqueue,
	.cgroup_set_idle = (void *)fifo_cgroup_set_idle,
	.exit            = (void *)fifo_exit);
