/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * dsq.bpf.h - the dsq component's BPF half: user DSQs created from the
 * layout Go hands over, insertion FIFO or by weighted virtual time, and
 * dispatch that serves a CPU from its own DSQ first and then steals from
 * the others, nearest first.
 *
 *   Go:  layout, _ := dsq.New(topo, &dsq.Options{Kind: dsq.PerLLC})
 *        scx.Config{Components: []scx.Component{layout}}  (Bind at Load)
 *   BPF: ops.init     -> sk_dsq_create_all()
 *        ops.enqueue  -> sk_dsq_enqueue_vtime(p, sk_dsq_of_cpu(cpu), ...)
 *        ops.dispatch -> sk_dsq_dispatch(cpu)
 *        ops.stopping -> sk_dsq_charge(p, sk_runtime_used(p))  (runtime.bpf.h)
 *
 * Classes. With dsq.Options.Classes > 1 every domain has one DSQ per
 * class, and the scheduler (or an orderer such as preempt.bpf.h) picks
 * the class:
 *
 *        ops.enqueue  -> sk_dsq_insert_class(p, dom, cls, slice, vtime, enq_flags),
 *                        vtime from sk_dsq_class_clock(dom, cls) (vtime.bpf.h)
 *        ops.dispatch -> for cls in the order it wants: sk_dsq_take(cpu, cls)
 *        anywhere     -> sk_dsq_queued(dom, cls)
 *
 * The single-class calls above work on class 0.
 *
 * Prerequisites: vmlinux.h, <scxkit/scx.bpf.h>
 */
#ifndef __SCXKIT_DSQ_BPF_H
#define __SCXKIT_DSQ_BPF_H

#include "dsq.h"
#include "vtime.bpf.h"

struct sk_dsq_layout sk_dsq_layout SEC(".bss");

/* Counter and depth slots: one per (domain, class), fixed stride. */
#define SK_DSQ_MAX_SLOTS (SK_DSQ_MAX * SK_DSQ_MAX_CLASSES)

/*
 * Queue depths per (domain, class) slot, filled by the sk_dsq_depths
 * program for package dsq.
 */
u64 sk_dsq_depth[SK_DSQ_MAX_SLOTS] SEC(".bss");

/* Each DSQ's vtime clock: the virtual time of the task that last started from it. */
static u64 sk_dsq_vtime_now[SK_DSQ_MAX];

/* The vtime clock of each (domain, class) queue, slot dom * SK_DSQ_MAX_CLASSES + cls. */
static u64 sk_dsq_class_vtime_now[SK_DSQ_MAX_SLOTS];

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SK_DSQ_MAX_SLOTS);
	__type(key, u32);
	__type(value, struct sk_dsq_counters);
} sk_dsq_stats SEC(".maps");

/* sk_dsq_counters_of - the counters of (domain @dom, class @cls). */
static __always_inline struct sk_dsq_counters *sk_dsq_counters_of(u32 dom, u32 cls)
{
	u32 slot = dom * SK_DSQ_MAX_CLASSES + cls;

	return bpf_map_lookup_elem(&sk_dsq_stats, &slot);
}

/* sk_dsq_nr_classes - classes per domain, at least 1. */
static __always_inline u32 sk_dsq_nr_classes(void)
{
	u32 n = sk_dsq_layout.nr_classes;

	if (n < 1)
		return 1;
	return n < SK_DSQ_MAX_CLASSES ? n : SK_DSQ_MAX_CLASSES;
}

/* sk_dsq_nr - DSQs in the layout (0 until Go wrote it). */
static __always_inline u32 sk_dsq_nr(void)
{
	u32 nr = sk_dsq_layout.nr;

	return nr < SK_DSQ_MAX ? nr : SK_DSQ_MAX;
}

/*
 * sk_dsq_id - the DSQ id at index @idx, or SK_DSQ_NONE's 64-bit twin when
 * @idx is out of range. Bounds-checked behind barrier_var so that clang
 * cannot fold the check the verifier needs.
 */
static __always_inline u64 sk_dsq_id(u32 idx)
{
	barrier_var(idx);
	if (idx >= SK_DSQ_MAX || idx >= sk_dsq_layout.nr)
		return ~0ULL;
	return sk_dsq_layout.ids[idx];
}

/*
 * sk_dsq_class_id - the DSQ id of (domain @dom, class @cls), ~0 when
 * either is out of range.
 */
