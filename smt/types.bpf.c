//go:build ignore

/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * types - compiled only so that bpf2go generates the Go twins of the
 * structs in smt.h that package smt writes and reads.
 */
#include <vmlinux.h>
#include <scxkit/smt.h>

struct sk_smt_layout layout_type;
struct sk_smt_counters counters_type;
