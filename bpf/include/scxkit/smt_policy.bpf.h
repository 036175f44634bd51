/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * smt_policy.bpf.h - the policy part of smt.bpf.h: which class each CPU
 * may run, who owns each core, and the claims that keep two classes off
 * the siblings of one core. It decides a class from where the work is
 * (smt_work.bpf.h); the front ends in smt.bpf.h move the tasks (from
 * smt's own queues, or through a dsq orderer).
 *
 * Every core has an owner class. A CPU runs only tasks of the owner, and
 * only while no sibling runs (or has claimed) another class. In
 * ops.dispatch (sk_smt_decide), with "busy" meaning a sibling runs, holds
 * or waits for the owner's class:
 *
 *   not busy, another class has work here and (tenure >= hold_ns or the
 *   owner has no work here)                -> take the core over (no kick)
 *   busy, tenure >= hold_ns, a task of another class waited >= hold_ns/4
 *                                          -> take it over, kick the
 *                                             sibling (SCX_KICK_PREEMPT),
 *                                             forced idle until it left
 *   otherwise, owner has work here         -> run the owner's next task
 *   otherwise, another class has work here -> forced idle, charged to owner
 *   otherwise                              -> idle (no work: not forced)
 *
 * The wait before preempting leaves a fresh wakeup to an idle core
 * elsewhere instead of stopping a sibling for it.
 * Takeovers go round robin from the owner to the next class with work
 * this CPU may run, so a class with runnable work gets every core within
 * (classes - 1) tenures of hold_ns (plus a slice, the granularity at which
 * running CPUs look again): no class starves, the system class with its
 * kernel threads included. The system class is isolated like the others,
 * as kernel core scheduling treats untagged tasks; it pairs only with
 * itself.
 *
 * "Work here" is a queued task that may run on the CPU: smt_work.bpf.h.
 *
 * State machine of one CPU (its own word, cls, written only under its rq
 * lock; siblings read it without lock):
 *
 *   none --claim (dispatch, ENQ_LAST)--> cls --running--> cls, run
 *     ^  <--withdraw (sibling conflict)--'                   |    ^
 *     |            attribute change: stopping, not runnable, |    | running
 *     |            state still TASK_RUNNING                  v    | (restart)
 *     |                                              cls, run kept
 *     '---- stopping (unless a next task is claimed), update_idle(idle,
 *           local DSQ empty), disable of the kept task
 *
 * A task executes from ops.running to ops.stopping, and also across an
 * ops.stopping/ops.running pair that the kernel issues when it changes
 * a running task's attributes (see sk_smt_stopping): there the CPU keeps
 * its claim and running word, or a sibling could take the core while the
 * task still runs.
 *
 * A claim is an atomic exchange (a full barrier) followed by reading the
 * siblings' words and the core's owner; a takeover is a compare-and-swap
 * of the owner followed by reading the siblings' words. As in Dekker's
 * algorithm, of two CPUs that claim incompatible classes at once at least
 * one sees the other and withdraws, so no two siblings hold incompatible
 * claims, and a task runs only under a claim of its class.
 *
 * A CPU forced idle (smt_stats.bpf.h) is kicked (SCX_KICK_IDLE) by its
 * siblings at each of their stopping, withdrawals and idle entries, so it
 * looks again at least once per slice of theirs.
 *
 * Violations, an honest sanity check: ops.running exchanges the CPU's
 * running word (full barrier) and then reads the siblings' running words.
 * Two incompatible tasks whose [running, stopping] windows overlap on two
 * siblings are seen by at least one of the two running calls, so the
 * counter misses no overlap of those windows (which contain the tasks'
 * execution; the kept window of an attribute change is part of it). It
 * should stay 0. Outside the component's control, and so
 * possible: the kernel's bypass mode (while a scheduler attaches or
 * detaches); tasks of other sched classes (RT, deadline), which are not
 * checked at all; a task that ops.select_cpu inserted into a local DSQ
 * (the CPU never decided); and a task whose cgroup (hence class) changes
 * while it runs (e.g. a shell writing its own pid to cgroup.procs), which
 * the kernel keeps on its CPU, calling ops.running with the new class
 * without ops.dispatch; that is counted and the task preempted at once.
 * Start tasks in their cgroup (CLONE_INTO_CGROUP) or move them while they
 * sleep. The same goes for a running task switched into sched_ext from
 * another policy (e.g. from SCHED_FIFO back to SCHED_OTHER). Other
 * attribute changes of a running task (affinity, nice) keep its class and
 * are safe.
 *
 * Prerequisites: vmlinux.h, <scxkit/scx.bpf.h>; for the work of dsq's
 * queues, <scxkit/dsq.bpf.h> included before this header.
 */
