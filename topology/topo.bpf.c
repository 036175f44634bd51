//go:build ignore

/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * topo - compiled only so that bpf2go generates the Go twin of struct
 * sk_topo (topology.h) that Topology.Bind fills, and of its constants:
 * the enum below takes its values from the header's macros, so Go reads
 * them from the compiler instead of keeping copies by hand. No program
 * runs it.
 */
#include <vmlinux.h>
#include <scxkit/topology.h>

struct sk_topo topo_type;

enum sk_topo_consts {
	SK_MAX_CPUS = SK_TOPO_MAX_CPUS,
	SK_MAX_LLCS = SK_TOPO_MAX_LLCS,
	SK_MAX_NODES = SK_TOPO_MAX_NODES,
	SK_MASK_WORDS = SK_TOPO_MASK_WORDS,
	SK_CPU_ONLINE = SK_TOPO_CPU_ONLINE,
};
enum sk_topo_consts consts_type;
