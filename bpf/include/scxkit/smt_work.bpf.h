/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * smt_work.bpf.h - where smt.bpf.h's policy finds work: which class has a
 * queued task that may run on a CPU. The tasks wait in smt's own queue of
 * each class (the owning front end: sk_smt_dsq_base + class), or, when
 * smt filters dsq's queues, in the (domain, class) queues of dsq.bpf.h,
 * whose classes smt groups into its own (sk_smt_groups).
 *
 * "Work here" is a queued task that may run on the CPU (its affinity
 * allows it), among the first SK_SMT_SCAN of a queue: in smt's own queue
 * of the class, or, on dsq's queues, in the queues of the class's dsq
 * classes in the CPU's domain (and, without a wait asked for, in the
 * domains it steals from, by their depth).
 *
 * Prerequisites: vmlinux.h, <scxkit/scx.bpf.h>; for dsq's queues,
 * <scxkit/dsq.bpf.h> included before this header.
 */
#ifndef __SCXKIT_SMT_WORK_BPF_H
#define __SCXKIT_SMT_WORK_BPF_H

#include "smt_class.bpf.h"

/* DSQ iterator kfuncs (6.12+), not in compat.bpf.h. */
int bpf_iter_scx_dsq_new(struct bpf_iter_scx_dsq *it, u64 dsq_id, u64 flags) __weak __ksym;
struct task_struct *bpf_iter_scx_dsq_next(struct bpf_iter_scx_dsq *it) __weak __ksym;
void bpf_iter_scx_dsq_destroy(struct bpf_iter_scx_dsq *it) __weak __ksym;

/*
 * First DSQ id of the classes' own queues, written by the loader before
 * load (scx.Open allocates the range, smt's Needs.DSQBase names this
 * global); 0 when smt filters dsq's queues instead.
 */
const volatile u64 sk_smt_dsq_base;

/* sk_smt_dsq - the own DSQ of class @cls. */
static __always_inline u64 sk_smt_dsq(u32 cls)
{
	return sk_smt_dsq_base + cls;
}

/* How many tasks at the head of a queue sk_smt_has_work looks at. */
#define SK_SMT_SCAN 8

/*
 * sk_smt_queue_has_work, sk_smt_has_work and sk_smt_next_class are
 * global functions, not static inline ones: the verifier checks a global
 * function once, on its own, instead of at every call site inside the
 * caller's loops. Inlined, the DSQ scans nested in dispatch's decision
 * took the verifier over a minute on 6.16 under qemu TCG. They take
 * scalars only, as global functions must.
 */

/*
 * sk_smt_queue_has_work - whether DSQ @dsq_id has a task that may run on
 * @cpu and has waited at least @min_wait ns, among its first SK_SMT_SCAN:
 * a queue whose head is pinned elsewhere must not make a CPU take a core
 * over for nothing, nor should a task that an idle core may pick up in a
 * moment make it preempt a sibling.
 */
__noinline int sk_smt_queue_has_work(u64 dsq_id, s32 cpu, u64 min_wait, u64 now)
{
	struct task_struct *p;
	int n = 0;

	if (scx_bpf_dsq_nr_queued(dsq_id) <= 0)
		return 0;
	bpf_for_each(scx_dsq, p, dsq_id, 0) {
		if (bpf_cpumask_test_cpu(cpu, p->cpus_ptr)) {
			struct sk_smt_task *t;

			if (!min_wait)
				return 1;
			t = bpf_task_storage_get(&sk_smt_tasks, p, 0, 0);
			if (!t || now - t->enq_at >= min_wait)
				return 1;
		}
		if (++n >= SK_SMT_SCAN)
			break;
	}
	return 0;
}

#ifdef __SCXKIT_DSQ_BPF_H
_Static_assert(SK_SMT_MAX_DSQ_CLASSES == SK_DSQ_MAX_CLASSES, "smt maps every dsq class");

/*
 * smt on dsq's queues: the class of each dsq class, written by package
 * smt (Options.OnDSQ). nr stays 0 when smt owns its queues.
 */
struct sk_smt_groups sk_smt_groups SEC(".bss");

