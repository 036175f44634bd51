//go:build ignore

/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * topo - compiled only so that bpf2go generates the Go twin of struct
 * sk_topo (topology.h) that Topology.WriteBPF fills; no program runs it.
 */
#include <vmlinux.h>
#include <scxkit/topology.h>

struct sk_topo topo_type;
