//go:build ignore

/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * selftest - host tests of smt.bpf.h's class lookup. No scheduler is
 * attached: a SEC("syscall") program, run through BPF_PROG_TEST_RUN,
 * finds the class of the task running it (the Go test) after Go wrote a
 * layout, so the cgroup ancestor walk and Go's cgroup ids (directory
 * inodes) are checked against the kernel's cgroup->kn->id.
 */
#include <scxkit/scx.bpf.h>
#include <scxkit/smt.bpf.h>

u32 st_class;
u64 st_cgroup_id;

SEC("syscall")
int class_of_current(void *ctx)
{
	struct task_struct *p = bpf_get_current_task_btf();

	st_cgroup_id = BPF_CORE_READ(p, cgroups, dfl_cgrp, kn, id);
	st_class = sk_smt_class_of(p);
	return 0;
}
