/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * preempt.bpf.h - per-workload preemption policy: tasks fall into classes
 * (by cgroup, with descendants, or by task name), and each class's policy
 * says whom its wakeups preempt, how long its slices are, and what happens
 * when a slice ends. Go (package preempt) writes the policies and may
 * rewrite them while the scheduler runs; a change applies to the next
 * decision, and to running tasks at their next tick.
 *
 *   Go:  c, _ := preempt.New(cfg, &preempt.Options{ConfigFile: path})
 *        scx.Config{Components: []scx.Component{c}}   (Bind writes cfg)
 *        c.Write(cfg)                       (any time after load, also after attach)
 *   BPF: ops.select_cpu -> return sk_preempt_select_cpu(p, prev_cpu, wake_flags);
 *        ops.runnable   -> sk_preempt_runnable(p, enq_flags)
 *        ops.enqueue    -> sk_preempt_enqueue(p, enq_flags, vtime)
 *        ops.dispatch   -> sk_preempt_dispatch(cpu, prev)
 *        ops.running    -> sk_preempt_running(p)
 *        ops.stopping   -> sk_preempt_stopping(p, runnable)
 *        ops.tick       -> sk_preempt_tick(p)
 *        ops.yield      -> return sk_preempt_yield(from, to);
 *        ops.enable     -> sk_preempt_enable(p)
 *        ops.init       -> sk_preempt_init()
 *
 * Classes are numbered by priority, 0 the highest. Each has a DSQ
 * (sk_preempt_dsq_base + class, ids scx.Open allocates: preempt's
 * Needs.DSQs and DSQBase) ordered by the vtime the scheduler passes;
 * dispatch takes the first task of the highest class with work.
 *
 * Wakeup preemption. A waking task that finds no idle CPU looks for a
 * victim among the CPUs it may use, running task R of class r, for its own
 * class w with policy W:
 *
 *   R's class is no-preempt (SK_PREEMPT_F_NO_PREEMPT)  -> never
 *   W is background                                    -> never
 *   R's class is background (SK_PREEMPT_F_BACKGROUND)  -> always
 *   W.wakeup NEVER                                     -> never
 *   W.wakeup LOWER                                     -> if w < r
 *   W.wakeup AFTER                                     -> if R ran >= W.after_ns
 *
 * and kicks the CPU of the lowest-priority victim (among equals the
 * waking task's previous CPU, where the wakeup usually runs, so that no
 * IPI is needed; else the longest running) with SCX_KICK_PREEMPT. The victim's CPU then dispatches
 * the highest class with work, which holds the waking task unless another
 * CPU took it first.
 *
 * The per-CPU words a waker reads are written without locks by their CPU
 * and may be a moment old, so a kick can land on a task that its sender
 * would not have chosen. No-preempt is therefore enforced where it takes
 * effect: a dispatch whose previous task is no-preempt, still runnable
 * and short of its slice gives the slice back, and the task runs on
 * (counted as kept, not preempted).
 *
 * Starvation. Priorities are strict, save one bound: a class whose queue
 * made no progress (no task taken from it) for SK_PREEMPT_STARVE_NS (500ms)
 * while holding tasks is boosted above all others for SK_PREEMPT_BOOST_NS (100ms, counted as
 * starved), so a busy high class cannot stall a lower one into the
 * kernel's watchdog. A starved class thus gets at least about a sixth of
 * the CPUs.
 *
 * Tick. At the end of a slice, a TICK_YIELD task goes back to its queue
 * behind the tasks of its class with lower vtime. A TICK_RUN_ON task gets
 * another slice as long as no higher class has work, its own class and
 * lower ones waiting, for at most run_on_ns past its first slice (so that
 * a CPU-bound task cannot starve its class into the watchdog).
 *
 * Counters (per class): preempt_stats.bpf.h says what each counts.
 *
 * Over preempt's own DSQs, the scheduler must not set SCX_OPS_ENQ_LAST:
 * a task alone on its CPU runs on through ops.dispatch, which refills its
 * slice. (preempt's Needs.Forbids says so: scx.Open refuses the flag. Its
 * Needs.Callbacks are the ten above, and it owns ops.enqueue and
 * ops.dispatch.)
 *
 * On dsq's queues (preempt.Options.OnDSQ). Included after dsq.bpf.h,
 * this header also provides an orderer over dsq's (domain, class) DSQs
 * that owns nothing: a class's queue is dsq's class of the task's domain
 * (dsq.Options.Classes must cover the Config's classes, which package
 * preempt checks; should a higher class turn up, it shares dsq's last),
 * starvation state is kept per (domain, class), and wakeup idle kicks and
 * victims are CPUs of the task's domain:
 *
 *        ops.select_cpu -> return sk_preempt_select_cpu_on(p, prev_cpu, wake_flags, dom);
 *        ops.enqueue    -> sk_preempt_enqueue_on(p, enq_flags, vtime, dom)
 *        ops.dispatch   -> sk_preempt_dispatch_on(cpu, prev)
 *                          or, with a filter such as smt.bpf.h's sk_smt_dispatch_on,
 *                          which returns the mask of the dsq classes @cpu may run now:
 *                          sk_preempt_dispatch_on_mask(cpu, prev, allowed)
 *        ops.init       -> sk_dsq_create_all()    (no sk_preempt_init)
 *
 * and the other seven hooks as above. sk_preempt_dispatch_on_mask takes
 * only from the dsq classes whose bit is set in its mask (bit c = dsq
 * class c), boosts only those when they starve, and keeps @prev on only
 * when its class's bit is set; sk_preempt_dispatch_on is it with every
 * bit set.
 *
 * Here the scheduler may set SCX_OPS_ENQ_LAST (preempt's Needs forbids no
 * flag with OnDSQ), as a filter such as smt.bpf.h requires: the kernel
 * keeps a runnable @prev whenever ops.dispatch left it a slice, whatever
 * the flag says, and sk_preempt_dispatch_on(_mask) grants @prev a slice
 * whenever it takes no other task. The flag thus takes effect only when
 * the mask denies @prev's class (or its task storage is missing): then
 * ops.enqueue, sk_preempt_enqueue_on, gets @prev with SCX_ENQ_LAST, not as
 * a wakeup, and queues it in its domain's queue of its class.
 *
 * Included after smt.bpf.h (itself after dsq.bpf.h), the victim of a
 * wakeup is preferably a CPU whose core smt lets run the waker's class
 * now (sk_smt_allows_on): a CPU whose core another group holds would go
 * on with that group's work until its tenure ran out.
 *
 * The parts, each of which compiles alone: preempt_class.bpf.h (the
 * configuration and the class of each task), preempt_stats.bpf.h (the
 * counters), preempt_policy.bpf.h (per-CPU state, starvation, victims,
 * slices, and the hooks both front ends share). This header holds the two
 * front ends, over preempt's own DSQs and over dsq's queues.
 *
 * Prerequisites: vmlinux.h, <scxkit/scx.bpf.h>
 */
#ifndef __SCXKIT_PREEMPT_BPF_H
#define __SCXKIT_PREEMPT_BPF_H

#include "preempt.h"
#include "preempt_class.bpf.h"
#include "preempt_stats.bpf.h"
#include "preempt_policy.bpf.h"

/*
 * First DSQ id of the classes' queues, written by the loader before load
 * (scx.Open allocates SK_PREEMPT_MAX_CLASSES ids; preempt's Needs.DSQBase
 * names this global).
 */
const volatile u64 sk_preempt_dsq_base;

/* sk_preempt_dsq - the DSQ of class @cls. */
static __always_inline u64 sk_preempt_dsq(u32 cls)
{
	return sk_preempt_dsq_base + cls;
}

/**
 * sk_preempt_select_cpu - pick a CPU for waking @p; an idle one gets @p
 * at once, with its class's slice.
 */
static __always_inline s32 sk_preempt_select_cpu(struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	bool idle = false;
	s32 cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &idle);

	if (idle)
		sk_dsq_insert(p, SK_DSQ_LOCAL, sk_preempt_queue_slice(p, true), 0);
	return cpu;
}

