/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * runtime.bpf.h - how long a task ran between ops.running and
 * ops.stopping, for charging virtual time and accounting load:
 *
 *   ops.running   sk_runtime_start(p);
 *   ops.stopping  u64 used = sk_runtime_used(p);
 *
 * Why not sk_slice() - p->scx.slice: when a CPU finds nothing else to run,
 * the kernel keeps the current task running and refills its slice with
 * SCX_SLICE_DFL, without calling ops.stopping and ops.running in between
 * (unless the scheduler sets SCX_OPS_ENQ_LAST). The slice then tells only
 * the last refill's share, and a task that has a CPU to itself looks as if
 * it hardly ran. The kernel's own clock of the task, se.sum_exec_runtime,
 * which sched_ext advances too, counts all of it.
 */
#ifndef __SCXKIT_RUNTIME_BPF_H
#define __SCXKIT_RUNTIME_BPF_H

/* Per task: p->se.sum_exec_runtime at its last ops.running. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, u64);
} sk_runtime_at_start SEC(".maps");

/* sk_runtime_start - @p starts running; call from ops.running. */
static __always_inline void sk_runtime_start(struct task_struct *p)
{
	u64 *at = bpf_task_storage_get(&sk_runtime_at_start, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);

	if (at)
		*at = p->se.sum_exec_runtime;
}

/**
 * sk_runtime_used - the ns @p ran since sk_runtime_start; call from
 * ops.stopping. Should the storage be missing (its allocation failed), it
 * falls back to the slice used, which is a lower bound.
 */
static __always_inline u64 sk_runtime_used(struct task_struct *p)
{
	u64 *at = bpf_task_storage_get(&sk_runtime_at_start, p, 0, 0);
	u64 now = p->se.sum_exec_runtime;

	if (!at || now < *at) {
		u64 slice = sk_slice();

		return p->scx.slice < slice ? slice - p->scx.slice : 0;
	}
	return now - *at;
}

#endif /* __SCXKIT_RUNTIME_BPF_H */
