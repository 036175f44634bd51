//go:build ignore

/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * types - compiled only so that bpf2go generates the Go twins of the
 * structs in preempt.h that package preempt writes and reads.
 */
#include <vmlinux.h>
#include <schedkit/preempt.h>

struct sk_preempt_config config_type;
struct sk_preempt_cgroup_key cgroup_key_type;
struct sk_preempt_comm_key comm_key_type;
struct sk_preempt_counters counters_type;
