//go:build ignore

/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * types - compiled only so that bpf2go generates the Go twins of the
 * constants of latency.h that package latency shares with latency.bpf.h:
 * the enum below takes its values from the header's macros, so Go reads
 * them from the compiler instead of keeping copies by hand. No program
 * runs it.
 */
#include <vmlinux.h>
#include <scxkit/latency.h>

enum sk_lat_consts {
	SK_MAX_BOUNDS = SK_LAT_MAX_BOUNDS,
	SK_NR_BUCKETS = SK_LAT_NR_BUCKETS,
	SK_KIND_WAKEUP = SK_LAT_WAKEUP,
	SK_KIND_PREEMPT = SK_LAT_PREEMPT,
};
enum sk_lat_consts consts_type;