#ifndef __SCXKIT_SMT_POLICY_BPF_H
#define __SCXKIT_SMT_POLICY_BPF_H

#include "smt_class.bpf.h"
#include "smt_stats.bpf.h"
#include "smt_work.bpf.h"

/*
 * Per-CPU state. Class words hold class + 1, 0 meaning none, so that the
 * zeroed .bss is the idle state. Each word is written only by its CPU
 * (under its rq lock); siblings read it racily, hence READ_ONCE.
 */
struct sk_smt_cpu_state {
	u64 cls;         /* class claimed or running */
	u64 run;         /* class of the task between running and stopping */
	u64 pending;     /* dispatch claimed cls for the next task: stopping keeps the claim */
	u64 wait;        /* class + 1 it waits to run while forced idle, 0 for none */
	u64 kept;        /* pid + 1 of the task whose restart cls and run are kept for, 0 for none */
	u64 dispatching; /* inside a dispatch, which may drop the rq lock */
	struct sk_smt_acct acct;
};

/* Per-core state: the owner class (+1, 0 before the first takeover). */
struct sk_smt_core_state {
	u64 owner;
	u64 since; /* when the owner took the core */
	u64 _pad[6];
};

static struct sk_smt_cpu_state sk_smt_cpus[SK_SMT_MAX_CPUS];
static struct sk_smt_core_state sk_smt_cores[SK_SMT_MAX_CPUS];

/*
 * The lookups below bound their index right at the access, behind
 * barrier_var, so that clang cannot move the check away from the access
 * the verifier checks.
 */
static __always_inline struct sk_smt_cpu_state *sk_smt_cpu(s32 cpu)
{
	u32 c = cpu;

	barrier_var(c);
	if (cpu < 0 || c >= SK_SMT_MAX_CPUS)
		return NULL;
	return &sk_smt_cpus[c];
}

static __always_inline struct sk_smt_cpu_layout *sk_smt_cpu_layout(s32 cpu)
{
	u32 c = cpu;

	barrier_var(c);
	if (cpu < 0 || c >= SK_SMT_MAX_CPUS || c >= sk_smt_layout.nr_cpu_ids)
		return NULL;
	if (sk_smt_layout.cpus[c].core < 0)
		return NULL;
	return &sk_smt_layout.cpus[c];
}

static __always_inline struct sk_smt_core_state *sk_smt_core(const struct sk_smt_cpu_layout *lay)
{
	u32 c = lay->core;

	barrier_var(c);
	if (c >= SK_SMT_MAX_CPUS)
		return NULL;
	return &sk_smt_cores[c];
}

/* sk_smt_sibling - the @i-th other CPU of @lay's core, or -1. */
static __always_inline s32 sk_smt_sibling(const struct sk_smt_cpu_layout *lay, u32 i)
{
	barrier_var(i);
	if (i >= SK_SMT_MAX_SIBLINGS)
		return -1;
	return lay->siblings[i];
}

/* sk_smt_kick_waiters - wake the siblings of @lay that are forced idle. */
static __always_inline void sk_smt_kick_waiters(const struct sk_smt_cpu_layout *lay)
{
	u32 i;

	bpf_for(i, 0, SK_SMT_MAX_SIBLINGS) {
		s32 sib = sk_smt_sibling(lay, i);
		struct sk_smt_cpu_state *s = sk_smt_cpu(sib);

		if (s && SK_READ_ONCE(s->acct.fi_start))
			scx_bpf_kick_cpu(sib, SK_KICK_IDLE);
	}
}

/*
 * sk_smt_conflict - the first class word of a sibling that is set and
 * differs from @slot, or 0. With @running, only the running words count
 * (the violation check); otherwise claims and running words both do: a
 * CPU whose claim moved on to the next task still runs its previous one
 * until ops.stopping.
 */
