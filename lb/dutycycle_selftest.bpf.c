//go:build ignore

/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * dutycycle_selftest - host tests of dutycycle.bpf.h. No scheduler is
 * attached: SEC("syscall") programs run through BPF_PROG_TEST_RUN on any
 * kernel with BPF, sched_ext or not. The Go test fills dc_events and
 * dc_nr, runs replay, and compares dc_results, step by step, with what
 * lb.DutyCycle and lb.DutyCycleDom compute for the same events.
 */
#include <scxkit/scx.bpf.h>
#include <scxkit/dutycycle.bpf.h>

#define DC_MAX_EVENTS 512

enum dc_op {
	DC_OP_UPDATE = 0,     /* sk_dcycle_update(&dc_task, now, arg != 0, half_life) */
	DC_OP_DOM_UPDATE = 1, /* sk_dcycle_dom_update(&dc_dom, bucket, now, arg, half_life) */
	DC_OP_SET_LEVEL = 2,  /* sk_dcycle_set_level(&dc_task, now, arg, half_life) */
};

struct dc_event {
	u64 now;
	u64 half_life;
	u64 read_at; /* time at which results read dc_task and the bucket */
	u32 op;      /* enum dc_op */
	s32 arg;
	u32 bucket;
	u32 _pad;
};

struct dc_result {
	struct sk_dcycle task;   /* dc_task after the event */
	struct sk_dcycle bucket; /* dc_dom.buckets[bucket] after the event (zero if out of range) */
	u64 read;                /* sk_dcycle_read(&dc_task, read_at, half_life) */
	u64 dom_read;            /* sk_dcycle_dom_read(&dc_dom, bucket, read_at, half_life) */
};

struct dc_event dc_events[DC_MAX_EVENTS];
struct dc_result dc_results[DC_MAX_EVENTS];
u32 dc_nr;
struct sk_dcycle dc_task;
struct sk_dcycle_dom dc_dom;

/* replay applies dc_events[0..dc_nr) in order; it returns how many it applied. */
SEC("syscall")
int replay(void *ctx)
{
	u32 nr = dc_nr, applied = 0;
	int i;

	bpf_for(i, 0, nr) {
		struct dc_event *ev;
		struct dc_result *res;

		if (i >= DC_MAX_EVENTS)
			break;
		ev = &dc_events[i];
		res = &dc_results[i];
		switch (ev->op) {
		case DC_OP_UPDATE:
			sk_dcycle_update(&dc_task, ev->now, ev->arg != 0, ev->half_life);
			break;
		case DC_OP_DOM_UPDATE:
			sk_dcycle_dom_update(&dc_dom, ev->bucket, ev->now, ev->arg, ev->half_life);
			break;
		case DC_OP_SET_LEVEL:
			sk_dcycle_set_level(&dc_task, ev->now, (u32)ev->arg, ev->half_life);
			break;
		}
		res->task = dc_task;
		if (ev->bucket < SK_DCYCLE_NR_BUCKETS)
			res->bucket = dc_dom.buckets[ev->bucket];
		else
			__builtin_memset(&res->bucket, 0, sizeof(res->bucket));
		res->read = sk_dcycle_read(&dc_task, ev->read_at, ev->half_life);
		res->dom_read = sk_dcycle_dom_read(&dc_dom, ev->bucket, ev->read_at, ev->half_life);
		applied++;
	}
	return applied;
}

/* Inputs and output of decay and bucket. */
u64 dc_in_v, dc_in_dt, dc_in_hl;
u32 dc_in_weight;
u64 dc_out;

/* decay sets dc_out = sk_dcycle_decay(dc_in_v, dc_in_dt, sk_dcycle_half_life(dc_in_hl)). */
SEC("syscall")
int decay(void *ctx)
{
	dc_out = sk_dcycle_decay(dc_in_v, dc_in_dt, sk_dcycle_half_life(dc_in_hl));
	return 0;
}

/* bucket returns sk_dcycle_bucket(dc_in_weight). */
SEC("syscall")
int bucket(void *ctx)
{
	return sk_dcycle_bucket(dc_in_weight);
}
