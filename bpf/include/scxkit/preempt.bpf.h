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
 * and kicks the CPU of the lowest-priority victim (the longest running
 * among equals) with SCX_KICK_PREEMPT. The victim's CPU then dispatches
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
 * Counters (per class, SK_PREEMPT_MAX_IDS slots kept across
 * configurations): kicks sent for its wakeups; its tasks stopped while
 * runnable before their slice ran out and not by their own sched_yield
 * (whoever cut them short; stops by higher scheduling classes, RT or
 * deadline, leave the slice and are not counted); kicks absorbed by
 * no-preempt; run-on extensions; run time; and wakeup-to-run waits (from
 * ops.runnable of a wakeup to ops.running) with a log2 histogram.
 *
 * The scheduler must not set SCX_OPS_ENQ_LAST: a task alone on its CPU
 * runs on through ops.dispatch, which refills its slice. (preempt's
 * Needs.Forbids says so: scx.Open refuses the flag. Its Needs.Callbacks
 * are the ten above, and it owns ops.enqueue and ops.dispatch.)
 *
 * On dsq's queues (preempt.Options.OnDSQ). Included after dsq.bpf.h,
 * this header also provides an orderer over dsq's (domain, class) DSQs
 * that owns nothing: a class's queue is dsq's class of the task's domain
 * (dsq.Options.Classes must cover the Config's classes, which package
 * preempt checks; should a higher class turn up, it shares dsq's last), starvation state is kept per (domain, class),
 * and wakeup idle kicks and victims are CPUs of the task's domain:
 *
 *        ops.select_cpu -> return sk_preempt_select_cpu_on(p, prev_cpu, wake_flags, dom);
 *        ops.enqueue    -> sk_preempt_enqueue_on(p, enq_flags, vtime, dom)
 *        ops.dispatch   -> sk_preempt_dispatch_on(cpu, prev)
 *        ops.init       -> sk_dsq_create_all()    (no sk_preempt_init)
 *
 * and the other seven hooks as above. No SCX_OPS_ENQ_LAST either.
 *
 * Prerequisites: vmlinux.h, <scxkit/scx.bpf.h>
 */
#ifndef __SCXKIT_PREEMPT_BPF_H
#define __SCXKIT_PREEMPT_BPF_H

#include "preempt.h"
#include "class.bpf.h"
#include "histogram.bpf.h"

_Static_assert(SK_PREEMPT_COMM_LEN == SK_CLASS_COMM_LEN, "task names as class.bpf.h reads them");
_Static_assert(SK_PREEMPT_NR_BOUNDS <= SK_HIST_MAX_BOUNDS, "wait histogram bounds");

/*
 * First DSQ id of the classes' queues, written by the loader before load
 * (scx.Open allocates SK_PREEMPT_MAX_CLASSES ids; preempt's Needs.DSQBase
 * names this global).
 */
const volatile u64 sk_preempt_dsq_base;

/* The configuration slot in force, 0 or 1; written by package preempt. */
u32 sk_preempt_active SEC(".bss");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, u32);
	__type(value, struct sk_preempt_config);
} sk_preempt_configs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 2 * SK_PREEMPT_MAX_MEMBERS);
	__type(key, struct sk_preempt_cgroup_key);
	__type(value, u32);
} sk_preempt_cgroups SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 2 * SK_PREEMPT_MAX_MEMBERS);
	__type(key, struct sk_preempt_comm_key);
	__type(value, u32);
} sk_preempt_comms SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SK_PREEMPT_MAX_IDS);
	__type(key, u32);
	__type(value, struct sk_preempt_counters);
} sk_preempt_stats SEC(".maps");

/* Per task. Run times are p->se.sum_exec_runtime readings. */
struct sk_preempt_task {
	u64 gen;       /* configuration cls was found for */
	u64 cgid;      /* cgroup cls was found for */
	u64 woke_at;   /* when it woke (scx_bpf_now), 0 when not waiting after a wakeup */
	u64 stint_at;  /* run time at ops.running */
	u64 slice_at;  /* run time when its current slice was granted */
	u64 granted;   /* that slice, ns */
	u64 grant_gen; /* configuration its slice was granted or queued under */
	u64 comm[SK_PREEMPT_COMM_LEN / 8]; /* task name cls was found for */
	u32 cls;
	u32 yielded; /* it called sched_yield since ops.running */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sk_preempt_task);
} sk_preempt_tasks SEC(".maps");