/**
 * sk_preempt_enqueue - queue @p on its class's DSQ at @vtime with the
 * class's slice; for a wakeup, wake an idle CPU or preempt one the policy
 * allows.
 */
static __always_inline void sk_preempt_enqueue(struct task_struct *p, u64 enq_flags, u64 vtime)
{
	const struct sk_preempt_config *cfg = sk_preempt_config();
	struct sk_preempt_task *t = sk_preempt_task_of(p, cfg, false);
	u32 cls = t ? t->cls : 0;
	struct sk_preempt_policy pol;
	s32 cpu;

	sk_preempt_policy_of(cfg, cls, &pol);
	/* An empty queue starts its starvation clock now. */
	if (cls < SK_PREEMPT_MAX_CLASSES && scx_bpf_dsq_nr_queued(sk_preempt_dsq(cls)) <= 0)
		SK_WRITE_ONCE(sk_preempt_progress[cls], scx_bpf_now());
	scx_bpf_dsq_insert_vtime(p, sk_preempt_dsq(cls), pol.slice_ns, vtime, enq_flags);
	if (t)
		t->grant_gen = cfg ? cfg->gen : 0;
	if (!(enq_flags & SK_ENQ_WAKEUP))
		return;
	cpu = scx_bpf_pick_idle_cpu(p->cpus_ptr, 0);
	if (cpu >= 0) {
		scx_bpf_kick_cpu(cpu, SK_KICK_IDLE);
		return;
	}
	sk_preempt_kick_victim(p, cfg, cls, &pol, SK_PREEMPT_ANY_DOM);
}

