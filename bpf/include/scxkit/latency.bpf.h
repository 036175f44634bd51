/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * latency.bpf.h - per-cgroup scheduling latency: queueing delay (how long
 * a runnable task waits for a CPU), split by what ran on that CPU
 * meanwhile, plus on-CPU and off-CPU time, as per-CPU counters and
 * histograms that package latency reads. Works from tracing programs on any
 * kernel (latency/latency.bpf.c) and from a scheduler's own callbacks.
 *
 * Three events drive it, with @now from bpf_ktime_get_ns():
 *
 *   a task is woken          sk_lat_wakeup(p, now)
 *   a CPU switches tasks     sk_lat_switch(prev, next, prev_runnable, now)
 *   a task changes CPU       sk_lat_migrate(p, dest_cpu, now)
 *
 * A wait, seen from the waiting task T of cgroup G queued on CPU c:
 *
 *   wakeup or               switch      switch      switch-in
 *   switch-out (runnable)   A -> idle   idle -> B   of T
 *   |------- A (G) --------|---- idle --|---- B ----|
 *   |<-------- same ------>|<-- idle -->|<- other ->|
 *
 * Each stretch of the wait is charged to what occupied c during it: a task
 * of G (same), of another cgroup (other), or nothing (idle). This needs no
 * loop over waiting tasks at a switch: every CPU keeps two clocks that only
 * grow, the time each tracked cgroup ran on it (sk_lat_stats.oncpu_ns) and
 * the time any task ran on it (sk_lat_cpu.busy_ns). A wait reads both at
 * its start and at its end; same is the growth of G's clock, other the
 * growth of busy minus same, idle the rest. A task that migrates while it
 * waits closes the stretch on the old CPU and opens one on the new.
 *
 * Approximations: the clocks of a remote CPU are read without a lock, so a
 * read racing with that CPU's switch may count the interval before the
 * switch twice (the result is clamped: same <= busy <= delay); the cgroup
 * of a running task is the one it had when it was switched in.
 *
 * Configuration (.rodata, set by package latency before load):
 * sk_lat_bounds[0..sk_lat_nr_bounds) the histogram's bucket bounds in ns,
 * sk_lat_filter whether only the cgroups in sk_lat_cgroups are tracked,
 * sk_lat_outlier_ns the outlier threshold (0: none).
 *
 * Needs bpf_map_lookup_percpu_elem (kernel 5.19) and task storage. It
 * does not need scx.bpf.h, so that tracing programs can include it.
 *
 * Prerequisites: vmlinux.h, <bpf/bpf_helpers.h>, <bpf/bpf_core_read.h>
 */
#ifndef __SCXKIT_LATENCY_BPF_H
#define __SCXKIT_LATENCY_BPF_H

#include "latency.h"
#include "histogram.bpf.h"

_Static_assert(SK_LAT_MAX_BOUNDS == SK_HIST_MAX_BOUNDS, "sk_lat_bounds is a histogram.bpf.h array of bounds");

const volatile u32 sk_lat_nr_bounds = 0;
const volatile u64 sk_lat_bounds[SK_LAT_MAX_BOUNDS] = {};
const volatile u32 sk_lat_filter = 0;
const volatile u64 sk_lat_outlier_ns = 0;

/* A zero sk_lat_stats to create map entries from: it is too big for the stack. */
const volatile struct sk_lat_stats sk_lat_zero_stats = {};

/* Cgroups that found sk_lat_cgstats full and went uncounted. */
u64 sk_lat_nr_full = 0;

/* Per cgroup id, per CPU: counters and histogram. Sized by package latency. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1024);
	__type(key, u64);
	__type(value, struct sk_lat_stats);
} sk_lat_cgstats SEC(".maps");

/* The selected cgroup ids, when sk_lat_filter is set. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, u64);
	__type(value, u8);
} sk_lat_cgroups SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct sk_lat_cpu);
} sk_lat_cpus SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sk_lat_task);
} sk_lat_tasks SEC(".maps");

/* struct sk_lat_outlier records. Sized by package latency. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} sk_lat_outliers SEC(".maps");

/*
 * sk_lat_task_cgid - @p's cgroup v2 id (the kernfs id, its directory's
 * inode). @p must be a trusted BTF pointer (a tracepoint or struct_ops
 * argument): the walk is plain loads, which the verifier guards, rather
 * than four bpf_probe_read_kernel calls.
 */
static __always_inline u64 sk_lat_task_cgid(struct task_struct *p)
{
	return p->cgroups->dfl_cgrp->kn->id;
}

/* sk_lat_tracked - whether cgroup @cgid is counted. */
static __always_inline bool sk_lat_tracked(u64 cgid)
{
	if (!cgid)
		return false;
	if (!sk_lat_filter)
		return true;
	return bpf_map_lookup_elem(&sk_lat_cgroups, &cgid) != NULL;
}

