//go:build ignore

/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * types - compiled only so that bpf2go generates the Go twins of
 * struct sk_dsq_layout and struct sk_dsq_counters (dsq.h), and of its
 * constants: the enums below take their values from the header's macros,
 * so Go reads them from the compiler instead of keeping copies by hand.
 */
#include <vmlinux.h>
#include <scxkit/dsq.h>

struct sk_dsq_layout layout_type;
struct sk_dsq_counters counters_type;

enum sk_dsq_consts {
	SK_MAX = SK_DSQ_MAX,
	SK_MAX_CPUS = SK_DSQ_MAX_CPUS,
	SK_MAX_STEAL = SK_DSQ_MAX_STEAL,
	SK_MAX_CLASSES = SK_DSQ_MAX_CLASSES,
	SK_NONE = SK_DSQ_NONE,
};
enum sk_dsq_consts consts_type;

/* Signed, and apart, so that the enum above stays a u32. */
enum sk_dsq_node_consts {
	SK_ANY_NODE = SK_DSQ_ANY_NODE,
};
enum sk_dsq_node_consts node_consts_type;
