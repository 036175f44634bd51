//go:build ignore

/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * bpf_selftest - host tests of energy.bpf.h. SEC("syscall") programs run
 * through BPF_PROG_TEST_RUN on any kernel with BPF, sched_ext or not. The
 * Go test binds a Planner (which writes the model), writes a plan with
 * Planner.Write, fills queries, runs lookup, and compares the answers with
 * package energy's own.
 */
#include <scxkit/scx.bpf.h>
#include <scxkit/energy.bpf.h>

#define MAX_QUERIES 4096

struct query {
	s32 cpu;
	u32 util;
};

struct answer {
	s32 state;    /* sk_energy_state_of */
	u32 capacity; /* sk_energy_capacity */
	u64 cost;     /* sk_energy_cost */
	u32 perf;     /* the state's perf, 0 if none */
	u32 warm;     /* sk_energy_is_warm */
};

struct query queries[MAX_QUERIES];
struct answer answers[MAX_QUERIES];
u32 nr_queries;

/* lookup answers queries[0..nr_queries); it returns how many it answered. */
SEC("syscall")
int lookup(void *ctx)
{
	u32 nr = nr_queries, done = 0;
	int i;

	bpf_for(i, 0, nr) {
		struct sk_energy_cpu *c;
		struct query *q;
		struct answer *a;
		s32 s;
		u32 si;

		if (i >= MAX_QUERIES)
			break;
		q = &queries[i];
		a = &answers[i];
		s = sk_energy_state_of(q->cpu, q->util);
		a->state = s;
		a->capacity = sk_energy_capacity(q->cpu);
		a->cost = sk_energy_cost(q->cpu, q->util);
		a->warm = sk_energy_is_warm(q->cpu);
		a->perf = 0;
		c = sk_energy_cpu_of(q->cpu);
		si = s;
		barrier_var(si);
		if (c && s >= 0 && si < SK_ENERGY_MAX_STATES)
			a->perf = c->states[si].perf;
		done++;
	}
	return done;
}