static __always_inline u64 sk_smt_conflict(const struct sk_smt_cpu_layout *lay, u64 slot, bool running)
{
	u32 i;

	bpf_for(i, 0, SK_SMT_MAX_SIBLINGS) {
		struct sk_smt_cpu_state *s = sk_smt_cpu(sk_smt_sibling(lay, i));
		u64 v;

		if (!s)
			continue;
		v = SK_READ_ONCE(s->run);
		if (v && v != slot)
			return v;
		if (running)
			continue;
		v = SK_READ_ONCE(s->cls);
		if (v && v != slot)
			return v;
	}
	return 0;
}

/*
 * sk_smt_wait_begin - @me is forced idle from @now, charged to class
 * @cls, while it waits to run class @want. The wait word keeps siblings
 * from taking the core from @want before it had its tenure.
 */
static __always_inline void sk_smt_wait_begin(struct sk_smt_cpu_state *me, u32 cls, u32 want, u64 now)
{
	SK_WRITE_ONCE(me->wait, want + 1);
	sk_smt_fi_begin(&me->acct, cls, now);
}

/* sk_smt_wait_end - @me waits no more: its forced idle, if any, ends at @now. */
static __always_inline void sk_smt_wait_end(struct sk_smt_cpu_state *me, u64 now)
{
	SK_WRITE_ONCE(me->wait, 0);
	sk_smt_fi_end(&me->acct, now);
}

/* Drop @me's claim and let waiting siblings look again. */
static __always_inline void sk_smt_withdraw(struct sk_smt_cpu_state *me, const struct sk_smt_cpu_layout *lay)
{
	__sync_lock_test_and_set(&me->cls, 0);
	me->pending = 0;
	sk_smt_kick_waiters(lay);
}

/*
 * sk_smt_drop_kept - the task whose restart @me waits for, if any (see
 * sk_smt_stopping), left sched_ext while running: clear the running word
 * that its restart in ops.running would have set again, and let waiting
 * siblings look again.
 */
static __always_inline void sk_smt_drop_kept(struct sk_smt_cpu_state *me, const struct sk_smt_cpu_layout *lay)
{
	if (!me->kept)
		return;
	me->kept = 0;
	__sync_lock_test_and_set(&me->run, 0);
	sk_smt_kick_waiters(lay);
}

/*
 * sk_smt_claim - claim @cpu for class @cls: succeeds when @cls owns the
 * core (or nobody does yet) and no sibling holds another class. On
 * failure the claim is withdrawn and the CPU is forced idle, charged to
 * the class in its way. Caller holds @cpu's rq lock.
 */
static __always_inline bool sk_smt_claim(s32 cpu, struct sk_smt_cpu_state *me, const struct sk_smt_cpu_layout *lay,
					 struct sk_smt_core_state *core, u32 cls, u64 now)
{
	u64 slot = cls + 1, other, owner;

	__sync_lock_test_and_set(&me->cls, slot);
	other = sk_smt_conflict(lay, slot, false);
	owner = SK_READ_ONCE(core->owner);
	if (!other && (owner == slot || !owner))
		return true;
	sk_smt_withdraw(me, lay);
	sk_smt_wait_begin(me, (other ? other : owner) - 1, cls, now);
	return false;
}

/*
 * sk_smt_claim_cpu - sk_smt_claim for @cpu's own state and core, for a
 * front end's ops.enqueue of a CPU's last task (SCX_ENQ_LAST), called on
 * @cpu with its rq lock held. False when the claim failed or @cpu is not
 * in the layout.
 */
static __always_inline bool sk_smt_claim_cpu(s32 cpu, u32 cls, u64 now)
{
	struct sk_smt_cpu_state *me = sk_smt_cpu(cpu);
	struct sk_smt_cpu_layout *lay = sk_smt_cpu_layout(cpu);
	struct sk_smt_core_state *core = lay ? sk_smt_core(lay) : NULL;

	if (!me || !lay || !core || !sk_smt_claim(cpu, me, lay, core, cls, now))
		return false;
	me->pending = 1;
	return true;
}

/**
 * sk_smt_core_allows - whether @cpu's core lets class @cls run now: it
 * owns the core, or nobody does yet. A hint read without locks, for a
 * waker choosing a CPU to kick (a CPU whose core another class holds
 * would not run @cls before that class's tenure ran out); the claim in
 * ops.dispatch decides. True for a CPU outside the layout.
 */
