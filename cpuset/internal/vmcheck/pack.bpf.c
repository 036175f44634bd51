//go:build ignore

/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * pack - a tiny packing scheduler that exercises cpuset.bpf.h, idle.bpf.h,
 * timer.bpf.h and sk_dsq_nr_queued for the VM tests:
 *
 *   select_cpu   claim an idle CPU in "nest" (counted in claimed[]), else
 *                scx_bpf_select_cpu_dfl (its idle picks, the waker's own
 *                CPU left out, counted in fell[])
 *   enqueue      tasks of the processes in "park" go to the DSQ at index 0
 *                of sk_dsq_layout (PARK_DSQ), the rest to the global DSQ
 *   dispatch     serves PARK_DSQ unless "hold" is set
 *   update_idle  sk_idle_update
 *   init         PARK_DSQ as the one-domain dsq layout, and a 5ms timer
 *                whose callback counts itself and samples sk_dsq_nr_queued
 */
#include <scxkit/scx.bpf.h>
#include <scxkit/cpuset.bpf.h>
#include <scxkit/idle.bpf.h>
#include <scxkit/timer.bpf.h>
#include <scxkit/dsq.bpf.h>

#define PARK_DSQ 1

struct sk_cpuset nest SEC(".bss");
u64 claimed[SK_CPUSET_MAX_CPUS] SEC(".bss");
u64 fell[SK_CPUSET_MAX_CPUS] SEC(".bss");
enum sk_cpuset_idle_flags claim_flags; /* for sk_cpuset_claim_idle; puts the enum in BTF */
u32 hold;
u64 ticks;
u32 tick_queued_max;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, u32);
	__type(value, u32);
} park SEC(".maps");

static __always_inline bool parked(struct task_struct *p)
{
	u32 tgid = p->tgid;

	return bpf_map_lookup_elem(&park, &tgid);
}

static __always_inline void count(u64 *arr, s32 cpu)
{
	u32 c = cpu;

	barrier_var(c);
	if (cpu >= 0 && c < SK_CPUSET_MAX_CPUS)
		__sync_fetch_and_add(&arr[c], 1);
}

SK_OPS(s32, pack_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	bool is_idle = false;
	s32 cpu;

	if (parked(p))
		return prev_cpu;
	cpu = sk_cpuset_claim_idle(&nest, p, prev_cpu, claim_flags);
	if (cpu >= 0) {
		count(claimed, cpu);
		sk_dsq_insert(p, SK_DSQ_LOCAL, sk_slice(), 0);
		return cpu;
	}
	cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);
	if (is_idle) {
		/*
		 * A sync wakeup may get the waker's CPU, reported "idle" as
		 * it is about to be: not an idle CPU, so not counted.
		 */
		if (cpu != bpf_get_smp_processor_id())
			count(fell, cpu);
		sk_dsq_insert(p, SK_DSQ_LOCAL, sk_slice(), 0);
	}
	return cpu;
}

SK_OPS(void, pack_enqueue, struct task_struct *p, u64 enq_flags)
{
	if (parked(p))
		sk_dsq_insert(p, sk_dsq_id(0), sk_slice(), enq_flags);
	else
		sk_dsq_insert(p, SK_DSQ_GLOBAL, sk_slice(), enq_flags);
}

SK_OPS(void, pack_dispatch, s32 cpu, struct task_struct *prev)
{
	if (!SK_READ_ONCE(hold))
		sk_dsq_move_to_local(sk_dsq_id(0));
}

SK_OPS(void, pack_update_idle, s32 cpu, bool idle)
{
	sk_idle_update(cpu, idle);
}

SK_TIMER_DEFINE(pack_timer);

SK_TIMER_CALLBACK(pack_tick, struct sk_timer *t)
{
	u32 n = sk_dsq_nr_queued(0);

	ticks++;
	if (n > tick_queued_max)
		tick_queued_max = n;
}

SK_OPS_SLEEPABLE(s32, pack_init)
{
	s32 err;

	sk_dsq_layout.nr = 1;
	sk_dsq_layout.nr_classes = 1;
	sk_dsq_layout.ids[0] = PARK_DSQ;
	err = scx_bpf_create_dsq(PARK_DSQ, -1);
	if (err)
		return err;
	return sk_timer_start(&pack_timer, 5 * 1000 * 1000, pack_tick);
}

SK_OPS(void, pack_exit, struct scx_exit_info *ei)
{
	sk_exit_record(ei);
}

/*
 * probe - what BPF code sees now: sk_dsq_nr_queued of index in_idx and
 * of an index beyond the layout, scx_bpf_dsq_nr_queued of PARK_DSQ
 * itself, and sk_idle_since and sk_idle_busy_since of every CPU below 8.
 */
u32 in_idx;
s32 q_sk, q_raw, q_beyond;
u64 idle_since[8], busy_since[8];

SEC("syscall")
int probe(void *ctx)
{
	u32 i;

	q_sk = sk_dsq_nr_queued(in_idx);
	q_beyond = sk_dsq_nr_queued(7);
	q_raw = scx_bpf_dsq_nr_queued(PARK_DSQ);
	for (i = 0; i < 8; i++) {
		idle_since[i] = sk_idle_since(i);
		busy_since[i] = sk_idle_busy_since(i);
	}
	return 0;
}

SK_SCHEDULER(pack_ops,
	.select_cpu  = (void *)pack_select_cpu,
	.enqueue     = (void *)pack_enqueue,
	.dispatch    = (void *)pack_dispatch,
	.update_idle = (void *)pack_update_idle,
	.init        = (void *)pack_init,
	.exit        = (void *)pack_exit);
