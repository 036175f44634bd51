//go:build ignore

/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * selftest - host tests of preempt.bpf.h without a scheduler: SEC("syscall")
 * programs, run through BPF_PROG_TEST_RUN, find the class of the task
 * running them (the Go test) under the configuration Go applied, and the
 * histogram bucket of a wait, so the Go/BPF layouts, the slot switch, the
 * task-name and cgroup lookups and the bucket bounds are checked against
 * the kernel.
 */
#include <scxkit/scx.bpf.h>
#include <scxkit/preempt.bpf.h>

u32 st_check_name; /* in: run as on a wakeup, when the task's name is checked */
u32 st_class;
u64 st_gen;

SEC("syscall")
int class_of_current(void *ctx)
{
	struct task_struct *p = bpf_get_current_task_btf();
	const struct sk_preempt_config *cfg = sk_preempt_config();
	struct sk_preempt_task *t = sk_preempt_task_of(p, cfg, st_check_name);

	st_gen = cfg ? cfg->gen : 0;
	st_class = t ? t->cls : ~0U;
	return 0;
}

struct bucket_args {
	u64 ns;
	u32 bucket;
	u32 _pad;
};

SEC("syscall")
int bucket_of(struct bucket_args *args)
{
	args->bucket = sk_preempt_bucket(args->ns);
	return 0;
}