/*
 * sk_lat_stats_get - this CPU's counters of @cgid, created if missing; NULL
 * when the map is full (counted in sk_lat_nr_full).
 */
static __always_inline struct sk_lat_stats *sk_lat_stats_get(u64 cgid)
{
	struct sk_lat_stats *st = bpf_map_lookup_elem(&sk_lat_cgstats, &cgid);

	if (st)
		return st;
	/* Casting away volatile: the helper only reads the zeros. */
	if (bpf_map_update_elem(&sk_lat_cgstats, &cgid, (void *)&sk_lat_zero_stats, BPF_NOEXIST) &&
	    bpf_map_lookup_elem(&sk_lat_cgstats, &cgid) == NULL) {
		__sync_fetch_and_add(&sk_lat_nr_full, 1);
		return NULL;
	}
	return bpf_map_lookup_elem(&sk_lat_cgstats, &cgid);
}

/*
 * sk_lat_bucket - the histogram bucket of a delay of @d ns under the bounds
 * package latency wrote: the first i with d <= sk_lat_bounds[i], or
 * sk_lat_nr_bounds if none (histogram.bpf.h).
 */
static __always_inline u32 sk_lat_bucket(u64 d)
{
	return sk_hist_bucket(d, sk_lat_bounds, sk_lat_nr_bounds);
}

/*
 * sk_lat_clocks - CPU @cpu's clocks at @now: *same, the time cgroup @cgid
 * ran there, and *busy, the time any task did. Both include the stretch
 * the running task has run so far.
 */
static __always_inline void sk_lat_clocks(u32 cpu, u64 cgid, u64 now, u64 *same, u64 *busy)
{
	struct sk_lat_stats *st = bpf_map_lookup_percpu_elem(&sk_lat_cgstats, &cgid, cpu);
	struct sk_lat_cpu *c;
	u32 zero = 0;
	u64 since, run = 0;

	*same = st ? st->oncpu_ns : 0;
	*busy = 0;
	c = bpf_map_lookup_percpu_elem(&sk_lat_cpus, &zero, cpu);
	if (!c)
		return;
	since = c->since_ns;
	if (c->cgid && since && now > since)
		run = now - since;
	*busy = c->busy_ns + run;
	if (c->cgid == cgid)
		*same += run;
}

/* sk_lat_wait_begin - the task of @t starts to wait on @cpu at @now. */
static __always_inline void sk_lat_wait_begin(struct sk_lat_task *t, u32 cpu, u32 kind, u64 now)
{
	t->wait_ns = now;
	t->wait_cpu = cpu;
	t->kind = kind;
	t->same_acc = 0;
	t->busy_acc = 0;
	sk_lat_clocks(cpu, t->cgid, now, &t->same0, &t->busy0);
}

/*
 * sk_lat_wait_end - @p, whose state is @t, ends its wait on @cpu at @now:
 * count it in its cgroup's counters and histogram, and send it to the
 * outlier ring buffer if it is long enough.
 */
static __always_inline void sk_lat_wait_end(struct task_struct *p, struct sk_lat_task *t, u32 cpu, u64 now)
{
	u64 delay = now > t->wait_ns ? now - t->wait_ns : 0;
	u64 same, busy, other, idle;
	struct sk_lat_outlier *o;
	struct sk_lat_stats *st;
	u32 b;

	sk_lat_clocks(t->wait_cpu, t->cgid, now, &same, &busy);
	same = t->same_acc + (same > t->same0 ? same - t->same0 : 0);
	busy = t->busy_acc + (busy > t->busy0 ? busy - t->busy0 : 0);
	if (busy > delay)
		busy = delay;
	if (same > busy)
		same = busy;
	other = busy - same;
	idle = delay - busy;
	t->wait_ns = 0;

	st = sk_lat_stats_get(t->cgid);
	if (!st)
		return;
	if (t->kind == SK_LAT_WAKEUP)
		st->wakeups++;
	else
		st->preempts++;
	st->delay_ns += delay;
	st->same_ns += same;
	st->other_ns += other;
	st->idle_ns += idle;
	b = sk_lat_bucket(delay);
	if (b < SK_LAT_NR_BUCKETS)
		st->buckets[b]++;

	if (!sk_lat_outlier_ns || delay < sk_lat_outlier_ns)
		return;
	o = bpf_ringbuf_reserve(&sk_lat_outliers, sizeof(*o), 0);
	if (!o) {
		st->outliers_lost++;
		return;
	}
	st->outliers++;
	o->cgid = t->cgid;
	o->delay_ns = delay;
	o->same_ns = same;
	o->other_ns = other;
	o->idle_ns = idle;
	o->at_ns = now;
	o->pid = BPF_CORE_READ(p, pid);
	o->tgid = BPF_CORE_READ(p, tgid);
	o->cpu = cpu;
	o->kind = t->kind;
	bpf_probe_read_kernel_str(o->comm, sizeof(o->comm), p->comm);
	bpf_ringbuf_submit(o, 0);
}

