/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * lb.bpf.h - the load balancer's BPF half: per-task and per-domain duty
 * cycles for package lb to read, and the hand-off of its migration plans.
 * Domains are the DSQs of the dsq.bpf.h layout: a CPU's domain is
 * sk_dsq_of_cpu(cpu).
 *
 *   ops.enable      sk_lb_task_enable(p, domain)   start tracking p in domain
 *   ops.runnable    sk_lb_runnable(p)              duty cycles: runnable
 *   ops.quiescent   sk_lb_quiescent(p)             duty cycles: not runnable
 *   ops.enqueue     dom = sk_lb_domain(p, cur)     applies a pending move
 *   ops.stopping    sk_lb_charge(p, used_ns)       per-domain run time
 *   ops.set_cpumask sk_lb_set_cpumask(p, mask)     allowed domains
 *   ops.disable     sk_lb_task_disable(p)
 *
 * A task counts in its domain's duty cycles (struct sk_lb_domain: the
 * number of runnable tasks per weight bucket) from ops.runnable to
 * ops.quiescent, and moves with its count when its domain changes.
 *
 * Every interval, the lb component (lb.Balancer) reads sk_lb_tasks, makes
 * a plan and writes it into sk_lb_plan (pid -> domain). The next
 * enqueue of each planned task moves it and deletes the entry, so a plan
 * is applied exactly once, by the BPF side, at a point where the task is
 * not on any DSQ. A move to a domain the task may not run in is refused
 * and counted (sk_lb_domain_counters.refused).
 */
#ifndef __SCXKIT_LB_BPF_H
#define __SCXKIT_LB_BPF_H

#include "lb.h"
#include "dsq.bpf.h"
#include "dutycycle.bpf.h"

/* Half-life of the duty cycles; lb.Balancer reads it too. Set before load. */
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
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SK_LB_MAX_DOMAINS);
	__type(key, u32);
	__type(value, struct sk_lb_domain);
} sk_lb_domains SEC(".maps");

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

/*
 * sk_lb_allowed_domains - the domains holding a CPU of @mask, as a bitmap;
 * SK_LB_ALL_DOMAINS when @nr_allowed covers every CPU. One pass over the
 * CPUs: call it when the mask changes, not on every event.
 */
static __always_inline u64 sk_lb_allowed_domains(const struct cpumask *mask, u32 nr_allowed)
{
	u32 nr = scx_bpf_nr_cpu_ids(), cpu, dom;
	u64 allowed = 0;

	if (nr_allowed >= nr)
		return SK_LB_ALL_DOMAINS;
	if (nr > SK_DSQ_MAX_CPUS)
		nr = SK_DSQ_MAX_CPUS;
	bpf_for(cpu, 0, nr) {
		if (!bpf_cpumask_test_cpu(cpu, mask))
			continue;
		dom = sk_dsq_of_cpu(cpu);
		if (dom < SK_LB_MAX_DOMAINS)
			allowed |= 1ULL << dom;
	}
	return allowed;
}

/* sk_lb_may_run_in - whether @t may run in domain @dom. */
static __always_inline bool sk_lb_may_run_in(const struct sk_lb_task *t, u32 dom)
{
	return dom < SK_LB_MAX_DOMAINS && (t->allowed >> dom) & 1;
}

static __always_inline struct sk_lb_domain_counters *___sk_lb_counters(u32 domain)
{
	return bpf_map_lookup_elem(&sk_lb_domain_stats, &domain);
}

/* ___sk_lb_count - add @delta to @bucket's runnable tasks in domain @dom. */
static __always_inline void ___sk_lb_count(u32 dom, u32 bucket, s32 delta, u64 now)
{
	struct sk_lb_domain *d = bpf_map_lookup_elem(&sk_lb_domains, &dom);

	if (!d)
		return;
	bpf_spin_lock(&d->lock);
	sk_dcycle_dom_update(&d->dc, bucket, now, delta, sk_lb_half_life_ns);
	bpf_spin_unlock(&d->lock);
}

/* ___sk_lb_uncount - stop counting @t in its domain's buckets. */
static __always_inline void ___sk_lb_uncount(struct sk_lb_task *t, u64 now)
{
	if (t->counted)
		___sk_lb_count(t->counted - 1, t->bucket, -1, now);
	t->counted = 0;
}

