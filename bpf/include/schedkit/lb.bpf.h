/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * lb.bpf.h - the load balancer's BPF half: per-task duty cycles and
 * domains for package lb to read, and the hand-off of its migration plans.
 *
 *   ops.enable    sk_lb_task_enable(p, domain)   start tracking p in domain
 *   ops.runnable  sk_lb_runnable(p)              duty cycle: runnable
 *   ops.quiescent sk_lb_quiescent(p)             duty cycle: not runnable
 *   ops.enqueue   dom = sk_lb_domain(p)          applies a pending move
 *   ops.stopping  sk_lb_charge(p, used_ns)       per-domain run time
 *   ops.disable   sk_lb_task_disable(p)
 *
 * Every interval, lb.Tracker reads sk_lb_tasks, lb.Balancer makes a plan,
 * and Tracker.Apply writes it into sk_lb_plan (pid -> domain). The next
 * enqueue of each planned task moves it and deletes the entry, so a plan
 * is applied exactly once, by the BPF side, at a point where the task is
 * not on any DSQ.
 */
#ifndef __SCHEDKIT_LB_BPF_H
#define __SCHEDKIT_LB_BPF_H

#include "lb.h"
#include "dutycycle.bpf.h"

/* Half-life of the duty cycles; lb.Tracker reads it too. Set before load. */
const volatile u64 sk_lb_half_life_ns = 100000000; /* 100 ms */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SK_LB_MAX_TASKS);
	__type(key, s32); /* pid */
	__type(value, struct sk_lb_task);
} sk_lb_tasks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SK_LB_MAX_TASKS);
	__type(key, s32); /* pid */
	__type(value, u32); /* target domain */
} sk_lb_plan SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SK_LB_MAX_DOMAINS);
	__type(key, u32);
	__type(value, struct sk_lb_domain_counters);
} sk_lb_domain_stats SEC(".maps");

/* sk_lb_task_of - @p's record, or NULL if it is not tracked. */
static __always_inline struct sk_lb_task *sk_lb_task_of(struct task_struct *p)
{
	s32 pid = p->pid;

	return bpf_map_lookup_elem(&sk_lb_tasks, &pid);
}

static __always_inline bool ___sk_lb_pinned(struct task_struct *p)
{
	return p->nr_cpus_allowed < scx_bpf_nr_cpu_ids();
}

/* sk_lb_task_enable - start tracking @p as a member of @domain. */
static __always_inline void sk_lb_task_enable(struct task_struct *p, u32 domain)
{
	struct sk_lb_task t = {
		.domain = domain,
		.weight = p->scx.weight,
		.pinned = ___sk_lb_pinned(p),
	};
	s32 pid = p->pid;

	t.dc.last_ns = bpf_ktime_get_ns();
	bpf_map_update_elem(&sk_lb_tasks, &pid, &t, BPF_ANY);
}

/* sk_lb_task_disable - stop tracking @p. */
static __always_inline void sk_lb_task_disable(struct task_struct *p)
{
	s32 pid = p->pid;

	bpf_map_delete_elem(&sk_lb_tasks, &pid);
	bpf_map_delete_elem(&sk_lb_plan, &pid);
}

static __always_inline void ___sk_lb_level(struct task_struct *p, bool runnable)
{
	struct sk_lb_task *t = sk_lb_task_of(p);

	if (!t)
		return;
	sk_dcycle_update(&t->dc, bpf_ktime_get_ns(), runnable, sk_lb_half_life_ns);
	t->weight = p->scx.weight;
	t->pinned = ___sk_lb_pinned(p);
}

/* sk_lb_runnable - @p became runnable; call from ops.runnable. */
static __always_inline void sk_lb_runnable(struct task_struct *p)
{
	___sk_lb_level(p, true);
}

/* sk_lb_quiescent - @p stopped being runnable; call from ops.quiescent. */
static __always_inline void sk_lb_quiescent(struct task_struct *p)
{
	___sk_lb_level(p, false);
}

static __always_inline struct sk_lb_domain_counters *___sk_lb_counters(u32 domain)
{
	return bpf_map_lookup_elem(&sk_lb_domain_stats, &domain);
}

/**
 * sk_lb_domain - @p's domain, after applying a planned move if one is
 * pending; call from ops.enqueue with @cur, the domain of the CPU @p is on.
 *
 * A task that may not run on every CPU follows its CPU instead: its own
 * domain might hold none of its allowed CPUs, and it would wait there
 * until the watchdog fires. Untracked tasks get @cur too.
 */
static __always_inline u32 sk_lb_domain(struct task_struct *p, u32 cur)
{
	struct sk_lb_task *t = sk_lb_task_of(p);
	struct sk_lb_domain_counters *c;
	s32 pid = p->pid;
	u32 *to;

	if (!t)
		return cur;
	/* A task that never sleeps never passes ops.runnable: refresh here. */
	t->pinned = ___sk_lb_pinned(p);
	if (t->pinned && cur < SK_LB_MAX_DOMAINS)
		t->domain = cur;
	to = bpf_map_lookup_elem(&sk_lb_plan, &pid);
	if (to) {
		if (*to < SK_LB_MAX_DOMAINS && !___sk_lb_pinned(p)) {
			t->domain = *to;
			if ((c = ___sk_lb_counters(*to)))
				c->migrated_in++;
		}
		bpf_map_delete_elem(&sk_lb_plan, &pid);
	}
	return t->domain;
}

/* sk_lb_charge - account @used_ns of run time to @p's domain; call from
 * ops.stopping. */
static __always_inline void sk_lb_charge(struct task_struct *p, u64 used_ns)
{
	struct sk_lb_task *t = sk_lb_task_of(p);
	struct sk_lb_domain_counters *c;

	if (t && (c = ___sk_lb_counters(t->domain)))
		c->runtime_ns += used_ns;
}

#endif /* __SCHEDKIT_LB_BPF_H */
