/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * smt.bpf.h - SMT isolation: hardware threads of one core only run tasks
 * of the same class at the same time, where a class is an isolated cgroup
 * (with its descendants) or the system class of every other task. A
 * thread with nothing compatible to run idles: "forced idle", charged to
 * the class that holds the core.
 *
 *   Go:  isolation, _ := smt.New(topo, &smt.Options{Isolate: []string{"/a", "/b"}})
 *        scx.Config{Components: []scx.Component{isolation}}
 *        (the component declares the flags, callbacks and DSQs below;
 *        Load binds it, writing the layout, before attach)
 *   BPF: ops.init        -> sk_smt_init()
 *        ops.select_cpu  -> return sk_smt_select_cpu(p, prev_cpu, wake_flags);
 *        ops.enqueue     -> sk_smt_enqueue(p, enq_flags, slice, vtime)
 *        ops.dispatch    -> sk_smt_dispatch(cpu, prev)
 *        ops.running     -> sk_smt_running(p)
 *        ops.stopping    -> sk_smt_stopping(p, runnable)
 *        ops.update_idle -> sk_smt_update_idle(cpu, idle)
 *        ops.disable     -> sk_smt_disable(p)
 *
 * Each class has its own DSQ (sk_smt_dsq_base + class, ids scx.Open
 * allocates to the component), ordered by the vtime the scheduler passes,
 * so a CPU finds work of a given class without scanning one shared queue.
 *
 * Policy. Every core has an owner class. A CPU runs only tasks of the
 * owner, and only while no sibling runs (or has claimed) another class.
 * In ops.dispatch, with "busy" meaning a sibling runs, holds or waits for
 * the owner's class:
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
 * Forced idle of a CPU starts when its dispatch leaves it idle although a
 * class has work it may run here, because a sibling holds the core for
 * another class; it ends when the CPU runs a task or finds no work. The
 * time is charged to the class the CPU waited behind (the sibling's
 * class, or the owner's). A waiting CPU is kicked (SCX_KICK_IDLE) by its
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
 * checked at all; and a task whose cgroup changes while it runs (e.g. a
 * shell writing its own pid to cgroup.procs), which the kernel keeps on
 * its CPU, calling ops.running with the new class without ops.dispatch;
 * that is counted and the task preempted at once. Start tasks in their
 * cgroup (CLONE_INTO_CGROUP) or move them while they sleep. The same goes
 * for a running task switched into sched_ext from another policy (e.g.
 * from SCHED_FIFO back to SCHED_OTHER). Other attribute changes of a
 * running task (affinity, nice) keep its class and are safe.
 *
 * Scheduler requirements (smt.Layout.Needs declares them, so scx.Open sets
 * them and refuses a component that forbids one): SCX_OPS_ENQ_LAST, so that
 * a CPU whose class lost the core does not keep running its last task;
 * SCX_OPS_KEEP_BUILTIN_IDLE, as ops.update_idle is used;
 * SCX_OPS_ENQ_EXITING and SCX_OPS_ENQ_MIGRATION_DISABLED, so that every
 * task goes through ops.enqueue rather than straight to a local DSQ.
 *
 * Prerequisites: vmlinux.h, <scxkit/scx.bpf.h>
 */
#ifndef __SCXKIT_SMT_BPF_H
#define __SCXKIT_SMT_BPF_H

#include "smt.h"
#include "class.bpf.h"

/* DSQ iterator kfuncs (6.12+), not in compat.bpf.h. */
int bpf_iter_scx_dsq_new(struct bpf_iter_scx_dsq *it, u64 dsq_id, u64 flags) __weak __ksym;
struct task_struct *bpf_iter_scx_dsq_next(struct bpf_iter_scx_dsq *it) __weak __ksym;
void bpf_iter_scx_dsq_destroy(struct bpf_iter_scx_dsq *it) __weak __ksym;

#define SK_PICK_IDLE_CORE bpf_core_enum_value(enum scx_pick_idle_cpu_flags, SCX_PICK_IDLE_CORE)
#define SK_ENQ_LAST bpf_core_enum_value(enum scx_enq_flags, SCX_ENQ_LAST)

/*
 * First DSQ id of the classes' queues, written by the loader before load
 * (scx.Open allocates the range, smt's Needs.DSQBase names this global).
 */
const volatile u64 sk_smt_dsq_base;

/* Written by package smt (Layout.Bind) after load, before attach. */
struct sk_smt_layout sk_smt_layout SEC(".bss");

/* Total violations, also counted per class; read by package smt. */
u64 sk_smt_violations SEC(".bss");

/* Isolated cgroups: cgroup id -> class (1..nr_classes-1). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SK_SMT_MAX_CLASSES);
	__type(key, u64);
	__type(value, u32);
} sk_smt_cgroups SEC(".maps");

/* Counters per class, keyed by the class's cgroup id (0: system). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, SK_SMT_MAX_CLASSES);
	__type(key, u64);
	__type(value, struct sk_smt_counters);
} sk_smt_stats SEC(".maps");

/* Per task: the class of the cgroup it was last seen in. */
struct sk_smt_task {
	u64 cgid;   /* cgroup id the class was found for */
	u64 enq_at; /* when it was last queued on its class's DSQ (scx_bpf_now) */
	u32 cls;
	u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sk_smt_task);
} sk_smt_tasks SEC(".maps");

