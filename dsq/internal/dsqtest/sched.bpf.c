//go:build ignore

/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * sched - a domain scheduler built from dsq.bpf.h alone: a task waits in
 * the DSQ of the CPU it last ran on, ordered by weighted virtual time;
 * a CPU serves its own DSQ first and steals from the nearest other one.
 */
#include <scxkit/scx.bpf.h>
#include <scxkit/runtime.bpf.h>
#include <scxkit/dsq.bpf.h>

SK_OPS(s32, sched_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	bool is_idle = false;
	s32 cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);

	if (is_idle)
		sk_dsq_insert(p, SK_DSQ_LOCAL, sk_slice(), 0);
	return cpu;
}

SK_OPS(void, sched_enqueue, struct task_struct *p, u64 enq_flags)
{
	u32 idx = sk_dsq_of_cpu(scx_bpf_task_cpu(p));

	if (!sk_dsq_enqueue_vtime(p, idx, sk_slice(), enq_flags))
		sk_dsq_insert(p, SK_DSQ_GLOBAL, sk_slice(), enq_flags);
}

SK_OPS(void, sched_dispatch, s32 cpu, struct task_struct *prev)
{
	sk_dsq_dispatch(cpu);
}

SK_OPS(void, sched_running, struct task_struct *p)
{
	sk_runtime_start(p);
	sk_dsq_started(p, sk_dsq_of_cpu(scx_bpf_task_cpu(p)));
}

SK_OPS(void, sched_stopping, struct task_struct *p, bool runnable)
{
	sk_dsq_charge(p, sk_runtime_used(p));
}

SK_OPS_SLEEPABLE(s32, sched_init)
{
	return sk_dsq_create_all();
}

SK_OPS(void, sched_exit, struct scx_exit_info *ei)
{
	sk_exit_record(ei);
}

SK_SCHEDULER(sched_ops,
	.select_cpu = (void *)sched_select_cpu,
	.enqueue    = (void *)sched_enqueue,
	.dispatch   = (void *)sched_dispatch,
	.running    = (void *)sched_running,
	.stopping   = (void *)sched_stopping,
	.init       = (void *)sched_init,
	.exit       = (void *)sched_exit);
