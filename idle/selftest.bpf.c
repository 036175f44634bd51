//go:build ignore

/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * selftest - host tests of idle.bpf.h: st_update plays ops.update_idle,
 * st_query reads back what BPF code sees. No scheduler is attached.
 */
#include <scxkit/scx.bpf.h>
#include <scxkit/idle.bpf.h>

s32 in_cpu;
u32 in_idle;
u64 in_now;
u64 out_idle_since, out_busy_since, out_idle_for;

/* Not the layout: the Go test points the layout reader at it. */
u64 not_idle_cpus[4];

SEC("syscall")
int st_update(void *ctx)
{
	sk_idle_update(in_cpu, in_idle);
	return 0;
}

SEC("syscall")
int st_query(void *ctx)
{
	out_idle_since = sk_idle_since(in_cpu);
	out_busy_since = sk_idle_busy_since(in_cpu);
	out_idle_for = sk_idle_for(in_cpu, in_now);
	return 0;
}