/*
 * Per CPU: the class of the running task and since when; written by the
 * CPU itself, read racily by wakers on other CPUs. One cache line each.
 */
struct sk_preempt_cpu {
	u64 running; /* class + 1 of the task between ops.running and ops.stopping, 0 for none */
	u64 since;   /* scx_bpf_now at its ops.running */
	u64 _pad[6];
};

static struct sk_preempt_cpu sk_preempt_cpus[SK_PREEMPT_MAX_CPUS];

/*
 * Starvation bound: a class whose queue made no progress (no task taken
 * from it since it became non-empty or since the last one was taken) for
 * SK_PREEMPT_STARVE_NS is boosted for SK_PREEMPT_BOOST_NS: every CPU's
 * dispatch serves it first. Strict priority must not starve a class into
 * the kernel's watchdog, and serving one task per period would not do:
 * the head of a vtime queue may be a fresh wakeup every time. Progress is
 * measured on the queue, not by when a task of the class last started
 * running: a task that runs on without a break (its slice refilled) would
 * make a class look starved the moment another of its tasks is queued.
 */
#define SK_PREEMPT_STARVE_NS (500ULL * 1000 * 1000)
#define SK_PREEMPT_BOOST_NS (100ULL * 1000 * 1000)

/* When each class's queue last made progress (scx_bpf_now). */
static u64 sk_preempt_progress[SK_PREEMPT_MAX_CLASSES];
/* Until when each class is boosted. */
static u64 sk_preempt_boost_until[SK_PREEMPT_MAX_CLASSES];

/* sk_preempt_config - the configuration in force, NULL before Go wrote one. */
static __always_inline struct sk_preempt_config *sk_preempt_config(void)
{
	u32 slot = SK_READ_ONCE(sk_preempt_active) & 1;
	struct sk_preempt_config *cfg = bpf_map_lookup_elem(&sk_preempt_configs, &slot);

	return cfg && cfg->nr_classes ? cfg : NULL;
}

static __always_inline u32 sk_preempt_nr_classes(const struct sk_preempt_config *cfg)
{
	if (!cfg)
		return 1;
	return cfg->nr_classes < SK_PREEMPT_MAX_CLASSES ? cfg->nr_classes : SK_PREEMPT_MAX_CLASSES;
}

/*
 * sk_preempt_policy_of - copy class @cls's policy to @out. Without a
 * configuration every task is in class 0 with the loader's slice, yields
 * at its end and preempts nothing.
 */
static __always_inline void sk_preempt_policy_of(const struct sk_preempt_config *cfg, u32 cls,
						 struct sk_preempt_policy *out)
{
	barrier_var(cls);
	if (cfg && cls < SK_PREEMPT_MAX_CLASSES && cls < cfg->nr_classes) {
		*out = cfg->classes[cls];
		if (out->slice_ns)
			return;
	}
	__builtin_memset(out, 0, sizeof(*out));
	out->slice_ns = sk_slice();
}

/* sk_preempt_id - the counter slot of class @cls. */
static __always_inline u32 sk_preempt_id(const struct sk_preempt_config *cfg, u32 cls)
{
	struct sk_preempt_policy pol;

	sk_preempt_policy_of(cfg, cls, &pol);
	return pol.id;
}

/* sk_preempt_dsq - the DSQ of class @cls. */
static __always_inline u64 sk_preempt_dsq(u32 cls)
{
	return sk_preempt_dsq_base + cls;
}

static __always_inline struct sk_preempt_counters *sk_preempt_counters_of(u32 id)
{
	return bpf_map_lookup_elem(&sk_preempt_stats, &id);
}

#define sk_preempt_count(id, field, n)						\
	do {									\
		struct sk_preempt_counters *___c = sk_preempt_counters_of(id);	\
		if (___c)							\
			___c->field += (n);					\
	} while (0)

/*
 * sk_preempt_bucket - the wait histogram bucket of @ns: the first i with
 * ns <= 1µs << i, or SK_PREEMPT_NR_BOUNDS for longer waits
 * (histogram.bpf.h; the bounds are latency.Log2Bounds in Go).
 */
static __always_inline u32 sk_preempt_bucket(u64 ns)
{
	return sk_hist_bucket_log2(ns, 1000, SK_PREEMPT_NR_BOUNDS);
}

