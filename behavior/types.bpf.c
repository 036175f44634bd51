//go:build ignore

/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * types - compiled only so that bpf2go generates the Go twins of the
 * structs in behavior.h that package behavior writes and reads, and of
 * its constants: the enum below takes its values from the header's
 * macros, so Go reads them from the compiler instead of keeping copies.
 */
#include <vmlinux.h>
#include <scxkit/behavior.h>

struct sk_behavior_conf conf_type;
struct sk_behavior_counters counters_type;

enum sk_behavior_consts {
	SK_MAX_CPUS = SK_BEHAVIOR_MAX_CPUS,
	SK_NO_PREEMPT = SK_BEHAVIOR_NO_PREEMPT,
	SK_NO_AFFINE = SK_BEHAVIOR_NO_AFFINE,
};
enum sk_behavior_consts consts_type;
