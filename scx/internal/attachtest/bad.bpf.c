//go:build ignore

/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * bad - a scheduler the verifier rejects: enqueue writes through a hash map
 * lookup result without checking it for NULL. TestVerifierError expects
 * the loader's error to carry the verifier's complaint.
 */
#include <scxkit/scx.bpf.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, s32);
	__type(value, u64);
} per_pid SEC(".maps");

SK_OPS(void, bad_enqueue, struct task_struct *p, u64 enq_flags)
{
	s32 pid = p->pid;
	u64 *n = bpf_map_lookup_elem(&per_pid, &pid);

	(*n)++; /* no NULL check: rejected */
	sk_dsq_insert(p, SK_DSQ_GLOBAL, sk_slice(), enq_flags);
}

SK_OPS(void, bad_exit, struct scx_exit_info *ei)
{
	sk_exit_record(ei);
}

SK_SCHEDULER(bad_ops,
	.enqueue = (void *)bad_enqueue,
	.exit    = (void *)bad_exit);