/* sk_preempt_take - move the first task of class @cls's queue here. */
static __always_inline bool sk_preempt_take(u32 cls, u64 now)
{
	if (!sk_dsq_move_to_local(sk_preempt_dsq(cls)))
		return false;
	if (cls < SK_PREEMPT_MAX_CLASSES)
		SK_WRITE_ONCE(sk_preempt_progress[cls], now);
	return true;
}

/**
 * sk_preempt_dispatch - run the next task on @cpu: @prev on, if it is
 * no-preempt and was cut short, or runs on past its slice; else a task of
 * a starved class; else the first task of the highest class with work,
 * @prev counting as work of its class (behind the tasks queued there,
 * unless it runs on); else @prev on for another slice. Returns false when
 * the CPU has nothing to run.
 */
static __always_inline bool sk_preempt_dispatch(s32 cpu, struct task_struct *prev)
{
	const struct sk_preempt_config *cfg = sk_preempt_config();
	u32 nr = sk_preempt_nr_classes(cfg), pcls = SK_PREEMPT_MAX_CLASSES;
	struct sk_preempt_task *pt = NULL;
	struct sk_preempt_policy pp = {};
	u64 ran = 0, now;
	int i;

	if (prev && (prev->scx.flags & SK_TASK_QUEUED))
		pt = sk_preempt_task_of(prev, cfg, false);
	if (pt) {
		u64 used = prev->se.sum_exec_runtime - pt->slice_at;

		pcls = pt->cls;
		sk_preempt_policy_of(cfg, pcls, &pp);
		ran = prev->se.sum_exec_runtime - pt->stint_at;
		if ((pp.flags & SK_PREEMPT_F_NO_PREEMPT) && !pt->yielded && used < pt->granted &&
		    used < pp.slice_ns) {
			sk_preempt_grant(prev, pt, cfg, pp.slice_ns - used);
			sk_preempt_count(pp.id, kept, 1);
			return true;
		}
	}
	now = scx_bpf_now();
	bpf_for(i, 0, nr) {
		u64 progress = SK_READ_ONCE(sk_preempt_progress[i]);
		u64 until = SK_READ_ONCE(sk_preempt_boost_until[i]);

		if (now >= until) {
			/*
			 * Signed: scx_bpf_now() is per-CPU and another CPU's
			 * progress stamp may be a little ahead of ours.
			 */
			if ((s64)(now - progress) <= (s64)SK_PREEMPT_STARVE_NS ||
			    scx_bpf_dsq_nr_queued(sk_preempt_dsq(i)) <= 0)
				continue;
			SK_WRITE_ONCE(sk_preempt_boost_until[i], now + SK_PREEMPT_BOOST_NS);
			sk_preempt_count(sk_preempt_id(cfg, i), starved, 1);
		}
		if (sk_preempt_take(i, now))
			return true;
	}
	bpf_for(i, 0, nr) {
		if (pt && i == pcls && pp.tick == SK_PREEMPT_TICK_RUN_ON && !pt->yielded &&
		    ran < pp.slice_ns + pp.run_on_ns) {
			sk_preempt_grant(prev, pt, cfg, pp.slice_ns);
			sk_preempt_count(pp.id, run_ons, 1);
			return true;
		}
		if (sk_preempt_take(i, now))
			return true;
		/*
		 * @prev is not on its class's queue yet: with nothing else of
		 * its class waiting, it outranks every lower class.
		 */
		if (pt && i == pcls && !pt->yielded) {
			sk_preempt_grant(prev, pt, cfg, pp.slice_ns);
			return true;
		}
	}
	/* Queues of classes a reconfiguration removed drain last. */
	bpf_for(i, nr, SK_PREEMPT_MAX_CLASSES) {
		if (sk_dsq_move_to_local(sk_preempt_dsq(i)))
			return true;
	}
	if (pt) {
		sk_preempt_grant(prev, pt, cfg, pp.slice_ns);
		return true;
	}
	return false;
}

