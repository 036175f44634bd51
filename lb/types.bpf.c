//go:build ignore

/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * types - compiled only so that bpf2go generates the Go twins of the
 * structs in lb.h, and of the constants of lb.h and dutycycle.h: the enum
 * below takes its values from the headers' macros, so Go reads them from
 * the compiler instead of keeping copies by hand. dutycycle.bpf.h is
 * included for SK_DCYCLE_LN2_Q32, which only it defines; its functions
 * are static and unused, so they leave nothing in the object.
 */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <scxkit/lb.h>
#include <scxkit/dutycycle.bpf.h>

struct sk_lb_task task_type;
struct sk_lb_domain domain_type;
struct sk_lb_domain_counters counters_type;

/* A u64 enum: SK_DCYCLE_MAX_HALF_LIFE_NS does not fit 32 bits. */
enum sk_lb_consts {
	SK_MAX_TASKS = SK_LB_MAX_TASKS,
	SK_MAX_DOMAINS = SK_LB_MAX_DOMAINS,
	SK_DC_SHIFT = SK_DCYCLE_SHIFT,
	SK_DC_ONE = SK_DCYCLE_ONE,
	SK_DC_ACC_SHIFT = SK_DCYCLE_ACC_SHIFT,
	SK_DC_MAX_LEVEL = SK_DCYCLE_MAX_LEVEL,
	SK_DC_MAX_HALF_LIFE_NS = SK_DCYCLE_MAX_HALF_LIFE_NS,
	SK_DC_NR_BUCKETS = SK_DCYCLE_NR_BUCKETS,
	SK_DC_LN2_Q32 = SK_DCYCLE_LN2_Q32,
};
enum sk_lb_consts consts_type;
