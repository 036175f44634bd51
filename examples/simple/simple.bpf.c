//go:build ignore

/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * simple - one global queue, ordered by weighted virtual time or FIFO.
 *
 * A waking task that finds an idle CPU goes straight to that CPU's local
 * DSQ. Everything else waits in SHARED_DSQ, from which any CPU that runs
 * out of work takes the task with the smallest virtual time. A task's
 * virtual time advances by the time it ran divided by its weight, so nice
 * values hold; a task that slept long is clamped to one slice behind the
 * current time so it cannot hoard the CPU afterwards.
 */
#include <scxkit/scx.bpf.h>
#include <scxkit/runtime.bpf.h>
#include <scxkit/vtime.bpf.h>

#define SHARED_DSQ 0

/* Set by the loader before load. */
const volatile bool fifo;

/* Counters scx.Stats reports, named after the fields. */
struct simple_stats {
	u64 local SK_STAT_HELP("Tasks placed on an idle CPU's local DSQ at wakeup.");
	u64 enqueued SK_STAT_HELP("Tasks queued on the shared DSQ.");
	u64 dispatched SK_STAT_HELP("Tasks moved from the shared DSQ to a CPU.");
};
SK_STATS_DEFINE(struct simple_stats);

/* The vtime clock: virtual time of the task that started running last. */
static u64 vtime_now;

SK_OPS(s32, simple_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	bool is_idle = false;
	s32 cpu;

	cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);
	if (is_idle) {
		sk_stat_inc(local);
		sk_dsq_insert(p, SK_DSQ_LOCAL, sk_slice(), 0);
	}
	return cpu;
}

SK_OPS(void, simple_enqueue, struct task_struct *p, u64 enq_flags)
{
	sk_stat_inc(enqueued);
	if (fifo) {
		sk_dsq_insert(p, SHARED_DSQ, sk_slice(), enq_flags);
		return;
	}
	/* Credit at most one slice of sleep. */
	scx_bpf_dsq_insert_vtime(p, SHARED_DSQ, sk_slice(), sk_vtime_queue(p, &vtime_now, sk_slice()), enq_flags);
}

SK_OPS(void, simple_dispatch, s32 cpu, struct task_struct *prev)
{
	if (sk_dsq_move_to_local(SHARED_DSQ))
		sk_stat_inc(dispatched);
}

SK_OPS(void, simple_running, struct task_struct *p)
{
	sk_runtime_start(p);
	if (fifo)
		return;
	sk_vtime_running(p, &vtime_now);
}

SK_OPS(void, simple_stopping, struct task_struct *p, bool runnable)
{
	if (fifo)
		return;
	/* Charge the time it ran, scaled by 100 / weight. */
	sk_vtime_charge(p, sk_runtime_used(p));
}

SK_OPS(void, simple_enable, struct task_struct *p)
{
	sk_vtime_enable(p, &vtime_now);
}

SK_OPS_SLEEPABLE(s32, simple_init)
{
	return scx_bpf_create_dsq(SHARED_DSQ, -1);
}

SK_OPS(void, simple_exit, struct scx_exit_info *ei)
{
	sk_exit_record(ei);
}

SK_SCHEDULER(simple_ops,
	.select_cpu = (void *)simple_select_cpu,
	.enqueue    = (void *)simple_enqueue,
	.dispatch   = (void *)simple_dispatch,
	.running    = (void *)simple_running,
	.stopping   = (void *)simple_stopping,
	.enable     = (void *)simple_enable,
	.init       = (void *)simple_init,
	.exit       = (void *)simple_exit);
