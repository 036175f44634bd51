/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * preempt_policy.bpf.h - the policy part of preempt.bpf.h, shared by its
 * two front ends (over preempt's own DSQs, and over dsq's queues): the
 * per-CPU words that say which class runs where and since when, the state
 * of the starvation bound, whom a wakeup may preempt and the search for a
 * victim, the grant of a slice (and its regrant after a configuration
 * change), and the hooks both front ends share: sk_preempt_runnable,
 * sk_preempt_running, sk_preempt_stopping, sk_preempt_tick,
 * sk_preempt_yield and sk_preempt_enable.
 *
 * Prerequisites: vmlinux.h, <scxkit/scx.bpf.h>
 */
#ifndef __SCXKIT_PREEMPT_POLICY_BPF_H
#define __SCXKIT_PREEMPT_POLICY_BPF_H

#include "preempt.h"
#include "preempt_class.bpf.h"
#include "preempt_stats.bpf.h"

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
 * sk_preempt_cpu_fits - whether @cpu may run class @w as far as a filter
 * knows: with smt.bpf.h included before this header, on dsq's queues,
 * whether smt lets @w's dsq class run on @cpu's core now (a CPU whose
 * core another group holds would run on that group's work instead, until
 * its tenure runs out). Always true otherwise.
 */
static __always_inline bool sk_preempt_cpu_fits(s32 cpu, u32 w)
{
#if defined(__SCXKIT_DSQ_BPF_H) && defined(__SCXKIT_SMT_POLICY_BPF_H)
	u32 nc = sk_dsq_nr_classes();

	return sk_smt_allows_on(cpu, w < nc ? w : nc - 1);
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
	u64 best_fit; /* it fits (sk_preempt_cpu_fits) */
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
 * among the CPUs that fit @w (sk_preempt_cpu_fits) if any, else among
 * all, the one running the lowest-priority task @p may preempt; among
 * equals @p's previous CPU (where the wakeup usually runs, so that the
 * kick needs no IPI and the cache is warm), else the longest running.
 * -1 for none. O(CPUs) per call: it runs only for wakeups
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
	s->best_fit = 0;
	s->best_cls = 0;
	s->best_ran = 0;
	if (nr > SK_PREEMPT_MAX_CPUS)
		nr = SK_PREEMPT_MAX_CPUS;
	if (prev < 0 || prev >= nr)
		prev = 0;
	bpf_for(i, 0, nr) {
		s32 cpu = prev + i;
		struct sk_preempt_cpu *c;
		u64 run, ran, fit;
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
		/* @p's previous CPU wins among equals: no IPI when it is this one. */
		if (i == 0)
			ran = ~0ULL;
		fit = sk_preempt_cpu_fits(cpu, w);
		if (s->best < 0 || fit > s->best_fit ||
		    (fit == s->best_fit && (r > s->best_cls || (r == s->best_cls && ran > s->best_ran)))) {
			s->best = cpu;
			s->best_fit = fit;
			s->best_cls = r;
			s->best_ran = ran;
			if (i == 0 && r >= lowest && fit)
				break;
		}
	}
	return s->best;
}

/* sk_preempt_kick_victim - preempt sk_preempt_victim's CPU for @p, if any, counting it. */
static __always_inline void sk_preempt_kick_victim(struct task_struct *p, const struct sk_preempt_config *cfg,
						   u32 w, const struct sk_preempt_policy *wp, u32 dom)
{
	s32 cpu = sk_preempt_victim(p, cfg, w, wp, dom);

	if (cpu >= 0) {
		scx_bpf_kick_cpu(cpu, SK_KICK_PREEMPT);
		sk_preempt_count(wp->id, preempts, 1);
	}
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
 * sk_preempt_queue_slice - the slice of @p's class, for a scheduler that
 * queues @p itself (on a local DSQ, say), noted as granted under the
 * configuration in force. With @check_name (a wakeup), @p's class is
 * found again if its name changed.
 */
static __always_inline u64 sk_preempt_queue_slice(struct task_struct *p, bool check_name)
{
	const struct sk_preempt_config *cfg = sk_preempt_config();
	struct sk_preempt_task *t = sk_preempt_task_of(p, cfg, check_name);
	struct sk_preempt_policy pol;

	sk_preempt_policy_of(cfg, t ? t->cls : 0, &pol);
	if (t)
		t->grant_gen = cfg ? cfg->gen : 0;
	return pol.slice_ns;
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

		t->woke_at = 0;
		sk_preempt_count_wait(sk_preempt_id(cfg, t->cls), wait);
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

#endif /* __SCXKIT_PREEMPT_POLICY_BPF_H */
