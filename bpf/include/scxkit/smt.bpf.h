/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * smt.bpf.h - SMT isolation: hardware threads of one core only run tasks
 * of the same class at the same time. A thread with nothing compatible to
 * run idles: "forced idle", charged to the class that holds the core.
 *
 * It comes in parts, which this header includes: classification
 * (smt_class.bpf.h: a class is an isolated cgroup with its descendants,
 * or the system class of every other task), policy (smt_policy.bpf.h:
 * who owns each core, when it changes hands, and the claims that keep two
 * classes off one core; smt_work.bpf.h: where it finds each class's
 * queued work), accounting (smt_stats.bpf.h: run time, forced idle,
 * handovers, preemptions, violations per class). This header adds
 * two front ends, which differ in where the tasks wait.
 *
 * 1. smt owns enqueue and dispatch. Each class has its own DSQ
 *    (sk_smt_dsq_base + class, ids scx.Open allocates to the component),
 *    ordered by the vtime the scheduler passes:
 *
 *   Go:  isolation, _ := smt.New(topo, &smt.Options{Isolate: []string{"/a", "/b"}})
 *        scx.Config{Components: []scx.Component{isolation}}
 *   BPF: ops.init        -> sk_smt_init()
 *        ops.select_cpu  -> return sk_smt_select_cpu(p, prev_cpu, wake_flags);
 *        ops.enqueue     -> sk_smt_enqueue(p, enq_flags, slice, vtime)
 *        ops.dispatch    -> sk_smt_dispatch(cpu, prev)
 *        ops.running     -> sk_smt_running(p)
 *        ops.stopping    -> sk_smt_stopping(p, runnable)
 *        ops.update_idle -> sk_smt_update_idle(cpu, idle)
 *        ops.disable     -> sk_smt_disable(p)
 *
 * 2. smt filters dsq's queues (smt.Options.OnDSQ). Tasks wait in dsq's
 *    (domain, class) queues, in the class the scheduler (or an orderer
 *    such as preempt) gives them; smt's classes are groups of dsq classes
 *    (smt.Options.Groups), and in ops.dispatch smt says which dsq classes
 *    the CPU may run now, as a mask for the orderer. Include this header
 *    after dsq.bpf.h (and before preempt.bpf.h, whose wakeups then prefer
 *    to preempt CPUs whose core lets the waker run: sk_smt_allows_on),
 *    and pass each task's dsq class:
 *
 *   Go:  layout, _ := dsq.New(topo, &dsq.Options{Kind: dsq.PerLLC, Classes: 3})
 *        isolation, _ := smt.New(topo, &smt.Options{OnDSQ: true, Groups: [][]int{{2}}})
 *        scx.Config{Components: []scx.Component{topo, layout, ..., isolation}}
 *   BPF: ops.select_cpu  -> pick a CPU, never insert into a local DSQ here
 *        ops.enqueue     -> if (!sk_smt_enqueue_on(p, enq_flags, cls, slice))
 *                                queue @p in dsq's queue of its class
 *        ops.dispatch    -> allowed = sk_smt_dispatch_on(cpu, prev, prev_cls);
 *                           if (allowed)
 *                                sk_smt_dispatched_on(cpu, <take a task of a
 *                                    class in allowed, or keep prev if its
 *                                    class is in allowed>);
 *                           e.g. sk_preempt_dispatch_on_mask(cpu, prev, allowed)
 *        ops.running     -> sk_smt_running_on(p, cls)
 *        ops.stopping, ops.update_idle, ops.disable: as in 1.
 *        ops.init        -> sk_dsq_create_all()  (no sk_smt_init)
 *
 *    Whoever takes the tasks must stay inside the mask: a class outside it
 *    would run beside a sibling of another group (counted as a violation).
 *
 * Scheduler requirements (smt.Layout.Needs declares them, so scx.Open sets
 * them and refuses a component that forbids one): SCX_OPS_ENQ_LAST, so that
 * a CPU whose class lost the core does not keep running its last task;
 * SCX_OPS_KEEP_BUILTIN_IDLE, as ops.update_idle is used;
 * SCX_OPS_ENQ_EXITING and SCX_OPS_ENQ_MIGRATION_DISABLED, so that every
 * task goes through ops.enqueue rather than straight to a local DSQ. For
 * the same reason ops.select_cpu must not insert a task into a local DSQ:
 * only the CPU itself, in ops.dispatch, may decide what it runs next.
 *
 * Prerequisites: vmlinux.h, <scxkit/scx.bpf.h>
 */