/*
 * Per-CPU state. Class words hold class + 1, 0 meaning none, so that the
 * zeroed .bss is the idle state. Each word is written only by its CPU
 * (under its rq lock); siblings read it racily, hence READ_ONCE.
 */
struct sk_smt_cpu_state {
	u64 cls;       /* class claimed or running */
	u64 run;       /* class of the task between running and stopping */
	u64 pending;   /* dispatch claimed cls for the next task: stopping keeps the claim */
	u64 fi_start;  /* forced idle since (scx_bpf_now), 0 when not forced idle */
	u64 fi_cls;    /* class the forced idle is charged to */
	u64 run_start; /* p->se.sum_exec_runtime at running */
	u64 run_cls;   /* class charged for the run time */
	u64 wait;      /* class it waits to run while forced idle */
	u64 kept;      /* pid + 1 of the task whose restart cls and run are kept for, 0 for none */
	u64 dispatching; /* inside sk_smt_dispatch, which may drop the rq lock */
};

/* Per-core state: the owner class (+1, 0 before the first takeover). */
struct sk_smt_core_state {
	u64 owner;
	u64 since; /* when the owner took the core */
	u64 _pad[6];
};

static struct sk_smt_cpu_state sk_smt_cpus[SK_SMT_MAX_CPUS];
static struct sk_smt_core_state sk_smt_cores[SK_SMT_MAX_CPUS];

/* sk_smt_nr_classes - classes in the layout, 0 until Go wrote it. */
static __always_inline u32 sk_smt_nr_classes(void)
{
	u32 nr = sk_smt_layout.nr_classes;

	return nr < SK_SMT_MAX_CLASSES ? nr : SK_SMT_MAX_CLASSES;
}

/* sk_smt_dsq - the DSQ of class @cls. */
static __always_inline u64 sk_smt_dsq(u32 cls)
{
	return sk_smt_dsq_base + cls;
}

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

/* sk_smt_counters_of - this CPU's counters of class @cls, or NULL. */
static __always_inline struct sk_smt_counters *sk_smt_counters_of(u32 cls)
{
	u64 cgid;

	barrier_var(cls);
	if (cls >= SK_SMT_MAX_CLASSES)
		return NULL;
	cgid = sk_smt_layout.class_cgroup[cls];
	return bpf_map_lookup_elem(&sk_smt_stats, &cgid);
}

#define sk_smt_count(cls, field, n)						\
	do {									\
		struct sk_smt_counters *___c = sk_smt_counters_of(cls);	\
		if (___c)							\
			___c->field += (n);					\
	} while (0)

/*
 * sk_smt_class_of_cgroup - the class of the nearest isolated cgroup among
 * @cgrp and its ancestors, or SK_SMT_SYSTEM (class.bpf.h).
 */
static __always_inline u32 sk_smt_class_of_cgroup(struct cgroup *cgrp)
{
	u64 id = 0;

	return sk_class_of_cgroup(&sk_smt_cgroups, &id, &id, cgrp, SK_SMT_MAX_DEPTH, sk_smt_nr_classes(),
				  SK_SMT_SYSTEM);
}

/**
 * sk_smt_class_of - the class of task @p, cached per task for as long as
 * it stays in the same cgroup (cgroup ids are never reused).
 */
