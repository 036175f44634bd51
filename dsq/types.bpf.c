//go:build ignore

/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * types - compiled only so that bpf2go generates the Go twins of
 * struct sk_dsq_layout and struct sk_dsq_counters (dsq.h).
 */
#include <vmlinux.h>
#include <scxkit/dsq.h>

struct sk_dsq_layout layout_type;
struct sk_dsq_counters counters_type;