static __always_inline bool sk_smt_core_allows(s32 cpu, u32 cls)
{
	struct sk_smt_cpu_layout *lay = sk_smt_cpu_layout(cpu);
	struct sk_smt_core_state *core = lay ? sk_smt_core(lay) : NULL;
	u64 owner;

	if (!core)
		return true;
	owner = SK_READ_ONCE(core->owner);
	return !owner || owner == (u64)cls + 1;
}

#ifdef __SCXKIT_DSQ_BPF_H
/**
 * sk_smt_allows_on - whether @cpu's core lets dsq class @dsq_cls run now
 * (sk_smt_core_allows for its group): for orderers choosing a CPU to
 * preempt, such as preempt.bpf.h's, which asks when this header is
 * included before it.
 */
static __always_inline bool sk_smt_allows_on(s32 cpu, u32 dsq_cls)
{
	return sk_smt_core_allows(cpu, sk_smt_group_of(dsq_cls));
}
#endif /* __SCXKIT_DSQ_BPF_H */

/*
 * sk_smt_decide - the class @cpu runs next, claimed, or SK_SMT_MAX_CLASSES
 * when it idles (forced or not), following the policy at the top of this
 * file. @prev_cls is the class of the previous task if it is still
 * runnable (it counts as work of its class), else SK_SMT_MAX_CLASSES. The
 * caller moves a task of the class to @cpu and then calls
 * sk_smt_decided(cpu, moved).
 */
static __always_inline u32 sk_smt_decide(s32 cpu, struct task_struct *prev, u32 prev_cls)
{
	struct sk_smt_cpu_state *me = sk_smt_cpu(cpu);
	struct sk_smt_cpu_layout *lay = sk_smt_cpu_layout(cpu);
	struct sk_smt_core_state *core = lay ? sk_smt_core(lay) : NULL;
	u32 nr = sk_smt_nr_classes();
	u64 now = scx_bpf_now();

	if (!me || !lay || !core || !nr)
		return SK_SMT_MAX_CLASSES;
	/* A kept task that is not @prev left sched_ext while running. */
	if (!prev)
		sk_smt_drop_kept(me, lay);

	{
		u64 own_slot = SK_READ_ONCE(core->owner);
		u32 own = own_slot ? own_slot - 1 : 0;
		u64 hold = sk_smt_layout.hold_ns;
		bool own_work, expired, can_take, busy_own = false;
		u32 any, urgent, want, i;

		/* Does a sibling run, hold or wait for the owner's class? */
		bpf_for(i, 0, SK_SMT_MAX_SIBLINGS) {
			struct sk_smt_cpu_state *s = sk_smt_cpu(sk_smt_sibling(lay, i));

			if (s && own_slot &&
			    (SK_READ_ONCE(s->cls) == own_slot || SK_READ_ONCE(s->run) == own_slot ||
			     SK_READ_ONCE(s->wait) == own_slot))
				busy_own = true;
		}
		own_work = own_slot && own < nr && (own == prev_cls || sk_smt_has_work(own, cpu, 0, now));
		expired = now - SK_READ_ONCE(core->since) >= hold;
		any = sk_smt_next_class(own_slot ? own : nr - 1, cpu, prev_cls, 0, now);
		urgent = any;
		/* Preempting a sibling takes a task that waited a while. */
		if (busy_own && any < nr)
			urgent = sk_smt_next_class(own, cpu, prev_cls, hold / 4 ?: 1, now);
		can_take = busy_own ? expired && urgent < nr : any < nr && (expired || !own_work);

		if (own_work && !can_take) {
			want = own;
		} else if (can_take) {
			want = busy_own ? urgent : any;
			if (__sync_val_compare_and_swap(&core->owner, own_slot, want + 1) != own_slot)
				goto retry;
			SK_WRITE_ONCE(core->since, now);
			sk_smt_count(want, handovers, 1);
			if (busy_own) {
				sk_smt_count(own, preempted, 1);
				bpf_for(i, 0, SK_SMT_MAX_SIBLINGS) {
					s32 sib = sk_smt_sibling(lay, i);
					struct sk_smt_cpu_state *s = sk_smt_cpu(sib);

					if (s && (SK_READ_ONCE(s->cls) == own_slot || SK_READ_ONCE(s->run) == own_slot))
						scx_bpf_kick_cpu(sib, SK_KICK_PREEMPT);
				}
			}
		} else if (any < nr) {
			/* Work of another class waits; the core is not ours yet. */
			sk_smt_wait_begin(me, own, any, now);
			return SK_SMT_MAX_CLASSES;
		} else {
			/* No work for this CPU at all: idle, not forced. */
			sk_smt_wait_end(me, now);
			return SK_SMT_MAX_CLASSES;
		}

		if (!sk_smt_claim(cpu, me, lay, core, want, now)) {
			/* A sibling still runs another class: wait for it
			 * (forced idle), unless the owner changed under us. */
			if (SK_READ_ONCE(core->owner) != want + 1)
				goto retry;
			return SK_SMT_MAX_CLASSES;
		}
		return want;
	}
retry:
	/*
	 * A race with a sibling or another CPU changed the picture: decide
	 * again in a fresh dispatch rather than loop here, which keeps the
	 * verifier's work small. The kick is plain (not IDLE), as this CPU
	 * is busy dispatching.
	 */
	scx_bpf_kick_cpu(cpu, 0);
	return SK_SMT_MAX_CLASSES;
}