/* sk_preempt_init - create the classes' DSQs; call from ops.init. */
static __always_inline s32 sk_preempt_init(void)
{
	s32 err;
	int i;

	if (!sk_preempt_dsq_base) {
		sk_error("preempt: no DSQ base: load through scx.Open with the preempt component, which allocates sk_preempt_dsq_base");
		return -22; /* EINVAL */
	}
	bpf_for(i, 0, SK_PREEMPT_MAX_CLASSES) {
		err = scx_bpf_create_dsq(sk_preempt_dsq(i), -1);
		if (err)
			return err;
	}
	return 0;
}

#ifdef __SCXKIT_DSQ_BPF_H
/*
 * The orderer over dsq's queues. Starvation state per (domain, class),
 * slots dom * SK_PREEMPT_MAX_CLASSES + cls.
 */
#define SK_PREEMPT_MAX_ON_SLOTS (SK_DSQ_MAX * SK_PREEMPT_MAX_CLASSES)

static u64 sk_preempt_progress_on[SK_PREEMPT_MAX_ON_SLOTS];
static u64 sk_preempt_boost_on[SK_PREEMPT_MAX_ON_SLOTS];

/*
 * sk_preempt_on_slot - &@arr[slot of (@dom, @cls)], NULL out of range.
 * The bound is checked on the index the access uses, behind barrier_var:
 * the loop variable of bpf_for in the callers is never used as an index.
 */
static __always_inline u64 *sk_preempt_on_slot(u64 *arr, u32 dom, u32 cls)
{
	u32 k;

	if (dom >= SK_DSQ_MAX || cls >= SK_PREEMPT_MAX_CLASSES)
		return NULL;
	k = dom * SK_PREEMPT_MAX_CLASSES + cls;
	barrier_var(k);
	if (k >= SK_PREEMPT_MAX_ON_SLOTS)
		return NULL;
	return &arr[k];
}

/* sk_preempt_dsq_class - @cls as a dsq class: dsq's last class holds the ones beyond. */
static __always_inline u32 sk_preempt_dsq_class(u32 cls)
{
	u32 nc = sk_dsq_nr_classes();

	return cls < nc ? cls : nc - 1;
}

/**
 * sk_preempt_select_cpu_on - pick a CPU for waking @p of domain @dom: an
 * idle CPU of @dom gets @p at once with its class's slice. An idle CPU
 * elsewhere that scx_bpf_select_cpu_dfl claimed is kicked (so that it
 * serves its own domain or goes idle again, visible as idle) and @p
 * stays on @prev_cpu, to be queued in @dom.
 */
static __always_inline s32 sk_preempt_select_cpu_on(struct task_struct *p, s32 prev_cpu, u64 wake_flags, u32 dom)
{
	bool idle = false;
	s32 cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &idle);

	if (!idle)
		return prev_cpu;
	if (dom != SK_DSQ_NONE && sk_dsq_of_cpu(cpu) != dom) {
		scx_bpf_kick_cpu(cpu, SK_KICK_IDLE);
		return prev_cpu;
	}
	sk_dsq_insert(p, SK_DSQ_LOCAL, sk_preempt_queue_slice(p, true), 0);
	return cpu;
}