/* ___sk_lb_recount - count @t, runnable, in @t->domain's buckets. */
static __always_inline void ___sk_lb_recount(struct sk_lb_task *t, u64 now)
{
	___sk_lb_uncount(t, now);
	if (t->domain >= SK_LB_MAX_DOMAINS)
		return;
	t->bucket = sk_dcycle_bucket(t->weight);
	___sk_lb_count(t->domain, t->bucket, 1, now);
	t->counted = t->domain + 1;
}

/* sk_lb_task_enable - start tracking @p as a member of @domain. */
static __always_inline void sk_lb_task_enable(struct task_struct *p, u32 domain)
{
	struct sk_lb_task t = {
		.domain = domain,
		.weight = p->scx.weight,
		.allowed = sk_lb_allowed_domains(p->cpus_ptr, p->nr_cpus_allowed),
	};
	s32 pid = p->pid;

	t.dc.last_ns = bpf_ktime_get_ns();
	bpf_map_update_elem(&sk_lb_tasks, &pid, &t, BPF_ANY);
}

/* sk_lb_task_disable - stop tracking @p. */
static __always_inline void sk_lb_task_disable(struct task_struct *p)
{
	struct sk_lb_task *t = sk_lb_task_of(p);
	s32 pid = p->pid;

	if (t)
		___sk_lb_uncount(t, bpf_ktime_get_ns());
	bpf_map_delete_elem(&sk_lb_tasks, &pid);
	bpf_map_delete_elem(&sk_lb_plan, &pid);
}

/* sk_lb_set_cpumask - @p's allowed CPUs are now @mask; call from
 * ops.set_cpumask. */
static __always_inline void sk_lb_set_cpumask(struct task_struct *p, const struct cpumask *mask)
{
	struct sk_lb_task *t = sk_lb_task_of(p);

	if (t)
		t->allowed = sk_lb_allowed_domains(mask, bpf_cpumask_weight(mask));
}

/* sk_lb_runnable - @p became runnable; call from ops.runnable. */
static __always_inline void sk_lb_runnable(struct task_struct *p)
{
	struct sk_lb_task *t = sk_lb_task_of(p);
	u64 now = bpf_ktime_get_ns();

	if (!t)
		return;
	sk_dcycle_update(&t->dc, now, true, sk_lb_half_life_ns);
	t->weight = p->scx.weight;
	___sk_lb_recount(t, now);
}

/* sk_lb_quiescent - @p stopped being runnable; call from ops.quiescent. */
static __always_inline void sk_lb_quiescent(struct task_struct *p)
{
	struct sk_lb_task *t = sk_lb_task_of(p);
	u64 now = bpf_ktime_get_ns();

	if (!t)
		return;
	sk_dcycle_update(&t->dc, now, false, sk_lb_half_life_ns);
	___sk_lb_uncount(t, now);
}

/**
 * sk_lb_domain - @p's domain, after applying a planned move if one is
 * pending; call from ops.enqueue with @cur, the domain of the CPU @p is on.
 *
 * A task whose domain holds none of its allowed CPUs follows its CPU
 * instead (it would wait there until the watchdog fires), and a planned
 * move into such a domain is refused. Untracked tasks get @cur.
 */
static __always_inline u32 sk_lb_domain(struct task_struct *p, u32 cur)
{
	struct sk_lb_task *t = sk_lb_task_of(p);
	struct sk_lb_domain_counters *c;
	u32 *to, dom;
	s32 pid = p->pid;

	if (!t)
		return cur;
	dom = t->domain;
	if (!sk_lb_may_run_in(t, dom) && cur < SK_LB_MAX_DOMAINS)
		dom = cur;
	to = bpf_map_lookup_elem(&sk_lb_plan, &pid);
	if (to) {
		if (sk_lb_may_run_in(t, *to)) {
			dom = *to;
			if ((c = ___sk_lb_counters(*to)))
				c->migrated_in++;
		} else if ((c = ___sk_lb_counters(dom))) {
			c->refused++;
		}
		bpf_map_delete_elem(&sk_lb_plan, &pid);
	}
	if (dom != t->domain) {
		t->domain = dom;
		/* Enqueued tasks are runnable: the count moves along. */
		if (t->counted)
			___sk_lb_recount(t, bpf_ktime_get_ns());
	}
	return dom;
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

#endif /* __SCXKIT_LB_BPF_H */
