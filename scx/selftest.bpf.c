//go:build ignore

/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * selftest - host tests of the scxkit core headers. No scheduler is
 * attached: SEC("syscall") programs run through BPF_PROG_TEST_RUN on any
 * kernel with BPF, sched_ext or not.
 */
#include <scxkit/scx.bpf.h>

struct selftest_stats {
	u64 runs;
	u64 doubled;
	u64 untouched;
};
SK_STATS_DEFINE(struct selftest_stats);

/* count_stats adds 1 to runs and 2 to doubled on the CPU it runs on. */
SEC("syscall")
int count_stats(void *ctx)
{
	sk_stat_inc(runs);
	sk_stat_add(doubled, 2);
	return 0;
}

/* slice returns sk_slice(): sk_slice_ns if the loader set it, else the
 * kernel's SCX_SLICE_DFL through a CO-RE enum relocation (in ms, to fit
 * the return value). */
SEC("syscall")
int slice_ms(void *ctx)
{
	return sk_slice() / 1000000;
}

/*
 * cpumask_kfuncs - calls every generic cpumask kfunc that compat.bpf.h
 * declares, on masks built from in_cpus_a and in_cpus_b (CPU numbers
 * below 64, as bits; the kfuncs ignore CPUs the machine cannot have), and
 * in_spare, a CPU outside in_cpus_a, and records what each returned: the Go test
 * checks the results, and its matrix test checks each declaration
 * against the pinned kernels' BTF. Returns 0, or 1 if a mask could not be
 * created.
 */
u64 in_cpus_a, in_cpus_b;
u32 in_spare;
u64 out_and, out_or, out_xor, out_copy, out_cleared;
u32 out_weight_a, out_first_a, out_first_zero_a, out_first_and, out_any_a, out_any_and;
u32 out_equal, out_intersects, out_subset, out_empty, out_full, out_and_nonempty;
u32 out_test_and_set, out_test_and_clear, out_acquired;

static u64 mask_bits(const struct cpumask *m)
{
	u64 bits = 0;
	u32 cpu;

	bpf_for(cpu, 0, 64)
		if (bpf_cpumask_test_cpu(cpu, m))
			bits |= 1ULL << cpu;
	return bits;
}

SEC("syscall")
int cpumask_kfuncs(void *ctx)
{
	struct bpf_cpumask *a, *b, *r, *held;
	u32 cpu;

	a = bpf_cpumask_create();
	if (!a)
		return 1;
	b = bpf_cpumask_create();
	if (!b) {
		bpf_cpumask_release(a);
		return 1;
	}
	r = bpf_cpumask_create();
	if (!r) {
		bpf_cpumask_release(a);
		bpf_cpumask_release(b);
		return 1;
	}
	bpf_for(cpu, 0, 64) {
		if (in_cpus_a & (1ULL << cpu))
			bpf_cpumask_set_cpu(cpu, a);
		if (in_cpus_b & (1ULL << cpu))
			bpf_cpumask_set_cpu(cpu, b);
	}
	out_weight_a = bpf_cpumask_weight((const struct cpumask *)a);
	out_first_a = bpf_cpumask_first((const struct cpumask *)a);
	out_first_zero_a = bpf_cpumask_first_zero((const struct cpumask *)a);
	out_first_and = bpf_cpumask_first_and((const struct cpumask *)a, (const struct cpumask *)b);
	out_any_a = bpf_cpumask_any_distribute((const struct cpumask *)a);
	out_any_and = bpf_cpumask_any_and_distribute((const struct cpumask *)a, (const struct cpumask *)b);
	out_equal = bpf_cpumask_equal((const struct cpumask *)a, (const struct cpumask *)b);
	out_intersects = bpf_cpumask_intersects((const struct cpumask *)a, (const struct cpumask *)b);
	out_subset = bpf_cpumask_subset((const struct cpumask *)a, (const struct cpumask *)b);
	out_empty = bpf_cpumask_empty((const struct cpumask *)a);
	out_full = bpf_cpumask_full((const struct cpumask *)a);

	out_and_nonempty = bpf_cpumask_and(r, (const struct cpumask *)a, (const struct cpumask *)b);
	out_and = mask_bits((const struct cpumask *)r);
	bpf_cpumask_or(r, (const struct cpumask *)a, (const struct cpumask *)b);
	out_or = mask_bits((const struct cpumask *)r);
	bpf_cpumask_xor(r, (const struct cpumask *)a, (const struct cpumask *)b);
	out_xor = mask_bits((const struct cpumask *)r);
	bpf_cpumask_copy(r, (const struct cpumask *)a);
	out_copy = mask_bits((const struct cpumask *)r);

	/* in_spare is not in a, so not in its copy: set it, then clear it. */
	out_test_and_set = bpf_cpumask_test_and_set_cpu(in_spare, r);
	out_test_and_set |= bpf_cpumask_test_and_set_cpu(in_spare, r) << 1;
	out_test_and_clear = bpf_cpumask_test_and_clear_cpu(in_spare, r);
	out_test_and_clear |= bpf_cpumask_test_and_clear_cpu(in_spare, r) << 1;
	bpf_cpumask_clear_cpu(out_first_a, r);
	out_cleared = mask_bits((const struct cpumask *)r);

	held = bpf_cpumask_acquire(r);
	out_acquired = held != NULL;
	bpf_cpumask_release(held);
	bpf_cpumask_setall(r);
	out_full |= bpf_cpumask_full((const struct cpumask *)r) << 1;
	bpf_cpumask_clear(r);
	out_empty |= bpf_cpumask_empty((const struct cpumask *)r) << 1;

	bpf_cpumask_release(r);
	bpf_cpumask_release(b);
	bpf_cpumask_release(a);
	return 0;
}
