//go:build ignore

/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * types - compiled only so that bpf2go generates the Go twins of
 * struct sk_lb_task and struct sk_lb_domain_counters (lb.h).
 */
#include <schedkit/scx.bpf.h>
#include <schedkit/lb.h>

struct sk_lb_task task_type;
struct sk_lb_domain_counters counters_type;
