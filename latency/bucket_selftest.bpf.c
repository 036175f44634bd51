//go:build ignore

/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * bucket_selftest - host test of sk_lat_bucket in scxkit/latency.bpf.h:
 * a SEC("syscall") program, run through BPF_PROG_TEST_RUN, puts each of
 * delays[0..nr_delays) in a bucket of the bounds package latency wrote into
 * .rodata; the Go test compares with Histogram's twin.
 */
#define BPF_NO_KFUNC_PROTOTYPES
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include <scxkit/latency.bpf.h>

char _license[] SEC("license") = "GPL";

#define MAX_DELAYS 1024

u64 delays[MAX_DELAYS];
u32 buckets[MAX_DELAYS];
u32 nr_delays;

/* bucket fills buckets[i] = sk_lat_bucket(delays[i]); it returns how many. */
SEC("syscall")
int bucket(void *ctx)
{
	u32 nr = nr_delays, done = 0;
	int i;

	bpf_for(i, 0, nr) {
		if (i >= MAX_DELAYS)
			break;
		buckets[i] = sk_lat_bucket(delays[i]);
		done++;
	}
	return done;
}