/*
 * sk_preempt_classify - the class of a task named @ck->comm in cgroup
 * @cgrp under @cfg (slot @slot): its name's class, else the class of the
 * nearest cgroup among @cgrp and its ancestors, else the default class
 * (class.bpf.h).
 */
static __always_inline u32 sk_preempt_classify(struct sk_preempt_comm_key *ck, const struct sk_preempt_config *cfg,
					       u32 slot, struct cgroup *cgrp)
{
	struct sk_preempt_cgroup_key gk = {};
	u32 nr = sk_preempt_nr_classes(cfg), def, cls;

	if (!cfg)
		return 0;
	ck->slot = slot;
	cls = sk_class_of_comm(&sk_preempt_comms, ck, nr, nr);
	if (cls < nr)
		return cls;
	gk.slot = slot;
	def = cfg->default_class < nr ? cfg->default_class : 0;
	return sk_class_of_cgroup(&sk_preempt_cgroups, &gk, &gk.cgid, cgrp, SK_PREEMPT_MAX_DEPTH, nr, def);
}

/*
 * sk_preempt_task_of - @p's state with its class for @cfg. The class is
 * found again when the configuration or the task's cgroup changed, and,
 * when @check_name (a wakeup or a new task), when its name changed since
 * (exec, prctl(PR_SET_NAME)); otherwise it costs a task-storage lookup
 * and two loads. NULL if the task storage could not be allocated.
 */
static __always_inline struct sk_preempt_task *sk_preempt_task_of(struct task_struct *p,
								  const struct sk_preempt_config *cfg,
								  bool check_name)
{
	u64 cgid;
	struct cgroup *cgrp = sk_class_task_cgroup(p, &cgid);
	u64 gen = cfg ? cfg->gen : 0;
	/* 8-aligned: the name is compared as two u64 stack loads. */
	struct sk_preempt_comm_key ck __attribute__((aligned(8))) = {};
	struct sk_preempt_task *t;
	u64 *name = (u64 *)ck.comm;
	bool renamed = false;

	t = bpf_task_storage_get(&sk_preempt_tasks, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!t)
		return NULL;
	if (check_name) {
		sk_class_read_comm(p, ck.comm);
		renamed = !sk_class_comm_equal(name, t->comm);
	}
	if (renamed || t->gen != gen || t->cgid != cgid) {
		if (!check_name)
			sk_class_read_comm(p, ck.comm);
		t->cls = sk_preempt_classify(&ck, cfg, SK_READ_ONCE(sk_preempt_active) & 1, cgrp);
		t->gen = gen;
		t->cgid = cgid;
		t->comm[0] = name[0];
		t->comm[1] = name[1];
	}
	return t;
}

/**
 * sk_preempt_class_of - the class of @p now (0 without a configuration);
 * for the scheduler's own per-class state, such as vtime clocks.
 */
static __always_inline u32 sk_preempt_class_of(struct task_struct *p)
{
	struct sk_preempt_task *t = sk_preempt_task_of(p, sk_preempt_config(), false);

	return t ? t->cls : 0;
}

/* sk_preempt_may_preempt - whether a wakeup of class @w may preempt @cpu's task. */
static __always_inline bool sk_preempt_may_preempt(const struct sk_preempt_config *cfg, u32 w,
						   const struct sk_preempt_policy *wp, u32 r, u64 ran)
{
	struct sk_preempt_policy rp;

	sk_preempt_policy_of(cfg, r, &rp);
	if (rp.flags & SK_PREEMPT_F_NO_PREEMPT)
		return false;
	if (wp->flags & SK_PREEMPT_F_BACKGROUND)
		return false;
	if (rp.flags & SK_PREEMPT_F_BACKGROUND)
		return true;
	switch (wp->wakeup) {
	case SK_PREEMPT_WAKEUP_LOWER:
		return w < r;
	case SK_PREEMPT_WAKEUP_AFTER:
		return ran >= wp->after_ns;
	}
	return false;
}

/* sk_preempt_victim's @dom: any CPU the task may use. */
#define SK_PREEMPT_ANY_DOM 0xffffffff

/*
 * sk_preempt_cpu_in - whether @cpu is in dsq domain @dom (always, for
 * SK_PREEMPT_ANY_DOM, or without dsq.bpf.h).
 */
static __always_inline bool sk_preempt_cpu_in(s32 cpu, u32 dom)
{
#ifdef __SCXKIT_DSQ_BPF_H
	return dom == SK_PREEMPT_ANY_DOM || sk_dsq_of_cpu(cpu) == dom;
#else
	return true;
#endif
}