/*
 * sk_smt_decided - after sk_smt_decide claimed a class for @cpu: @moved
 * says whether @cpu got something to run (a task moved to its local DSQ,
 * or the previous task kept). Then the claim holds for the next task;
 * else the task was lost to another CPU, and the claim goes.
 */
static __always_inline void sk_smt_decided(s32 cpu, bool moved)
{
	struct sk_smt_cpu_state *me = sk_smt_cpu(cpu);
	struct sk_smt_cpu_layout *lay = sk_smt_cpu_layout(cpu);

	if (!me || !lay)
		return;
	if (moved) {
		me->pending = 1;
		sk_smt_wait_end(me, scx_bpf_now());
		return;
	}
	sk_smt_withdraw(me, lay);
}

/*
 * sk_smt_dispatch_begin, sk_smt_dispatch_end - bracket a dispatch. Moving
 * a task from another CPU's rq drops this CPU's rq lock for a moment;
 * me->dispatching tells sk_smt_disable, which can run in that window,
 * that cls may be a claim for the task being moved.
 */
static __always_inline void sk_smt_dispatch_begin(s32 cpu)
{
	struct sk_smt_cpu_state *me = sk_smt_cpu(cpu);

	if (me)
		me->dispatching = 1;
}

static __always_inline void sk_smt_dispatch_end(s32 cpu)
{
	struct sk_smt_cpu_state *me = sk_smt_cpu(cpu);

	if (me)
		me->dispatching = 0;
}

/*
 * ___sk_smt_running - task @p of class @cls starts running on this CPU.
 * Records its class, ends forced idle and checks the siblings for
 * violations.
 *
 * A restart (see sk_smt_stopping) finds cls and run still held for @p
 * and leaves cls alone: it may by now be the claim an ops.dispatch that
 * dropped the rq lock made for the next task.
 */
static __always_inline void ___sk_smt_running(struct task_struct *p, u32 cls)
{
	s32 cpu = scx_bpf_task_cpu(p);
	struct sk_smt_cpu_state *me = sk_smt_cpu(cpu);
	struct sk_smt_cpu_layout *lay = sk_smt_cpu_layout(cpu);
	u64 slot = cls + 1;
	bool restart;

	if (!me)
		return;
	restart = me->kept == (u64)p->pid + 1;
	me->kept = 0;
	if (!restart) {
		me->pending = 0;
		__sync_lock_test_and_set(&me->cls, slot);
	}
	__sync_lock_test_and_set(&me->run, slot);
	sk_smt_run_begin(&me->acct, cls, p->se.sum_exec_runtime);
	sk_smt_wait_end(me, scx_bpf_now());
	if (lay && sk_smt_conflict(lay, slot, true)) {
		/*
		 * The kernel let a task run without ops.dispatch and beside
		 * a sibling of another class: the running task's cgroup
		 * (hence class) changed while it ran, and the kernel put it
		 * back on the CPU at once. Count it, and preempt it now
		 * rather than at the end of its slice.
		 */
		sk_smt_count_violation(cls);
		p->scx.slice = 0;
		scx_bpf_kick_cpu(cpu, SK_KICK_PREEMPT);
	}
}

