//go:build ignore

/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * selftest - host tests of behavior.bpf.h. No scheduler is attached:
 * SEC("syscall") programs, run through BPF_PROG_TEST_RUN, apply the
 * header's rules to inputs the Go test writes, with the settings package
 * behavior wrote at bind, and end a burst of the task running them (the
 * Go test) as ops.stopping would.
 */
#include <scxkit/scx.bpf.h>
#include <scxkit/behavior.bpf.h>

u64 in_avg, in_burst, in_since, in_now, in_woke_sum, in_woken, in_run_sum;
u64 out_avg, out_used, out_woke_sum, out_woken;
u32 out_short, out_may_preempt, out_sensitive, out_found;

SEC("syscall")
int classify(void *ctx)
{
	out_avg = sk_behavior_average(in_avg, in_burst);
	out_short = sk_behavior_is_short(in_avg);
	out_may_preempt = sk_behavior_may_preempt(in_since, in_avg, in_now);
	return 0;
}

/*
 * end_burst - the current task's burst average is in_avg, its burst
 * began when its run time was in_woke_sum, at a wakeup if in_woken, it
 * started running when its run time was in_run_sum, and now it sleeps:
 * out_avg is its new average, out_sensitive whether it is
 * latency-sensitive after, out_used the run time sk_behavior_stopping
 * returned, out_woke_sum and out_woken where its next burst begins.
 */
SEC("syscall")
int end_burst(void *ctx)
{
	struct task_struct *p = bpf_get_current_task_btf();
	struct sk_behavior_task *t = sk_behavior_task_of(p, true);

	out_found = t != NULL;
	if (!t)
		return 0;
	t->burst_avg = in_avg;
	t->woke_sum = in_woke_sum;
	t->woken = in_woken;
	t->run_sum = in_run_sum;
	out_used = sk_behavior_stopping(p, false);
	out_avg = t->burst_avg;
	out_woke_sum = t->woke_sum;
	out_woken = t->woken;
	out_sensitive = sk_behavior_sensitive(p);
	return 0;
}

/* run_time - the current task's run time so far, p->se.sum_exec_runtime. */
SEC("syscall")
int run_time(void *ctx)
{
	in_woke_sum = bpf_get_current_task_btf()->se.sum_exec_runtime;
	return 0;
}
