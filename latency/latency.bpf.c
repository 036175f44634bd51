//go:build ignore

/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * latency - the tracing programs of package latency: scxkit/latency.bpf.h
 * driven by the scheduler's tracepoints (tp_btf), so it works on any kernel
 * with BTF and BPF tracing, whether sched_ext runs or not.
 */
#define BPF_NO_KFUNC_PROTOTYPES
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include <scxkit/latency.bpf.h>

char _license[] SEC("license") = "GPL";

/* Only for bpf2go: makes the ring buffer's record type part of the BTF. */
struct sk_lat_outlier sk_lat_outlier_type;

SEC("tp_btf/sched_wakeup")
int BPF_PROG(lat_wakeup, struct task_struct *p)
{
	sk_lat_wakeup(p, bpf_ktime_get_ns());
	return 0;
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(lat_wakeup_new, struct task_struct *p)
{
	sk_lat_wakeup(p, bpf_ktime_get_ns());
	return 0;
}

/*
 * prev_state is the state __schedule() read, TASK_RUNNING (0) if prev did
 * not block; a preempted task stays runnable whatever its state.
 */
SEC("tp_btf/sched_switch")
int BPF_PROG(lat_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	sk_lat_switch(prev, next, preempt || prev_state == 0, bpf_ktime_get_ns());
	return 0;
}

SEC("tp_btf/sched_migrate_task")
int BPF_PROG(lat_migrate, struct task_struct *p, int dest_cpu)
{
	sk_lat_migrate(p, dest_cpu, bpf_ktime_get_ns());
	return 0;
}
