//go:build ignore

/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * types - compiled only so that bpf2go generates the Go twins of the
 * structs in energy.h, and of its constants: the enum below takes its
 * values from the header's macros (and the kernel's, from vmlinux.h), so
 * Go reads them from the compiler instead of keeping copies by hand.
 */
#include <vmlinux.h>
#include <scxkit/energy.h>

struct sk_energy_model model_type;
struct sk_energy_plan plan_type;

enum sk_energy_consts {
	SK_MAX_CPUS = SK_ENERGY_MAX_CPUS,
	SK_MAX_STATES = SK_ENERGY_MAX_STATES,
	/* the scale of sk_energy_plan.perf, scx_bpf_cpuperf_set's */
	SK_CPUPERF_ONE = SCX_CPUPERF_ONE,
};
enum sk_energy_consts consts_type;
