//go:build ignore

/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * types - compiled only so that bpf2go generates the Go twins of the
 * structs in smt.h that package smt writes and reads, and of its
 * constants: the enum below takes its values from the header's macros, so
 * Go reads them from the compiler instead of keeping copies by hand.
 */
#include <vmlinux.h>
#include <scxkit/smt.h>

struct sk_smt_layout layout_type;
struct sk_smt_counters counters_type;
struct sk_smt_groups groups_type;

enum sk_smt_consts {
	SK_MAX_CPUS = SK_SMT_MAX_CPUS,
	SK_MAX_SIBLINGS = SK_SMT_MAX_SIBLINGS,
	SK_MAX_CLASSES = SK_SMT_MAX_CLASSES,
	SK_SYSTEM = SK_SMT_SYSTEM,
	SK_NO_CPU = SK_SMT_NO_CPU,
	SK_MAX_DSQ_CLASSES = SK_SMT_MAX_DSQ_CLASSES,
};
enum sk_smt_consts consts_type;