#ifndef __SCXKIT_SMT_BPF_H
#define __SCXKIT_SMT_BPF_H

#include "smt_class.bpf.h"
#include "smt_stats.bpf.h"
#include "smt_work.bpf.h"
#include "smt_policy.bpf.h"

#define SK_PICK_IDLE_CORE bpf_core_enum_value(enum scx_pick_idle_cpu_flags, SCX_PICK_IDLE_CORE)

/**
 * sk_smt_init - create the classes' DSQs; call from ops.init. Fails with
 * -EINVAL when Go has not bound the component (smt.Layout.Bind) or the
 * loader has not written its DSQ base.
 */
static __always_inline s32 sk_smt_init(void)
{
	u32 nr = sk_smt_nr_classes();
	s32 ret;
	u32 i;

	if (!nr) {
		sk_error("smt: no layout: add the smt component to scx.Config.Components");
		return -22; /* EINVAL */
	}
	if (!sk_smt_dsq_base) {
		sk_error("smt: no DSQ base: load through scx.Open, which allocates sk_smt_dsq_base");
		return -22; /* EINVAL */
	}
	bpf_for(i, 0, nr) {
		ret = scx_bpf_create_dsq(sk_smt_dsq(i), -1);
		if (ret)
			return ret;
	}
	return 0;
}

/**
 * sk_smt_select_cpu - a CPU for waking task @p: the kernel's pick (a
 * fully idle core first), without dispatching there directly, since only
 * the CPU itself, in ops.dispatch, may decide what it runs next.
 */
static __always_inline s32 sk_smt_select_cpu(struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	bool is_idle = false;

	return scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);
}

/*
 * sk_smt_enqueue_last - @p, of class @cls, is its CPU's last task
 * (SCX_ENQ_LAST, called on that CPU with its rq lock held, after
 * ops.stopping): it stays on the CPU, with @slice, if its class may still
 * run there. Returns whether it did.
 */
static __always_inline bool sk_smt_enqueue_last(struct task_struct *p, u32 cls, u64 enq_flags, u64 slice,
						 u64 now)
{
	if (!(enq_flags & SK_ENQ_LAST) || !sk_smt_claim_cpu(scx_bpf_task_cpu(p), cls, now))
		return false;
	sk_dsq_insert(p, SK_DSQ_LOCAL, slice, enq_flags);
	return true;
}

/**
 * sk_smt_enqueue - queue @p on its class's DSQ with @slice and @vtime, and
 * wake an idle CPU for it. A CPU's last task (SCX_ENQ_LAST) stays on the
 * CPU if its class may still run there.
 */
static __always_inline void sk_smt_enqueue(struct task_struct *p, u64 enq_flags, u64 slice, u64 vtime)
{
	u32 cls = sk_smt_class_of(p);
	u64 now = scx_bpf_now();
	s32 cpu;

	sk_smt_task_queued(p, now);
	if (sk_smt_enqueue_last(p, cls, enq_flags, slice, now))
		return;
	scx_bpf_dsq_insert_vtime(p, sk_smt_dsq(cls), slice, vtime, enq_flags);
	if (enq_flags & SK_ENQ_LAST)
		return;
	/* The CPU select_cpu chose, if idle; else any idle CPU, whole cores first. */
	scx_bpf_kick_cpu(scx_bpf_task_cpu(p), SK_KICK_IDLE);
	cpu = scx_bpf_pick_idle_cpu(p->cpus_ptr, SK_PICK_IDLE_CORE);
	if (cpu < 0)
		cpu = scx_bpf_pick_idle_cpu(p->cpus_ptr, 0);
	if (cpu >= 0)
		scx_bpf_kick_cpu(cpu, SK_KICK_IDLE);
}