/**
 * sk_smt_stopping - task @p stops running on this CPU; call from
 * ops.stopping. Charges its run time and releases the CPU's claim unless
 * dispatch already claimed it for the next task.
 *
 * A task that stops without being runnable but is not going to sleep
 * (its state is still TASK_RUNNING, or another CPU stops it: a task only
 * ever puts itself to sleep) has an attribute changed while it runs:
 * affinity (taskset, sched_setaffinity), nice, policy, cgroup, NUMA node.
 * The kernel dequeues it (ops.stopping), puts it straight back on the
 * local DSQ without ops.enqueue and, under the same rq lock, calls
 * ops.running again without ops.dispatch (a restart); the task executes
 * here throughout. Releasing cls and run in that window let a waiting
 * sibling claim the core for another class and start it beside the task,
 * a real overlap. So both stay held (me->kept) until the restart, or until
 * the task leaves sched_ext instead (sk_smt_disable; failing that, this
 * CPU's next ops.dispatch or idle entry drops them).
 */
static __always_inline void sk_smt_stopping(struct task_struct *p, bool runnable)
{
	s32 cpu = scx_bpf_task_cpu(p);
	struct sk_smt_cpu_state *me = sk_smt_cpu(cpu);
	struct sk_smt_cpu_layout *lay = sk_smt_cpu_layout(cpu);

	if (!me)
		return;
	if (me->run)
		sk_smt_run_charge(&me->acct, p->se.sum_exec_runtime);
	/* TASK_RUNNING is 0. */
	if (!runnable && (!p->__state || bpf_get_smp_processor_id() != cpu)) {
		me->acct.run_start = p->se.sum_exec_runtime;
		me->kept = (u64)p->pid + 1;
		return;
	}
	me->kept = 0;
	__sync_lock_test_and_set(&me->run, 0);
	/*
	 * Keep the claim when dispatch claimed the CPU for the next task, or
	 * when @p was preempted by a higher sched class with slice left: the
	 * kernel then puts it back at the head of the local DSQ without
	 * ops.enqueue, and it runs here next.
	 */
	if (!me->pending && !(runnable && p->scx.slice))
		__sync_lock_test_and_set(&me->cls, 0);
	if (lay)
		sk_smt_kick_waiters(lay);
}

/**
 * sk_smt_update_idle - @cpu enters (@idle) or leaves idle; call from
 * ops.update_idle. Entering idle with an empty local DSQ drops the CPU's
 * claim, so that a task claimed but taken away never blocks the core.
 * Nothing runs on an idle CPU: a running word kept for a task that left
 * sched_ext (see sk_smt_stopping) goes too.
 */
static __always_inline void sk_smt_update_idle(s32 cpu, bool idle)
{
	struct sk_smt_cpu_state *me = sk_smt_cpu(cpu);
	struct sk_smt_cpu_layout *lay = sk_smt_cpu_layout(cpu);

	if (!idle || !me || !lay)
		return;
	sk_smt_drop_kept(me, lay);
	if (scx_bpf_dsq_nr_queued(SK_DSQ_LOCAL) > 0)
		return;
	if (me->cls || me->pending)
		sk_smt_withdraw(me, lay);
}

/**
 * sk_smt_disable - task @p leaves sched_ext (a policy change, exit, or the
 * scheduler detaching); call from ops.disable. When @p left while
 * running, after an ops.stopping that kept its CPU's claim for a restart
 * that will not come (see sk_smt_stopping), the claim goes now rather than
 * at that CPU's next ops.dispatch or idle entry.
 */
static __always_inline void sk_smt_disable(struct task_struct *p)
{
	s32 cpu = scx_bpf_task_cpu(p);
	struct sk_smt_cpu_state *me = sk_smt_cpu(cpu);
	struct sk_smt_cpu_layout *lay = sk_smt_cpu_layout(cpu);

	if (me && lay && me->kept == (u64)p->pid + 1) {
		sk_smt_drop_kept(me, lay);
		/* Unless cls is a claim for the next task already. */
		if (!me->pending && !me->dispatching)
			sk_smt_withdraw(me, lay);
	}
}

#endif /* __SCXKIT_SMT_POLICY_BPF_H */