static __always_inline u64 sk_dsq_class_id(u32 dom, u32 cls)
{
	u64 id = sk_dsq_id(dom);

	if (id == ~0ULL || cls >= sk_dsq_nr_classes())
		return ~0ULL;
	return id + cls;
}

/* sk_dsq_queued - how many tasks wait in (domain @dom, class @cls), 0 if none exists. */
static __always_inline u32 sk_dsq_queued(u32 dom, u32 cls)
{
	u64 id = sk_dsq_class_id(dom, cls);
	s32 n;

	if (id == ~0ULL)
		return 0;
	n = scx_bpf_dsq_nr_queued(id);
	return n > 0 ? n : 0;
}

/* sk_dsq_of_cpu - the index of kernel CPU @cpu's DSQ, or SK_DSQ_NONE. */
static __always_inline u32 sk_dsq_of_cpu(s32 cpu)
{
	u32 c = cpu;

	barrier_var(c);
	if (cpu < 0 || c >= SK_DSQ_MAX_CPUS)
		return SK_DSQ_NONE;
	return sk_dsq_layout.cpu_dsq[c];
}

/**
 * sk_dsq_create_all - create every DSQ of the layout; call from ops.init.
 * Returns 0, or the first error of scx_bpf_create_dsq.
 */
static __always_inline s32 sk_dsq_create_all(void)
{
	u32 i, nc = sk_dsq_nr_classes();

	bpf_for(i, 0, sk_dsq_nr()) {
		s32 err, node = -1;
		u32 j = i, c;

		barrier_var(j);
		if (j >= SK_DSQ_MAX)
			break;
		node = sk_dsq_layout.nodes[j];
		bpf_for(c, 0, nc) {
			err = scx_bpf_create_dsq(sk_dsq_layout.ids[j] + c, node);
			if (err)
				return err;
		}
	}
	return 0;
}

/* sk_dsq_enqueue_fifo - queue @p at the tail of DSQ index @idx. */
static __always_inline bool sk_dsq_enqueue_fifo(struct task_struct *p, u32 idx, u64 slice, u64 enq_flags)
{
	u64 id = sk_dsq_id(idx);
	struct sk_dsq_counters *c;

	if (id == ~0ULL)
		return false;
	if ((c = sk_dsq_counters_of(idx, 0)))
		c->inserted++;
	return sk_dsq_insert(p, id, slice, enq_flags);
}

/**
 * sk_dsq_enqueue_vtime - queue @p on DSQ index @idx ordered by its virtual
 * time, which sk_dsq_charge advances by the time used divided by weight.
 * A task that slept is credited with at most one @slice of lag behind the
 * DSQ's clock, so it cannot hoard the CPU afterwards (vtime.bpf.h).
 */
static __always_inline bool sk_dsq_enqueue_vtime(struct task_struct *p, u32 idx, u64 slice, u64 enq_flags)
{
	u64 *clock = sk_vtime_clock(sk_dsq_vtime_now, SK_DSQ_MAX, idx);
	u64 id = sk_dsq_id(idx);
	struct sk_dsq_counters *c;

	if (id == ~0ULL || !clock)
		return false;
	if ((c = sk_dsq_counters_of(idx, 0)))
		c->inserted++;
	scx_bpf_dsq_insert_vtime(p, id, slice, sk_vtime_queue(p, clock, slice), enq_flags);
	return true;
}

/**
 * sk_dsq_insert_class - queue @p on the DSQ of (domain @dom, class @cls)
 * at virtual time @vtime with @slice. The caller keeps the clock: classes
 * order their tasks by whatever vtime it passes. Returns false, having
 * queued nothing, when (@dom, @cls) is not in the layout.
 */
static __always_inline bool sk_dsq_insert_class(struct task_struct *p, u32 dom, u32 cls, u64 slice, u64 vtime,
						u64 enq_flags)
{
	u64 id = sk_dsq_class_id(dom, cls);
	struct sk_dsq_counters *c;

	if (id == ~0ULL)
		return false;
	if ((c = sk_dsq_counters_of(dom, cls)))
		c->inserted++;
	scx_bpf_dsq_insert_vtime(p, id, slice, vtime, enq_flags);
	return true;
}