/**
 * sk_smt_dispatch - fill @cpu's local DSQ with a task of a class that may
 * run beside its siblings, taking the core over when the policy allows
 * (smt_policy.bpf.h); call from ops.dispatch.
 *
 * Returns true when @cpu has something to run: a task moved to its local
 * DSQ, or @prev, which then comes back through ops.enqueue with
 * SCX_ENQ_LAST. Returns false when the CPU idles, forced or not.
 */
static __always_inline bool sk_smt_dispatch(s32 cpu, struct task_struct *prev)
{
	u32 prev_cls = SK_SMT_MAX_CLASSES, want;
	bool moved = false;

	sk_smt_dispatch_begin(cpu);
	if (prev && (prev->scx.flags & SK_TASK_QUEUED))
		prev_cls = sk_smt_class_of(prev);
	want = sk_smt_decide(cpu, prev, prev_cls);
	if (want < SK_SMT_MAX_CLASSES) {
		moved = sk_dsq_move_to_local(sk_smt_dsq(want)) || want == prev_cls;
		sk_smt_decided(cpu, moved);
	}
	sk_smt_dispatch_end(cpu);
	return moved;
}

/**
 * sk_smt_running - task @p starts running on this CPU; call from
 * ops.running. Records its class, ends forced idle and checks the
 * siblings for violations.
 */
static __always_inline void sk_smt_running(struct task_struct *p)
{
	___sk_smt_running(p, sk_smt_class_of(p));
}

#ifdef __SCXKIT_DSQ_BPF_H
/**
 * sk_smt_enqueue_on - @p, of dsq class @dsq_cls, is being queued: note
 * when (for the policy's wait), and keep a CPU's last task
 * (SCX_ENQ_LAST) on its CPU with @slice if its group may still run there.
 * Returns true when @p went to the local DSQ; else the scheduler queues it
 * in dsq's queue of its class.
 */
static __always_inline bool sk_smt_enqueue_on(struct task_struct *p, u64 enq_flags, u32 dsq_cls, u64 slice)
{
	u64 now = scx_bpf_now();

	sk_smt_task_queued(p, now);
	return sk_smt_enqueue_last(p, sk_smt_group_of(dsq_cls), enq_flags, slice, now);
}

/**
 * sk_smt_dispatch_on - the dsq classes @cpu may run now, as a mask (bit c
 * for dsq class c), having claimed them for the CPU; 0 when it idles,
 * forced or not. @prev_cls is @prev's dsq class, ignored when @prev is
 * NULL or no longer runnable. Call from ops.dispatch, and unless it
 * returned 0, sk_smt_dispatched_on once the orderer took a task of one of
 * those classes or kept @prev.
 */
static __always_inline u64 sk_smt_dispatch_on(s32 cpu, struct task_struct *prev, u32 prev_cls)
{
	u32 pg = SK_SMT_MAX_CLASSES, want;

	sk_smt_dispatch_begin(cpu);
	if (prev && (prev->scx.flags & SK_TASK_QUEUED))
		pg = sk_smt_group_of(prev_cls);
	want = sk_smt_decide(cpu, prev, pg);
	if (want >= SK_SMT_MAX_CLASSES) {
		sk_smt_dispatch_end(cpu);
		return 0;
	}
	return sk_smt_group_mask(want);
}

/**
 * sk_smt_dispatched_on - the end of a dispatch that sk_smt_dispatch_on
 * allowed: @ran says whether @cpu got a task to run or kept @prev. Without
 * one, the claim goes.
 */
static __always_inline void sk_smt_dispatched_on(s32 cpu, bool ran)
{
	sk_smt_decided(cpu, ran);
	sk_smt_dispatch_end(cpu);
}

/**
 * sk_smt_running_on - task @p, of dsq class @dsq_cls, starts running on
 * this CPU; call from ops.running.
 */
static __always_inline void sk_smt_running_on(struct task_struct *p, u32 dsq_cls)
{
	___sk_smt_running(p, sk_smt_group_of(dsq_cls));
}
#endif /* __SCXKIT_DSQ_BPF_H */

#endif /* __SCXKIT_SMT_BPF_H */