static __always_inline u32 sk_smt_class_of(struct task_struct *p)
{
	u64 id;
	struct cgroup *cgrp = sk_class_task_cgroup(p, &id);
	struct sk_smt_task *t;
	u32 cls;

	t = bpf_task_storage_get(&sk_smt_tasks, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (t && id && t->cgid == id)
		return t->cls;
	cls = sk_smt_class_of_cgroup(cgrp);
	if (t) {
		t->cgid = id;
		t->cls = cls;
	}
	return cls;
}

/* sk_smt_kick_waiters - wake the siblings of @lay that are forced idle. */
static __always_inline void sk_smt_kick_waiters(const struct sk_smt_cpu_layout *lay)
{
	u32 i;

	bpf_for(i, 0, SK_SMT_MAX_SIBLINGS) {
		s32 sib = sk_smt_sibling(lay, i);
		struct sk_smt_cpu_state *s = sk_smt_cpu(sib);

		if (s && SK_READ_ONCE(s->fi_start))
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

static __always_inline void sk_smt_fi_end(struct sk_smt_cpu_state *me, u64 now);

/*
 * Forced idle of @me starts now, charged to class @cls, while it waits to
 * run class @want. The wait word keeps siblings from taking the core
 * from @want before it had its tenure.
 */
static __always_inline void sk_smt_fi_begin(struct sk_smt_cpu_state *me, u32 cls, u32 want, u64 now)
{
	SK_WRITE_ONCE(me->wait, want + 1);
	if (me->fi_start && me->fi_cls == cls)
		return;
	sk_smt_fi_end(me, now);
	me->fi_cls = cls;
	SK_WRITE_ONCE(me->fi_start, now ? now : 1);
}

/* The forced idle of @me, if any, ends now: charge it. */
static __always_inline void sk_smt_fi_end(struct sk_smt_cpu_state *me, u64 now)
{
	u64 start = me->fi_start;

	SK_WRITE_ONCE(me->wait, 0);
	if (!start)
		return;
	SK_WRITE_ONCE(me->fi_start, 0);
	if (now > start) {
		sk_smt_count(me->fi_cls, forced_idle_ns, now - start);
		sk_smt_count(me->fi_cls, forced_idle_events, 1);
	}
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
	sk_smt_fi_begin(me, (other ? other : owner) - 1, cls, now);
	return false;
}

/*
 * sk_smt_has_work - whether class @cls has a queued task that may run on
 * @cpu and has waited at least @min_wait ns, looking at the first few
 * tasks only: a queue whose head is pinned elsewhere must not make a CPU
 * take a core over for nothing, nor should a task that an idle core may
 * pick up in a moment make it preempt a sibling.
 */
#define SK_SMT_SCAN 8

/*
 * sk_smt_has_work and sk_smt_next_class are global functions, not static
 * inline ones: the verifier checks a global function once, on its own,
 * instead of at every call site inside the caller's loops. Inlined, the
 * DSQ scans nested in dispatch's decision took the verifier over a
 * minute on 6.16 under qemu TCG. They take scalars only, as global
 * functions must.
 */
__noinline int sk_smt_has_work(u32 cls, s32 cpu, u64 min_wait, u64 now)
{
	struct task_struct *p;
	int n = 0;

	if (cls >= SK_SMT_MAX_CLASSES || scx_bpf_dsq_nr_queued(sk_smt_dsq(cls)) <= 0)
		return 0;
	bpf_for_each(scx_dsq, p, sk_smt_dsq(cls), 0) {
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

/**
 * sk_smt_enqueue - queue @p on its class's DSQ with @slice and @vtime, and
 * wake an idle CPU for it. A CPU's last task (SCX_ENQ_LAST) stays on the
 * CPU if its class may still run there.
 */
static __always_inline void sk_smt_enqueue(struct task_struct *p, u64 enq_flags, u64 slice, u64 vtime)
{
	u32 cls = sk_smt_class_of(p);
	s32 cpu = scx_bpf_task_cpu(p);
	struct sk_smt_cpu_state *me;
	struct sk_smt_cpu_layout *lay;
	struct sk_smt_core_state *core;
	struct sk_smt_task *t;
	u64 now = scx_bpf_now();

	t = bpf_task_storage_get(&sk_smt_tasks, p, 0, 0);
	if (t)
		t->enq_at = now;

	if (enq_flags & SK_ENQ_LAST) {
		/* Called on @cpu with its rq lock held, after ops.stopping. */
		me = sk_smt_cpu(cpu);
		lay = sk_smt_cpu_layout(cpu);
		core = lay ? sk_smt_core(lay) : NULL;
		if (me && lay && core && sk_smt_claim(cpu, me, lay, core, cls, now)) {
			me->pending = 1;
			sk_dsq_insert(p, SK_DSQ_LOCAL, slice, enq_flags);
			return;
		}
		scx_bpf_dsq_insert_vtime(p, sk_smt_dsq(cls), slice, vtime, enq_flags);
		return;
	}
	scx_bpf_dsq_insert_vtime(p, sk_smt_dsq(cls), slice, vtime, enq_flags);
	/* The CPU select_cpu chose, if idle; else any idle CPU, whole cores first. */
	scx_bpf_kick_cpu(cpu, SK_KICK_IDLE);
	cpu = scx_bpf_pick_idle_cpu(p->cpus_ptr, SK_PICK_IDLE_CORE);
	if (cpu < 0)
		cpu = scx_bpf_pick_idle_cpu(p->cpus_ptr, 0);
	if (cpu >= 0)
		scx_bpf_kick_cpu(cpu, SK_KICK_IDLE);
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

/* sk_smt_dispatch_one - the body of sk_smt_dispatch. */
static __always_inline bool sk_smt_dispatch_one(s32 cpu, struct task_struct *prev)
{
	struct sk_smt_cpu_state *me = sk_smt_cpu(cpu);
	struct sk_smt_cpu_layout *lay = sk_smt_cpu_layout(cpu);
	struct sk_smt_core_state *core = lay ? sk_smt_core(lay) : NULL;
	u32 nr = sk_smt_nr_classes();
	u32 prev_cls = SK_SMT_MAX_CLASSES;
	u64 now = scx_bpf_now();

	if (!me || !lay || !core || !nr)
		return false;
	/* A kept task that is not @prev left sched_ext while running. */
	if (!prev)
		sk_smt_drop_kept(me, lay);
	if (prev && (prev->scx.flags & SK_TASK_QUEUED))
		prev_cls = sk_smt_class_of(prev);

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
			sk_smt_fi_begin(me, own, any, now);
			return false;
		} else {
			/* No work for this CPU at all: idle, not forced. */
			sk_smt_fi_end(me, now);
			return false;
		}

		if (!sk_smt_claim(cpu, me, lay, core, want, now)) {
			/* A sibling still runs another class: wait for it
			 * (forced idle), unless the owner changed under us. */
			if (SK_READ_ONCE(core->owner) != want + 1)
				goto retry;
			return false;
		}
		if (sk_dsq_move_to_local(sk_smt_dsq(want)) || want == prev_cls) {
			me->pending = 1;
			sk_smt_fi_end(me, now);
			return true;
		}
		/* Lost the task to another CPU. */
		sk_smt_withdraw(me, lay);
	}
retry:
	/*
	 * A race with a sibling or another CPU changed the picture: decide
	 * again in a fresh dispatch rather than loop here, which keeps the
	 * verifier's work small. The kick is plain (not IDLE), as this CPU
	 * is busy dispatching.
	 */
	scx_bpf_kick_cpu(cpu, 0);
	return false;
}

/**
 * sk_smt_dispatch - fill @cpu's local DSQ with a task of a class that may
 * run beside its siblings, taking the core over when the policy allows
 * (see the top of this file); call from ops.dispatch.
 *
 * Returns true when @cpu has something to run: a task moved to its local
 * DSQ, or @prev, which then comes back through ops.enqueue with
 * SCX_ENQ_LAST. Returns false when the CPU idles, forced or not.
 *
 * Moving a task from another CPU's rq drops this CPU's rq lock for a
 * moment; me->dispatching tells sk_smt_disable, which can run in that
 * window, that cls may be a claim for the task being moved.
 */
static __always_inline bool sk_smt_dispatch(s32 cpu, struct task_struct *prev)
{
	struct sk_smt_cpu_state *me = sk_smt_cpu(cpu);
	bool ret;

	if (!me)
		return false;
	me->dispatching = 1;
	ret = sk_smt_dispatch_one(cpu, prev);
	me->dispatching = 0;
	return ret;
}

/**
 * sk_smt_running - task @p starts running on this CPU; call from
 * ops.running. Records its class, ends forced idle and checks the
 * siblings for violations.
 *
 * A restart (see sk_smt_stopping) finds cls and run still held for @p
 * and leaves cls alone: it may by now be the claim an ops.dispatch that
 * dropped the rq lock made for the next task.
 */
static __always_inline void sk_smt_running(struct task_struct *p)
{
	s32 cpu = scx_bpf_task_cpu(p);
	struct sk_smt_cpu_state *me = sk_smt_cpu(cpu);
	struct sk_smt_cpu_layout *lay = sk_smt_cpu_layout(cpu);
	u32 cls = sk_smt_class_of(p);
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
	me->run_start = p->se.sum_exec_runtime;
	me->run_cls = cls;
	sk_smt_fi_end(me, scx_bpf_now());
	if (lay && sk_smt_conflict(lay, slot, true)) {
		/*
		 * The kernel let a task run without ops.dispatch and beside
		 * a sibling of another class: the running task's cgroup
		 * (hence class) changed while it ran, and the kernel put it
		 * back on the CPU at once. Count it, and preempt it now
		 * rather than at the end of its slice.
		 */
		__sync_fetch_and_add(&sk_smt_violations, 1);
		sk_smt_count(cls, violations, 1);
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
	u64 now = p->se.sum_exec_runtime;

	if (!me)
		return;
	if (me->run && now > me->run_start)
		sk_smt_count(me->run_cls, runtime_ns, now - me->run_start);
	/* TASK_RUNNING is 0. */
	if (!runnable && (!p->__state || bpf_get_smp_processor_id() != cpu)) {
		me->run_start = now;
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

#endif /* __SCXKIT_SMT_BPF_H */
