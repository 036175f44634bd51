//go:build ignore

/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * types - compiled only so that bpf2go generates the Go twins of the
 * structs in preempt.h that package preempt writes and reads, and of its
 * constants: the enum below takes its values from the header's macros, so
 * Go reads them from the compiler instead of keeping copies by hand.
 */
#include <vmlinux.h>
#include <scxkit/preempt.h>

struct sk_preempt_config config_type;
struct sk_preempt_cgroup_key cgroup_key_type;
struct sk_preempt_comm_key comm_key_type;
struct sk_preempt_counters counters_type;

enum sk_preempt_consts {
	SK_MAX_CLASSES = SK_PREEMPT_MAX_CLASSES,
	SK_MAX_IDS = SK_PREEMPT_MAX_IDS,
	SK_MAX_MEMBERS = SK_PREEMPT_MAX_MEMBERS,
	SK_COMM_LEN = SK_PREEMPT_COMM_LEN,
	SK_NR_BUCKETS = SK_PREEMPT_NR_BUCKETS,
	SK_WAKEUP_NEVER = SK_PREEMPT_WAKEUP_NEVER,
	SK_WAKEUP_LOWER = SK_PREEMPT_WAKEUP_LOWER,
	SK_WAKEUP_AFTER = SK_PREEMPT_WAKEUP_AFTER,
	SK_TICK_YIELD = SK_PREEMPT_TICK_YIELD,
	SK_TICK_RUN_ON = SK_PREEMPT_TICK_RUN_ON,
	SK_F_NO_PREEMPT = SK_PREEMPT_F_NO_PREEMPT,
	SK_F_BACKGROUND = SK_PREEMPT_F_BACKGROUND,
};
enum sk_preempt_consts consts_type;