/*
 * The best victim found so far, in a per-CPU map value rather than in
 * registers: the verifier does not track values in memory, so each pass of
 * the search loop looks the same to it and the loop verifies in a few
 * states instead of one per combination of running classes.
 */
struct sk_preempt_search {
	s64 best;     /* CPU, -1 for none */
	u64 best_cls; /* class of its task */
	u64 best_ran; /* how long its task has run */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct sk_preempt_search);
} sk_preempt_search SEC(".maps");

/*
 * sk_preempt_victim - the CPU to preempt for @p (class @w, policy @wp):
 * the one running the lowest-priority task @p may preempt, the longest
 * running among equals; @p's previous CPU if it qualifies and runs the
 * lowest class. -1 for none. O(CPUs) per call: it runs only for wakeups
 * that found no idle CPU.
 */
static __always_inline s32 sk_preempt_victim(struct task_struct *p, const struct sk_preempt_config *cfg,
					     u32 w, const struct sk_preempt_policy *wp, u32 dom)
{
	u32 nr = scx_bpf_nr_cpu_ids(), lowest = sk_preempt_nr_classes(cfg) - 1, zero = 0;
	s32 prev = scx_bpf_task_cpu(p);
	u64 now = scx_bpf_now();
	struct sk_preempt_search *s;
	int i;

	s = bpf_map_lookup_elem(&sk_preempt_search, &zero);
	if (!cfg || !s)
		return -1;
	s->best = -1;
	s->best_cls = 0;
	s->best_ran = 0;
	if (nr > SK_PREEMPT_MAX_CPUS)
		nr = SK_PREEMPT_MAX_CPUS;
	if (prev < 0 || prev >= nr)
		prev = 0;
	bpf_for(i, 0, nr) {
		s32 cpu = prev + i;
		struct sk_preempt_cpu *c;
		u64 run, ran;
		u32 r;

		if (cpu >= nr)
			cpu -= nr;
		if (cpu < 0 || cpu >= SK_PREEMPT_MAX_CPUS)
			break;
		c = &sk_preempt_cpus[cpu];
		run = SK_READ_ONCE(c->running);
		if (!run || !bpf_cpumask_test_cpu(cpu, p->cpus_ptr) || !sk_preempt_cpu_in(cpu, dom))
			continue;
		r = run - 1;
		ran = now - SK_READ_ONCE(c->since);
		if ((s64)ran < 0)
			ran = 0;
		if (!sk_preempt_may_preempt(cfg, w, wp, r, ran))
			continue;
		if (s->best < 0 || r > s->best_cls || (r == s->best_cls && ran > s->best_ran)) {
			s->best = cpu;
			s->best_cls = r;
			s->best_ran = ran;
			if (i == 0 && r >= lowest)
				break;
		}
	}
	return s->best;
}

/**
 * sk_preempt_select_cpu - pick a CPU for waking @p; an idle one gets @p
 * at once, with its class's slice.
 */
static __always_inline s32 sk_preempt_select_cpu(struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	bool idle = false;
	s32 cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &idle);

	if (idle) {
		const struct sk_preempt_config *cfg = sk_preempt_config();
		struct sk_preempt_task *t = sk_preempt_task_of(p, cfg, true);
		struct sk_preempt_policy pol;

		sk_preempt_policy_of(cfg, t ? t->cls : 0, &pol);
		sk_dsq_insert(p, SK_DSQ_LOCAL, pol.slice_ns, 0);
		if (t)
			t->grant_gen = cfg ? cfg->gen : 0;
	}
	return cpu;
}

