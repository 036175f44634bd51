//go:build ignore

/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/* query - topology.bpf.h without a scheduler, for host tests. */
#include <schedkit/scx.bpf.h>
#include <schedkit/topology.bpf.h>
#include "query.bpf.h"