/*
 * sk_dsq_class_clock - the vtime clock of the (@dom, @cls) queue, for
 * sk_vtime_queue/sk_vtime_running/sk_vtime_enable (vtime.bpf.h): tasks of
 * one class in one domain age against each other only. NULL when @dom or
 * @cls is out of range (then the task keeps its own vtime). The slot is
 * bounded as computed, behind barrier_var: a bound checked on @dom alone
 * is lost when clang derives the slot from another copy of it.
 */
static __always_inline u64 *sk_dsq_class_clock(u32 dom, u32 cls)
{
	u32 k;

	if (dom >= SK_DSQ_MAX || cls >= SK_DSQ_MAX_CLASSES)
		return NULL;
	k = dom * SK_DSQ_MAX_CLASSES + cls;
	return sk_vtime_clock(sk_dsq_class_vtime_now, SK_DSQ_MAX_SLOTS, k);
}

/*
 * sk_dsq_started - note that @p, queued on DSQ index @idx, started running:
 * the DSQ's virtual clock follows the tasks it runs. Call from ops.running.
 */
static __always_inline void sk_dsq_started(struct task_struct *p, u32 idx)
{
	sk_vtime_running(p, sk_vtime_clock(sk_dsq_vtime_now, SK_DSQ_MAX, idx));
}

/*
 * sk_dsq_charge - advance @p's virtual time by @used_ns scaled by its weight
 * (100 for nice 0): heavier tasks age slower. Call from ops.stopping.
 */
static __always_inline void sk_dsq_charge(struct task_struct *p, u64 used_ns)
{
	sk_vtime_charge(p, used_ns);
}

/*
 * ___sk_dsq_take - move the first task of (domain @dom, class @cls) to
 * the local DSQ, counting it as dispatched or stolen.
 */
static __always_inline bool ___sk_dsq_take(u32 dom, u32 cls, bool stolen)
{
	u64 id = sk_dsq_class_id(dom, cls);
	struct sk_dsq_counters *c;

	if (id == ~0ULL || !sk_dsq_move_to_local(id))
		return false;
	if ((c = sk_dsq_counters_of(dom, cls))) {
		if (stolen)
			c->stolen++;
		else
			c->dispatched++;
	}
	return true;
}

/**
 * sk_dsq_take_from - serve @cpu from class @cls of its own domain, else
 * steal the first task of class @cls of the nearest other domain holding
 * more than steal_min_queued tasks of that class. Returns the domain the
 * task came from, SK_DSQ_NONE when none was moved.
 *
 * The steal loop is bpf_for over a count the verifier cannot know, and
 * indexes sk_dsq_layout.steal[own][j] with its copy of the loop variable
 * behind barrier_var and an explicit bound: the verifier sees each index
 * checked where it is used, however clang reorders the loop.
 */
static __always_inline u32 sk_dsq_take_from(s32 cpu, u32 cls)
{
	u32 own = sk_dsq_of_cpu(cpu), n, i;

	if (own == SK_DSQ_NONE)
		return SK_DSQ_NONE;
	if (___sk_dsq_take(own, cls, false))
		return own;
	barrier_var(own);
	if (own >= SK_DSQ_MAX)
		return SK_DSQ_NONE;
	n = sk_dsq_layout.nr_steal[own];
	if (n > SK_DSQ_MAX_STEAL)
		n = SK_DSQ_MAX_STEAL;
	bpf_for(i, 0, n) {
		u32 j = i, victim;

		barrier_var(j);
		if (j >= SK_DSQ_MAX_STEAL)
			break;
		victim = sk_dsq_layout.steal[own][j];
		if (sk_dsq_queued(victim, cls) <= sk_dsq_layout.steal_min_queued)
			continue;
		if (___sk_dsq_take(victim, cls, true))
			return victim;
	}
	return SK_DSQ_NONE;
}

/**
 * sk_dsq_take - move a task of class @cls to @cpu: from its own domain
 * first, then from the others in steal order (sk_dsq_take_from). Call
 * from ops.dispatch. Returns true when a task was moved.
 */
static __always_inline bool sk_dsq_take(s32 cpu, u32 cls)
{
	return sk_dsq_take_from(cpu, cls) != SK_DSQ_NONE;
}

/**
 * sk_dsq_dispatch - serve @cpu from its own DSQ (class 0), else steal the
 * first task of the nearest other DSQ holding more than steal_min_queued
 * tasks. Call from ops.dispatch. Returns true when a task was moved.
 */