/* sk_smt_group_of - the smt class of dsq class @dsq_cls (the system class if unmapped). */
static __always_inline u32 sk_smt_group_of(u32 dsq_cls)
{
	barrier_var(dsq_cls);
	if (dsq_cls >= SK_SMT_MAX_DSQ_CLASSES || dsq_cls >= sk_smt_groups.nr)
		return SK_SMT_SYSTEM;
	return sk_smt_groups.of_class[dsq_cls];
}

/*
 * sk_smt_group_mask - the dsq classes of smt class @cls, bit c for dsq
 * class c: computed by package smt, as ops.dispatch asks for it each time.
 */
static __always_inline u64 sk_smt_group_mask(u32 cls)
{
	barrier_var(cls);
	if (cls >= SK_SMT_MAX_CLASSES)
		return 0;
	return sk_smt_groups.mask[cls];
}

/*
 * sk_smt_dsq_has_work - whether a dsq class of smt class @cls has work
 * for @cpu: a task in its queue in @cpu's domain (sk_smt_queue_has_work),
 * or, when @min_wait is 0, more than steal_min_queued tasks in the queue
 * of a domain @cpu steals from (by depth only: sk_dsq_take decides).
 */
static __always_inline int sk_smt_dsq_has_work(u32 cls, s32 cpu, u64 min_wait, u64 now)
{
	u32 own = sk_dsq_of_cpu(cpu), nr = sk_smt_groups.nr, c, i, n;

	barrier_var(own);
	if (own >= SK_DSQ_MAX)
		return 0;
	if (nr > SK_SMT_MAX_DSQ_CLASSES)
		nr = SK_SMT_MAX_DSQ_CLASSES;
	n = sk_dsq_layout.nr_steal[own];
	if (n > SK_DSQ_MAX_STEAL)
		n = SK_DSQ_MAX_STEAL;
	bpf_for(c, 0, nr) {
		u64 id;

		if (sk_smt_group_of(c) != cls)
			continue;
		id = sk_dsq_class_id(own, c);
		if (id != ~0ULL && sk_smt_queue_has_work(id, cpu, min_wait, now))
			return 1;
		if (min_wait)
			continue;
		bpf_for(i, 0, n) {
			u32 j = i;

			barrier_var(j);
			if (j >= SK_DSQ_MAX_STEAL)
				break;
			if (sk_dsq_queued(sk_dsq_layout.steal[own][j], c) > sk_dsq_layout.steal_min_queued)
				return 1;
		}
	}
	return 0;
}
#endif /* __SCXKIT_DSQ_BPF_H */

/*
 * sk_smt_has_work - whether class @cls has a queued task that may run on
 * @cpu and has waited at least @min_wait ns: in dsq's queues when smt
 * filters them, else in the class's own queue.
 */
__noinline int sk_smt_has_work(u32 cls, s32 cpu, u64 min_wait, u64 now)
{
	if (cls >= SK_SMT_MAX_CLASSES)
		return 0;
#ifdef __SCXKIT_DSQ_BPF_H
	if (sk_smt_groups.nr)
		return sk_smt_dsq_has_work(cls, cpu, min_wait, now);
#endif
	return sk_smt_queue_has_work(sk_smt_dsq(cls), cpu, min_wait, now);
}

/*
 * sk_smt_next_class - the first class after @after (round robin, @after
 * itself excluded) with work that may run on @cpu and has waited
 * @min_wait, counting @prev_cls as work when @min_wait is 0;
 * SK_SMT_MAX_CLASSES when there is none.
 */
__noinline u32 sk_smt_next_class(u32 after, s32 cpu, u32 prev_cls, u64 min_wait, u64 now)
{
	u32 nr = sk_smt_nr_classes(), i;

	bpf_for(i, 1, nr) {
		u32 c = after + i;

		if (c >= nr)
			c -= nr;
		if ((c == prev_cls && !min_wait) || sk_smt_has_work(c, cpu, min_wait, now))
			return c;
	}
	return SK_SMT_MAX_CLASSES;
}

#endif /* __SCXKIT_SMT_WORK_BPF_H */
