//go:build ignore

/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * types - compiled only so that bpf2go generates the Go twins of the
 * structs in energy.h.
 */
#include <vmlinux.h>
#include <scxkit/energy.h>

struct sk_energy_model model_type;
struct sk_energy_plan plan_type;