/*
 * sk_lat_wakeup - @p was woken at @now and waits on its CPU. A task that is
 * on a CPU (woken before it could block) does not wait; one already waiting
 * (preempted, then woken) keeps waiting from the switch-out. The time since
 * it blocked counts as off-CPU time.
 */
static __always_inline void sk_lat_wakeup(struct task_struct *p, u64 now)
{
	struct sk_lat_task *t;
	struct sk_lat_stats *st;
	u64 cgid;

	if (!p->pid || p->on_cpu)
		return;
	cgid = sk_lat_task_cgid(p);
	if (!sk_lat_tracked(cgid))
		return;
	t = bpf_task_storage_get(&sk_lat_tasks, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!t || t->wait_ns)
		return;
	if (t->sleep_ns) {
		st = sk_lat_stats_get(cgid);
		if (st && now > t->sleep_ns)
			st->offcpu_ns += now - t->sleep_ns;
		t->sleep_ns = 0;
	}
	t->cgid = cgid;
	sk_lat_wait_begin(t, p->thread_info.cpu, SK_LAT_WAKEUP, now);
}

/*
 * sk_lat_switch - the current CPU switches from @prev to @next at @now;
 * @prev_runnable: prev stays on the runqueue (it was preempted, or yielded,
 * rather than blocked). Call it on the switching CPU.
 */
static __always_inline void sk_lat_switch(struct task_struct *prev, struct task_struct *next,
					  bool prev_runnable, u64 now)
{
	u32 zero = 0, cpu = bpf_get_smp_processor_id();
	struct sk_lat_cpu *c = bpf_map_lookup_elem(&sk_lat_cpus, &zero);
	struct sk_lat_stats *st;
	struct sk_lat_task *t;
	u64 cgid, prev_cgid;

	if (!c)
		return;
	prev_cgid = c->since_ns ? c->cgid : 0;
	/* Close the stretch prev ran: both clocks of this CPU advance. */
	if (c->since_ns && now > c->since_ns) {
		u64 ran = now - c->since_ns;

		if (c->tracked) {
			st = sk_lat_stats_get(c->cgid);
			if (st)
				st->oncpu_ns += ran;
		}
		if (c->cgid)
			c->busy_ns += ran;
	}
	cgid = next->pid ? sk_lat_task_cgid(next) : 0;
	c->cgid = cgid;
	c->since_ns = now;
	c->tracked = sk_lat_tracked(cgid);

	/*
	 * prev starts to wait, or to sleep. Its cgroup is the one it had at
	 * its switch-in (saves the walk); only before the first switch seen
	 * on this CPU is it read from the task.
	 */
	if (prev->pid) {
		cgid = prev_cgid ? prev_cgid : sk_lat_task_cgid(prev);
		if (sk_lat_tracked(cgid)) {
			t = bpf_task_storage_get(&sk_lat_tasks, prev, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
			if (t) {
				t->cgid = cgid;
				if (prev_runnable) {
					t->sleep_ns = 0;
					sk_lat_wait_begin(t, cpu, SK_LAT_PREEMPT, now);
				} else {
					t->wait_ns = 0;
					t->sleep_ns = now;
				}
			}
		} else {
			/* Moved out of the tracked cgroups: forget its state. */
			t = bpf_task_storage_get(&sk_lat_tasks, prev, 0, 0);
			if (t) {
				t->wait_ns = 0;
				t->sleep_ns = 0;
			}
		}
	}

	/* next's wait ends. */
	if (!next->pid)
		return;
	t = bpf_task_storage_get(&sk_lat_tasks, next, 0, 0);
	if (t && t->wait_ns)
		sk_lat_wait_end(next, t, cpu, now);
}

/*
 * sk_lat_migrate - @p moves to @dest_cpu at @now. If it waits, the
 * stretch on its old CPU is closed and one on @dest_cpu opened.
 */
static __always_inline void sk_lat_migrate(struct task_struct *p, u32 dest_cpu, u64 now)
{
	struct sk_lat_task *t = bpf_task_storage_get(&sk_lat_tasks, p, 0, 0);
	u64 same, busy;

	if (!t || !t->wait_ns || t->wait_cpu == dest_cpu)
		return;
	sk_lat_clocks(t->wait_cpu, t->cgid, now, &same, &busy);
	t->same_acc += same > t->same0 ? same - t->same0 : 0;
	t->busy_acc += busy > t->busy0 ? busy - t->busy0 : 0;
	t->wait_cpu = dest_cpu;
	sk_lat_clocks(dest_cpu, t->cgid, now, &t->same0, &t->busy0);
}

#endif /* __SCXKIT_LATENCY_BPF_H */
