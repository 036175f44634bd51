//go:build ignore

/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * selftest - host tests of cpuset.bpf.h and timer.bpf.h. No scheduler is
 * attached: SEC("syscall") programs run through BPF_PROG_TEST_RUN on any
 * kernel with BPF. The one sched_ext kfunc the claiming code calls,
 * scx_bpf_test_and_clear_cpu_idle, is replaced by a stand-in that takes
 * CPUs out of fake_idle, so that claiming runs here too.
 */
#include <scxkit/scx.bpf.h>

/* The stand-in for the kernel's idle bits (the header calls it by this name). */
static bool st_test_and_clear_idle(s32 cpu);
#define scx_bpf_test_and_clear_cpu_idle st_test_and_clear_idle
#include <scxkit/cpuset.bpf.h>
#undef scx_bpf_test_and_clear_cpu_idle
#include <scxkit/timer.bpf.h>

/* Sets the Go test reads and writes with cpuset.Read and cpuset.Write. */
struct sk_cpuset set_a SEC(".bss");
struct sk_cpuset set_b SEC(".bss");
struct sk_cpuset out_set SEC(".bss");
struct sk_cpuset fake_idle SEC(".bss");

/* Not a set: cpuset.Read must refuse it. */
u64 not_a_set[SK_CPUSET_WORDS] SEC(".bss");
const volatile struct sk_cpuset const_set;

s32 in_cpu;
s32 out_ret;
u32 out_weight, out_empty, out_test;
s32 out_first, out_next, out_first_and;
u32 out_n;
s32 out_cpus[SK_CPUSET_MAX_CPUS];
u64 fake_tries;

static bool st_test_and_clear_idle(s32 cpu)
{
	fake_tries++;
	return sk_cpuset_test_and_clear(&fake_idle, cpu);
}

/* One program per operation on set_a with in_cpu; results in out_*. */
SEC("syscall")
int st_set(void *ctx)
{
	sk_cpuset_set(&set_a, in_cpu);
	return 0;
}

SEC("syscall")
int st_clear(void *ctx)
{
	sk_cpuset_clear(&set_a, in_cpu);
	return 0;
}

SEC("syscall")
int st_test_and_set(void *ctx)
{
	out_ret = sk_cpuset_test_and_set(&set_a, in_cpu);
	return 0;
}

SEC("syscall")
int st_test_and_clear(void *ctx)
{
	out_ret = sk_cpuset_test_and_clear(&set_a, in_cpu);
	return 0;
}

/* st_query - every read-only operation on set_a (and set_b). */
SEC("syscall")
int st_query(void *ctx)
{
	out_test = sk_cpuset_test(&set_a, in_cpu);
	out_weight = sk_cpuset_weight(&set_a);
	out_empty = sk_cpuset_empty(&set_a);
	out_first = sk_cpuset_first(&set_a);
	out_next = sk_cpuset_next(&set_a, in_cpu);
	out_first_and = sk_cpuset_first_and(&set_a, &set_b);
	return 0;
}

/* st_iterate - the loop the header documents, into out_cpus[0..out_n). */
SEC("syscall")
int st_iterate(void *ctx)
{
	s32 cpu = -1;
	u32 i;

	out_n = 0;
	bpf_for(i, 0, SK_CPUSET_MAX_CPUS) {
		u32 n = out_n;

		cpu = sk_cpuset_next(&set_a, cpu + 1);
		if (cpu < 0)
			break;
		barrier_var(n);
		if (n >= SK_CPUSET_MAX_CPUS)
			break;
		out_cpus[n] = cpu;
		out_n = n + 1;
	}
	return 0;
}

/* st_zero - empty set_a. */
SEC("syscall")
int st_zero(void *ctx)
{
	sk_cpuset_zero(&set_a);
	return 0;
}

/*
 * st_from_cpumask - build a bpf_cpumask of set_a's CPUs (the kfunc keeps
 * only those below nr_cpu_ids) and convert it back into out_set, reading
 * no CPU from in_cpu on (the kernel's nr_cpu_ids in a scheduler). Returns
 * 1 if the mask could not be created.
 */
SEC("syscall")
int st_from_cpumask(void *ctx)
{
	struct bpf_cpumask *m = bpf_cpumask_create();
	s32 cpu = -1;
	u32 i;

	if (!m)
		return 1;
	bpf_for(i, 0, SK_CPUSET_MAX_CPUS) {
		cpu = sk_cpuset_next(&set_a, cpu + 1);
		if (cpu < 0)
			break;
		bpf_cpumask_set_cpu(cpu, m);
	}
	sk_cpuset_from_cpumask(&out_set, (const struct cpumask *)m, in_cpu);
	bpf_cpumask_release(m);
	return 0;
}

/*
 * st_claim - claim a CPU of set_a, preferring in_cpu, among candidates
 * set_b (a stand-in for sk_cpuset_idle_view); then, with the same view,
 * one of out_set, as a scheduler tries its nests in order. out_ret and
 * out_first are the two claims; set_b is left as the view ends.
 */
SEC("syscall")
int st_claim(void *ctx)
{
	struct sk_cpuset view;
	u32 i;

	for (i = 0; i < SK_CPUSET_WORDS; i++)
		view.words[i] = set_b.words[i];
	out_ret = sk_cpuset_claim(&view, &set_a, in_cpu);
	out_first = sk_cpuset_claim(&view, &out_set, in_cpu);
	for (i = 0; i < SK_CPUSET_WORDS; i++)
		set_b.words[i] = view.words[i];
	return 0;
}

/* The timer: started by st_timer_start, counted by its callback. */
SK_TIMER_DEFINE(st_timer);
u64 timer_body_runs;
s32 timer_cpu = -1;

SK_TIMER_CALLBACK(st_tick, struct sk_timer *t)
{
	timer_body_runs++;
	timer_cpu = bpf_get_smp_processor_id();
}

/* st_timer_start - arm st_timer every 1ms, pinned if in_cpu is 1; out_ret is the error. */
SEC("syscall")
int st_timer_start(void *ctx)
{
	if (in_cpu)
		out_ret = sk_timer_start_pinned(&st_timer, 1000 * 1000, st_tick);
	else
		out_ret = sk_timer_start(&st_timer, 1000 * 1000, st_tick);
	return 0;
}

/* st_timer_read - out_weight is how often st_timer fired (low 32 bits). */
SEC("syscall")
int st_timer_read(void *ctx)
{
	out_weight = sk_timer_fires(&st_timer);
	return 0;
}
