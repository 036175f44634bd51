/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * vtime.bpf.h - weighted virtual time, the fair-share order of a DSQ that
 * tasks are queued on by vtime (scx_bpf_dsq_insert_vtime).
 *
 * A task's virtual time, p->scx.dsq_vtime, advances by the time it ran
 * scaled by 100 / its weight (100 for nice 0): heavier tasks age slower
 * and get a larger share. A clock, a u64 the scheduler keeps (one for the
 * whole scheduler, or one per DSQ or class), follows the virtual time of
 * the tasks that start running. A task that slept comes back at most one
 * slice behind its clock, so it cannot hoard the CPU afterwards; a new
 * task starts at the clock.
 *
 *   static u64 clock;
 *   ops.enable    sk_vtime_enable(p, &clock);
 *   ops.enqueue   scx_bpf_dsq_insert_vtime(p, dsq, slice,
 *                         sk_vtime_queue(p, &clock, slice), enq_flags);
 *   ops.running   sk_vtime_running(p, &clock);
 *   ops.stopping  sk_vtime_charge(p, sk_runtime_used(p));   (runtime.bpf.h)
 *
 * With one clock per class, sk_vtime_clock(clocks, nr, cls) bounds the
 * index; a NULL clock (an index out of range) means: queue at the task's
 * own vtime, leave no clock behind, start a new task at 0.
 *
 * Virtual times wrap around: they are compared as signed differences.
 *
 * Prerequisites: vmlinux.h, <bpf/bpf_helpers.h>
 */
#ifndef __SCXKIT_VTIME_BPF_H
#define __SCXKIT_VTIME_BPF_H

/* sk_vtime_before - whether virtual time @a comes before @b. */
static __always_inline bool sk_vtime_before(u64 a, u64 b)
{
	return (s64)(a - b) < 0;
}

/*
 * sk_vtime_clock - &@clocks[@i] of an array of @nr clocks, NULL when @i is
 * out of range. The bound is checked behind barrier_var, on the index the
 * access uses, as the verifier needs.
 */
static __always_inline u64 *sk_vtime_clock(u64 *clocks, u32 nr, u32 i)
{
	barrier_var(i);
	if (i >= nr)
		return NULL;
	return &clocks[i];
}

/**
 * sk_vtime_queue - the virtual time to queue @p at: its own, but not more
 * than @slice behind @clock. Call from ops.enqueue.
 */
static __always_inline u64 sk_vtime_queue(const struct task_struct *p, const u64 *clock, u64 slice)
{
	u64 vtime = p->scx.dsq_vtime;

	if (clock && sk_vtime_before(vtime, *clock - slice))
		vtime = *clock - slice;
	return vtime;
}

/**
 * sk_vtime_running - @p starts running: @clock moves up to its virtual
 * time. Call from ops.running.
 */
static __always_inline void sk_vtime_running(const struct task_struct *p, u64 *clock)
{
	if (clock && sk_vtime_before(*clock, p->scx.dsq_vtime))
		*clock = p->scx.dsq_vtime;
}

/**
 * sk_vtime_charge - advance @p's virtual time by @used_ns, the time it
 * ran, scaled by 100 / its weight. Call from ops.stopping. The kernel
 * keeps weights in 1..10000; a weight of 0 would count as 1.
 */
static __always_inline void sk_vtime_charge(struct task_struct *p, u64 used_ns)
{
	u32 w = p->scx.weight ? p->scx.weight : 1;

	p->scx.dsq_vtime += used_ns * 100 / w;
}

/**
 * sk_vtime_enable - @p joins the scheduler: it starts at @clock (0 without
 * one). Call from ops.enable.
 */
static __always_inline void sk_vtime_enable(struct task_struct *p, const u64 *clock)
{
	p->scx.dsq_vtime = clock ? *clock : 0;
}

#endif /* __SCXKIT_VTIME_BPF_H */