/*
 * sk_preempt_kick_idle_on - wake an idle CPU of @dom that @p, of class
 * @cls, may use and that fits @cls (sk_preempt_cpu_fits: a CPU forced
 * idle by smt for another group would not run it); whether one was.
 */
static __always_inline bool sk_preempt_kick_idle_on(struct task_struct *p, u32 dom, u32 cls)
{
	u32 nr = scx_bpf_nr_cpu_ids(), cpu;

	if (nr > SK_DSQ_MAX_CPUS)
		nr = SK_DSQ_MAX_CPUS;
	bpf_for(cpu, 0, nr) {
		if (sk_dsq_of_cpu(cpu) != dom || !bpf_cpumask_test_cpu(cpu, p->cpus_ptr) ||
		    !sk_preempt_cpu_fits(cpu, cls))
			continue;
		if (scx_bpf_test_and_clear_cpu_idle(cpu)) {
			scx_bpf_kick_cpu(cpu, SK_KICK_IDLE);
			return true;
		}
	}
	return false;
}

/**
 * sk_preempt_enqueue_on - queue @p at @vtime on dsq's DSQ of (domain
 * @dom, its class) with the class's slice; for a wakeup, wake an idle CPU
 * of @dom or preempt one of @dom the policy allows. Returns false when
 * @dom is not a domain of the layout: @p then went to SCX_DSQ_GLOBAL.
 */
static __always_inline bool sk_preempt_enqueue_on(struct task_struct *p, u64 enq_flags, u64 vtime, u32 dom)
{
	const struct sk_preempt_config *cfg = sk_preempt_config();
	struct sk_preempt_task *t = sk_preempt_task_of(p, cfg, false);
	u32 cls = t ? t->cls : 0, q = sk_preempt_dsq_class(cls);
	struct sk_preempt_policy pol;
	u64 *progress;

	sk_preempt_policy_of(cfg, cls, &pol);
	/* An empty queue starts its starvation clock now. */
	progress = sk_preempt_on_slot(sk_preempt_progress_on, dom, q);
	if (progress && !sk_dsq_queued(dom, q))
		SK_WRITE_ONCE(*progress, scx_bpf_now());
	if (!sk_dsq_insert_class(p, dom, q, pol.slice_ns, vtime, enq_flags)) {
		sk_dsq_insert(p, SK_DSQ_GLOBAL, pol.slice_ns, enq_flags);
		return false;
	}
	if (t)
		t->grant_gen = cfg ? cfg->gen : 0;
	/*
	 * A wakeup needs a CPU, and so does a CPU's last task that a filter
	 * sent away (SCX_ENQ_LAST: that CPU goes idle): an idle CPU of @dom;
	 * only a wakeup preempts one.
	 */
	if (!(enq_flags & (SK_ENQ_WAKEUP | SK_ENQ_LAST)))
		return true;
	if (sk_preempt_kick_idle_on(p, dom, cls) || !(enq_flags & SK_ENQ_WAKEUP))
		return true;
	sk_preempt_kick_victim(p, cfg, cls, &pol, dom);
	return true;
}

/* sk_preempt_take_on - take a task of class @cls to @cpu through dsq, stamping progress. */
static __always_inline bool sk_preempt_take_on(s32 cpu, u32 cls, u64 now)
{
	u32 dom = sk_dsq_take_from(cpu, cls);
	u64 *progress;

	if (dom == SK_DSQ_NONE)
		return false;
	progress = sk_preempt_on_slot(sk_preempt_progress_on, dom, cls);
	if (progress)
		SK_WRITE_ONCE(*progress, now);
	return true;
}

/**
 * sk_preempt_dispatch_on_mask - sk_preempt_dispatch over dsq's queues, of
 * the dsq classes whose bit is set in @allowed (bit c = dsq class c) only:
 * @prev on if it is no-preempt and was cut short; else a starved class of
 * this CPU's domain; else the classes in priority order, each from this
 * domain first and then by dsq's steal order (sk_dsq_take), @prev
 * counting as work of its class; else @prev on. @prev is kept, granted a
 * slice or counted as work only when the bit of its dsq class is set; a
 * class whose bit is clear is neither taken from nor boosted. A filter
 * such as smt.bpf.h's sk_smt_dispatch_on gives @allowed. Returns false
 * when the CPU has nothing to run.
 */
