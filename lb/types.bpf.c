//go:build ignore

/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * types - compiled only so that bpf2go generates the Go twins of the
 * structs in lb.h.
 */
#include <vmlinux.h>
#include <scxkit/lb.h>

struct sk_lb_task task_type;
struct sk_lb_domain domain_type;
struct sk_lb_domain_counters counters_type;
