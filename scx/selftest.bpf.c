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