/* sk_preempt_runnable - @p became runnable; a wakeup starts its wait. */
static __always_inline void sk_preempt_runnable(struct task_struct *p, u64 enq_flags)
{
	struct sk_preempt_task *t;

	if (!(enq_flags & SK_ENQ_WAKEUP))
		return;
	t = sk_preempt_task_of(p, sk_preempt_config(), true);
	if (t)
		t->woke_at = scx_bpf_now();
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
	cpu = sk_preempt_victim(p, cfg, cls, &pol, SK_PREEMPT_ANY_DOM);
	if (cpu >= 0) {
		scx_bpf_kick_cpu(cpu, SK_KICK_PREEMPT);
		sk_preempt_count(pol.id, preempts, 1);
	}
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

/* sk_preempt_grant - give running @p a slice of @ns now. */
static __always_inline void sk_preempt_grant(struct task_struct *p, struct sk_preempt_task *t,
					     const struct sk_preempt_config *cfg, u64 ns)
{
	p->scx.slice = ns;
	t->slice_at = p->se.sum_exec_runtime;
	t->granted = ns;
	t->grant_gen = cfg ? cfg->gen : 0;
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

/*
 * sk_preempt_regrant - running @p's slice was granted (or queued) under an
 * older configuration than @cfg: its class and a shorter slice of the
 * new policy apply now. A longer one applies from its next slice.
 */
static __always_inline void sk_preempt_regrant(struct task_struct *p, struct sk_preempt_task *t,
					       const struct sk_preempt_config *cfg)
{
	u32 cpu = bpf_get_smp_processor_id();
	struct sk_preempt_policy pol;
	u64 used;

	if (!cfg || t->grant_gen == cfg->gen)
		return;
	sk_preempt_policy_of(cfg, t->cls, &pol);
	used = p->se.sum_exec_runtime - t->slice_at;
	if (used >= pol.slice_ns)
		p->scx.slice = 0;
	else if (p->scx.slice > pol.slice_ns - used)
		p->scx.slice = pol.slice_ns - used;
	t->granted = used + p->scx.slice;
	t->grant_gen = cfg->gen;
	if (cpu < SK_PREEMPT_MAX_CPUS)
		SK_WRITE_ONCE(sk_preempt_cpus[cpu].running, (u64)t->cls + 1);
}

/* sk_preempt_running - @p starts running on this CPU. */
static __always_inline void sk_preempt_running(struct task_struct *p)
{
	const struct sk_preempt_config *cfg = sk_preempt_config();
	struct sk_preempt_task *t = sk_preempt_task_of(p, cfg, false);
	u32 cpu = bpf_get_smp_processor_id();
	u64 now = scx_bpf_now();
	struct sk_preempt_policy pol;

	if (!t)
		return;
	if (cpu < SK_PREEMPT_MAX_CPUS) {
		SK_WRITE_ONCE(sk_preempt_cpus[cpu].since, now);
		SK_WRITE_ONCE(sk_preempt_cpus[cpu].running, (u64)t->cls + 1);
	}
	t->stint_at = p->se.sum_exec_runtime;
	t->slice_at = t->stint_at;
	t->granted = p->scx.slice;
	t->yielded = 0;
	/* Queued before a change: the slice it was queued with may be too long. */
	sk_preempt_regrant(p, t, cfg);
	if (t->woke_at) {
		u64 wait = now > t->woke_at ? now - t->woke_at : 0;
		struct sk_preempt_counters *c;
		u32 b = sk_preempt_bucket(wait);

		t->woke_at = 0;
		sk_preempt_policy_of(cfg, t->cls, &pol);
		c = sk_preempt_counters_of(pol.id);
		if (c) {
			c->wakeups++;
			c->wait_ns += wait;
			if (b < SK_PREEMPT_NR_BUCKETS)
				c->wait_buckets[b]++;
		}
	}
}

/* sk_preempt_stopping - @p stops running; count it if it was cut short. */
static __always_inline void sk_preempt_stopping(struct task_struct *p, bool runnable)
{
	const struct sk_preempt_config *cfg = sk_preempt_config();
	struct sk_preempt_task *t = sk_preempt_task_of(p, cfg, false);
	u32 cpu = bpf_get_smp_processor_id();
	struct sk_preempt_policy pol;
	u64 now_rt = p->se.sum_exec_runtime;

	if (cpu < SK_PREEMPT_MAX_CPUS)
		SK_WRITE_ONCE(sk_preempt_cpus[cpu].running, 0);
	if (!t)
		return;
	sk_preempt_policy_of(cfg, t->cls, &pol);
	sk_preempt_count(pol.id, runtime_ns, now_rt - t->stint_at);
	if (runnable && !t->yielded && p->scx.slice == 0 && now_rt - t->slice_at < t->granted)
		sk_preempt_count(pol.id, preempted, 1);
}

/*
 * sk_preempt_tick - a tick of running @p: a configuration change since its
 * slice was granted applies now (its class and its slice's length).
 */
static __always_inline void sk_preempt_tick(struct task_struct *p)
{
	const struct sk_preempt_config *cfg = sk_preempt_config();
	struct sk_preempt_task *t;

	if (!cfg)
		return;
	t = sk_preempt_task_of(p, cfg, false);
	if (t)
		sk_preempt_regrant(p, t, cfg);
}

/* sk_preempt_yield - @from calls sched_yield: end its slice, uncounted. */
static __always_inline bool sk_preempt_yield(struct task_struct *from, struct task_struct *to)
{
	struct sk_preempt_task *t = bpf_task_storage_get(&sk_preempt_tasks, from, 0, 0);

	if (t)
		t->yielded = 1;
	from->scx.slice = 0;
	return false;
}

/* sk_preempt_enable - @p joins the scheduler: find its class. */
static __always_inline void sk_preempt_enable(struct task_struct *p)
{
	sk_preempt_task_of(p, sk_preempt_config(), true);
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
	const struct sk_preempt_config *cfg;
	struct sk_preempt_task *t;
	struct sk_preempt_policy pol;

	if (!idle)
		return prev_cpu;
	if (dom != SK_DSQ_NONE && sk_dsq_of_cpu(cpu) != dom) {
		scx_bpf_kick_cpu(cpu, SK_KICK_IDLE);
		return prev_cpu;
	}
	cfg = sk_preempt_config();
	t = sk_preempt_task_of(p, cfg, true);
	sk_preempt_policy_of(cfg, t ? t->cls : 0, &pol);
	sk_dsq_insert(p, SK_DSQ_LOCAL, pol.slice_ns, 0);
	if (t)
		t->grant_gen = cfg ? cfg->gen : 0;
	return cpu;
}

/* sk_preempt_kick_idle_on - wake an idle CPU of @dom that @p may use; whether one was. */
static __always_inline bool sk_preempt_kick_idle_on(struct task_struct *p, u32 dom)
{
	u32 nr = scx_bpf_nr_cpu_ids(), cpu;

	if (nr > SK_DSQ_MAX_CPUS)
		nr = SK_DSQ_MAX_CPUS;
	bpf_for(cpu, 0, nr) {
		if (sk_dsq_of_cpu(cpu) != dom || !bpf_cpumask_test_cpu(cpu, p->cpus_ptr))
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
	s32 cpu;

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
	if (!(enq_flags & SK_ENQ_WAKEUP))
		return true;
	if (sk_preempt_kick_idle_on(p, dom))
		return true;
	cpu = sk_preempt_victim(p, cfg, cls, &pol, dom);
	if (cpu >= 0) {
		scx_bpf_kick_cpu(cpu, SK_KICK_PREEMPT);
		sk_preempt_count(pol.id, preempts, 1);
	}
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
 * sk_preempt_dispatch_on - sk_preempt_dispatch over dsq's queues: @prev
 * on if it is no-preempt and was cut short; else a starved class of this
 * CPU's domain; else the classes in priority order, each from this
 * domain first and then by dsq's steal order (sk_dsq_take), @prev
 * counting as work of its class; else @prev on. Returns false when the
 * CPU has nothing to run.
 */
static __always_inline bool sk_preempt_dispatch_on(s32 cpu, struct task_struct *prev)
{
	const struct sk_preempt_config *cfg = sk_preempt_config();
	u32 nr = sk_preempt_nr_classes(cfg), nc = sk_dsq_nr_classes(), pcls = SK_PREEMPT_MAX_CLASSES;
	u32 dom = sk_dsq_of_cpu(cpu);
	struct sk_preempt_task *pt = NULL;
	struct sk_preempt_policy pp = {};
	u64 ran = 0, now;
	u32 i;

	if (nr > nc)
		nr = nc;
	if (prev && (prev->scx.flags & SK_TASK_QUEUED))
		pt = sk_preempt_task_of(prev, cfg, false);
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
		if (sk_preempt_take_on(cpu, i, now))
			return true;
		if (pt && i == pcls && !pt->yielded) {
			sk_preempt_grant(prev, pt, cfg, pp.slice_ns);
			return true;
		}
	}
	/* dsq classes beyond the configuration's drain last. */
	bpf_for(i, nr, nc) {
		if (sk_dsq_take(cpu, i))
			return true;
	}
	if (pt) {
		sk_preempt_grant(prev, pt, cfg, pp.slice_ns);
		return true;
	}
	return false;
}
#endif /* __SCXKIT_DSQ_BPF_H */

#endif /* __SCXKIT_PREEMPT_BPF_H */
