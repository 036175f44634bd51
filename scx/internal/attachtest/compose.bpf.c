//go:build ignore

/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * compose - a scheduler made of one stand-in component, "tally", to test
 * the component contract of package scx (scx.Component) end to end:
 *
 *   - tally owns tally_nr DSQs whose first id the loader writes into
 *     tally_dsq_base (scx.Needs.DSQs/DSQBase); ops.init creates them;
 *   - its Go half binds after load by setting tally_bound, which
 *     ops.enqueue reads: until then tasks go to the global DSQ;
 *   - it counts the tasks it queued per DSQ in tally_queued, which the Go
 *     half reports as stats.
 */
#include <scxkit/scx.bpf.h>

#define TALLY_MAX_DSQS 8

const volatile u64 tally_dsq_base;
const volatile u32 tally_nr = 1;
/* A second component's base, to test that ranges do not overlap. */
const volatile u64 other_dsq_base;
u32 tally_bound;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TALLY_MAX_DSQS);
	__type(key, u32);
	__type(value, u64);
} tally_queued SEC(".maps");

struct compose_stats {
	u64 enqueued SK_STAT_HELP("Tasks the scheduler queued.");
};
SK_STATS_DEFINE(struct compose_stats);

SK_OPS_SLEEPABLE(s32, compose_init)
{
	u32 i;
	s32 err;

	if (tally_nr > TALLY_MAX_DSQS)
		return -22; /* EINVAL */
	bpf_for(i, 0, tally_nr) {
		err = scx_bpf_create_dsq(tally_dsq_base + i, -1);
		if (err)
			return err;
	}
	return 0;
}

SK_OPS(void, compose_enqueue, struct task_struct *p, u64 enq_flags)
{
	u32 i;
	u64 *n;

	sk_stat_inc(enqueued);
	if (!tally_bound || !tally_nr) {
		sk_dsq_insert(p, SK_DSQ_GLOBAL, sk_slice(), enq_flags);
		return;
	}
	i = (u32)p->pid % tally_nr;
	n = bpf_map_lookup_elem(&tally_queued, &i);
	if (n)
		(*n)++;
	sk_dsq_insert(p, tally_dsq_base + (i & (TALLY_MAX_DSQS - 1)), sk_slice(), enq_flags);
}

SK_OPS(void, compose_dispatch, s32 cpu, struct task_struct *prev)
{
	u32 i;

	bpf_for(i, 0, tally_nr) {
		if (i >= TALLY_MAX_DSQS)
			break;
		if (sk_dsq_move_to_local(tally_dsq_base + i))
			return;
	}
	/* The kernel itself runs what is on the global DSQ. */
}

SK_OPS(void, compose_exit, struct scx_exit_info *ei)
{
	sk_exit_record(ei);
}

SK_SCHEDULER(compose_ops,
	.init     = (void *)compose_init,
	.enqueue  = (void *)compose_enqueue,
	.dispatch = (void *)compose_dispatch,
	.exit     = (void *)compose_exit);
