/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * lb.h - what the load balancer's BPF half shares with package lb: the
 * per-task record (duty cycle, domain, weight, allowed domains) and the
 * per-domain state (duty cycles by weight bucket, counters).
 */
#ifndef __SCXKIT_LB_H
#define __SCXKIT_LB_H

#include "dutycycle.h"

#define SK_LB_MAX_TASKS 16384
#define SK_LB_MAX_DOMAINS 64

/* sk_lb_task.allowed of a task that may run on every CPU. */
#define SK_LB_ALL_DOMAINS (~0ULL)

struct sk_lb_task {
	struct sk_dcycle dc; /* how much of the time the task is runnable */
	u64 allowed;         /* bit d: the task may run on a CPU of domain d */
	u32 domain;          /* the domain (DSQ index) the task belongs to */
	u32 weight;          /* p->scx.weight, 100 for nice 0 */
	u32 counted;         /* 1 + the domain whose buckets count the task, 0 if none */
	u32 bucket;          /* the bucket it is counted in */
};

/*
 * Per-domain duty cycles (array map sk_lb_domains, key = domain): the
 * number of runnable tasks of each weight bucket, as decaying averages,
 * kept under the lock since every CPU updates them.
 */
struct sk_lb_domain {
	struct bpf_spin_lock lock;
	u32 _pad;
	struct sk_dcycle_dom dc;
};

/* Per-domain counters (per-CPU map sk_lb_domain_stats, key = domain). */
struct sk_lb_domain_counters {
	u64 runtime_ns;  /* time the domain's tasks ran */
	u64 migrated_in; /* tasks moved here by a plan */
	u64 refused;     /* planned moves not applied: the task may not run there */
};

#endif /* __SCXKIT_LB_H */
