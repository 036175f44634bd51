/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * query.bpf.h - a SEC("syscall") program that answers questions about two
 * CPUs from topology.bpf.h's helpers, so Go can compare every answer with
 * package topology's view (Check). Included by query.bpf.c, which loads on
 * any kernel with BPF, and by sched.bpf.c, to ask while attached.
 */
#ifndef __TOPOLOGY_QUERY_BPF_H
#define __TOPOLOGY_QUERY_BPF_H

struct topo_question {
	s32 a, b;           /* in: kernel CPU ids */
	u32 known;          /* out: sk_topo_cpu(a) != NULL */
	u32 core, llc, node, capacity; /* out: of a */
	u32 same_core, same_llc, same_node; /* out: of a and b */
	u32 in_core_mask, in_llc_mask, in_node_mask; /* out: b in a's masks */
};

SEC("syscall")
int topo_query(struct topo_question *q)
{
	const struct sk_topo_cpu *c = sk_topo_cpu(q->a);

	q->known = c != NULL;
	q->same_core = sk_topo_same_core(q->a, q->b);
	q->same_llc = sk_topo_same_llc(q->a, q->b);
	q->same_node = sk_topo_same_node(q->a, q->b);
	if (!c)
		return 0;
	q->core = c->core;
	q->llc = c->llc;
	q->node = c->node;
	q->capacity = c->capacity;
	q->in_core_mask = sk_topo_core_has(c->core, q->b);
	q->in_llc_mask = sk_topo_llc_has(c->llc, q->b);
	q->in_node_mask = sk_topo_node_has(c->node, q->b);
	return 0;
}

#endif
