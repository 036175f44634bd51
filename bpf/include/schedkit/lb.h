/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * lb.h - what the load balancer's BPF half shares with package lb: the
 * per-task record (duty cycle, domain, weight) and per-domain counters.
 */
#ifndef __SCHEDKIT_LB_H
#define __SCHEDKIT_LB_H

#include "dutycycle.h"

#define SK_LB_MAX_TASKS 16384
#define SK_LB_MAX_DOMAINS 64

struct sk_lb_task {
	struct sk_dcycle dc; /* how much of the time the task is runnable */
	u32 domain;          /* the domain (DSQ index) the task belongs to */
	u32 weight;          /* p->scx.weight, 100 for nice 0 */
	u32 pinned;          /* the task may not run on every CPU */
	u32 _pad;
};

/* Per-domain counters (per-CPU map sk_lb_domain_stats, key = domain). */
struct sk_lb_domain_counters {
	u64 runtime_ns;  /* time the domain's tasks ran */
	u64 migrated_in; /* tasks moved here by a plan */
};

#endif /* __SCHEDKIT_LB_H */
