//go:build ignore

/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/* query - topology.bpf.h without a scheduler, for host tests. */
#include <scxkit/scx.bpf.h>
#include <scxkit/topology.bpf.h>
#include "query.bpf.h"