static __always_inline bool sk_preempt_dispatch_on_mask(s32 cpu, struct task_struct *prev, u64 allowed)
{
	const struct sk_preempt_config *cfg = sk_preempt_config();
	u32 nr = sk_preempt_nr_classes(cfg), nc = sk_dsq_nr_classes(), pcls = SK_PREEMPT_MAX_CLASSES;
	u32 dom = sk_dsq_of_cpu(cpu);
	struct sk_preempt_task *pt = NULL;
	struct sk_preempt_policy pp = {};
	u64 ran = 0, now, mask = allowed;
	u32 i;

	if (nr > nc)
		nr = nc;
	if (prev && (prev->scx.flags & SK_TASK_QUEUED))
		pt = sk_preempt_task_of(prev, cfg, false);
	/* @prev's class may not run here now: it is not kept, nor counted as work. */
	if (pt && !((mask >> sk_preempt_dsq_class(pt->cls)) & 1))
		pt = NULL;
	if (pt) {
		u64 used = prev->se.sum_exec_runtime - pt->slice_at;

		pcls = sk_preempt_dsq_class(pt->cls);
		sk_preempt_policy_of(cfg, pt->cls, &pp);
		ran = prev->se.sum_exec_runtime - pt->stint_at;
		if ((pp.flags & SK_PREEMPT_F_NO_PREEMPT) && !pt->yielded && used < pt->granted &&
		    used < pp.slice_ns) {
			sk_preempt_grant(prev, pt, cfg, pp.slice_ns - used);
			sk_preempt_count(pp.id, kept, 1);
			return true;
		}
	}
	now = scx_bpf_now();
	bpf_for(i, 0, nr) {
		u64 *progress = sk_preempt_on_slot(sk_preempt_progress_on, dom, i);
		u64 *until = sk_preempt_on_slot(sk_preempt_boost_on, dom, i);

		if (!progress || !until)
			break;
		if (!((mask >> i) & 1))
			continue;
		if (now >= SK_READ_ONCE(*until)) {
			/* Signed: scx_bpf_now() is per-CPU (see sk_preempt_dispatch). */
			if ((s64)(now - SK_READ_ONCE(*progress)) <= (s64)SK_PREEMPT_STARVE_NS || !sk_dsq_queued(dom, i))
				continue;
			SK_WRITE_ONCE(*until, now + SK_PREEMPT_BOOST_NS);
			sk_preempt_count(sk_preempt_id(cfg, i), starved, 1);
		}
		if (sk_preempt_take_on(cpu, i, now))
			return true;
	}
	bpf_for(i, 0, nr) {
		if (pt && i == pcls && pp.tick == SK_PREEMPT_TICK_RUN_ON && !pt->yielded &&
		    ran < pp.slice_ns + pp.run_on_ns) {
			sk_preempt_grant(prev, pt, cfg, pp.slice_ns);
			sk_preempt_count(pp.id, run_ons, 1);
			return true;
		}
		if (((mask >> i) & 1) && sk_preempt_take_on(cpu, i, now))
			return true;
		if (pt && i == pcls && !pt->yielded) {
			sk_preempt_grant(prev, pt, cfg, pp.slice_ns);
			return true;
		}
	}
	/* dsq classes beyond the configuration's drain last. */
	bpf_for(i, nr, nc) {
		if (((mask >> i) & 1) && sk_dsq_take(cpu, i))
			return true;
	}
	if (pt) {
		sk_preempt_grant(prev, pt, cfg, pp.slice_ns);
		return true;
	}
	return false;
}

/**
 * sk_preempt_dispatch_on - sk_preempt_dispatch over dsq's queues:
 * sk_preempt_dispatch_on_mask with every dsq class allowed. Returns false
 * when the CPU has nothing to run.
 */
static __always_inline bool sk_preempt_dispatch_on(s32 cpu, struct task_struct *prev)
{
	return sk_preempt_dispatch_on_mask(cpu, prev, ~0ULL);
}
#endif /* __SCXKIT_DSQ_BPF_H */

#endif /* __SCXKIT_PREEMPT_BPF_H */