static __always_inline bool sk_dsq_dispatch(s32 cpu)
{
	return sk_dsq_take(cpu, 0);
}

/*
 * sk_dsq_depths - record every DSQ's queue depth in sk_dsq_depth; package
 * dsq runs it (BPF_PROG_TEST_RUN) to read depths.
 */
SEC("syscall")
int sk_dsq_depths(void *ctx)
{
	u32 i, nc = sk_dsq_nr_classes();

	bpf_for(i, 0, sk_dsq_nr()) {
		u32 j = i, c;

		barrier_var(j);
		if (j >= SK_DSQ_MAX)
			break;
		bpf_for(c, 0, nc) {
			u32 k = j * SK_DSQ_MAX_CLASSES + c;
			s32 n;

			barrier_var(k);
			if (k >= SK_DSQ_MAX_SLOTS)
				break;
			n = scx_bpf_dsq_nr_queued(sk_dsq_layout.ids[j] + c);
			sk_dsq_depth[k] = n > 0 ? n : 0;
		}
	}
	return 0;
}

/**
 * sk_dsq_kick_idle - wake an idle CPU of domain @idx that @p may run on,
 * so that @p, just queued on the domain's DSQ, does not wait for a busy
 * CPU of the domain to finish its slice. Claims the CPU (clears its idle
 * bit) so that two wakers do not kick the same one. Returns whether it
 * kicked one.
 *
 * It runs at every enqueue, mostly when no CPU is idle (ops.select_cpu
 * found none), so it reads the idle mask once and returns at once when no
 * CPU @p may use is idle; otherwise it tries to claim only CPUs whose idle
 * bit is set, not every CPU of the domain.
 */
static __always_inline bool sk_dsq_kick_idle(struct task_struct *p, u32 idx)
{
	u32 nr = scx_bpf_nr_cpu_ids(), cpu;
	const struct cpumask *idle;
	bool kicked = false;

	idle = scx_bpf_get_idle_cpumask();
	if (!bpf_cpumask_intersects(idle, p->cpus_ptr))
		goto out;
	if (nr > SK_DSQ_MAX_CPUS)
		nr = SK_DSQ_MAX_CPUS;
	bpf_for(cpu, 0, nr) {
		if (!bpf_cpumask_test_cpu(cpu, idle) || sk_dsq_of_cpu(cpu) != idx ||
		    !bpf_cpumask_test_cpu(cpu, p->cpus_ptr))
			continue;
		if (scx_bpf_test_and_clear_cpu_idle(cpu)) {
			scx_bpf_kick_cpu(cpu, SK_KICK_IDLE);
			kicked = true;
			break;
		}
	}
out:
	scx_bpf_put_idle_cpumask(idle);
	return kicked;
}

/**
 * sk_dsq_tick - ops.tick helper: end @p's slice at this tick if it has
 * used @min_ns of its @slice ns and tasks wait in its domain @idx (any
 * class). Slices stay long while a CPU has its domain to itself and shrink
 * to about @min_ns (rounded up to a tick) under contention, as the fair
 * class's do: a task that no wakeup preempted waits that long, not a whole
 * slice, behind each task ahead of it. Returns whether it ended the slice.
 */
static __always_inline bool sk_dsq_tick(struct task_struct *p, u32 idx, u64 slice, u64 min_ns)
{
	u64 left = p->scx.slice;
	u32 c, nc = sk_dsq_nr_classes();

	if (!left || left >= slice || slice - left < min_ns)
		return false;
	bpf_for(c, 0, nc) {
		if (sk_dsq_queued(idx, c)) {
			p->scx.slice = 0;
			return true;
		}
	}
	return false;
}

/**
 * sk_dsq_nr_queued - how many tasks wait in domain @idx's DSQs, every
 * class summed (with one class: its one DSQ); 0 for an index out of
 * range. One scx_bpf_dsq_nr_queued per class: callable from any
 * context, a BPF timer's callback included (timer.bpf.h).
 */
static __always_inline u32 sk_dsq_nr_queued(u32 idx)
{
	u32 c, n = 0, nc = sk_dsq_nr_classes();

	if (sk_dsq_id(idx) == ~0ULL)
		return 0;
	bpf_for(c, 0, nc)
		n += sk_dsq_queued(idx, c);
	return n;
}

#endif /* __SCXKIT_DSQ_BPF_H */
