/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * idle.bpf.h - the idle component's BPF half: when each CPU last went idle
 * and when it last left idle, readable from BPF (sk_idle_since) and from
 * Go (package idle: Tracker.Read).
 *
 *   Go:  tr := idle.New()
 *        scx.Config{Components: []scx.Component{tr}}   // adds SCX_OPS_KEEP_BUILTIN_IDLE
 *   BPF: SK_OPS(void, x_update_idle, s32 cpu, bool idle)
 *        {
 *                sk_idle_update(cpu, idle);
 *        }
 *        ... anywhere: u64 since = sk_idle_since(cpu);   // 0: busy
 *
 * Why ops.update_idle. The kernel calls it exactly at each transition,
 * from the CPU itself (entering idle: from the idle task's pick; leaving:
 * when a task is picked on an idle CPU), so the timestamps are the
 * transitions themselves, at one call per transition. Tracking from
 * ops.running/ops.stopping would cost a call per context switch and still
 * guess idleness (a CPU with nothing to run after ops.stopping may pick a
 * task of another class). Implementing ops.update_idle turns the kernel's
 * own idle tracking off unless the scheduler sets SCX_OPS_KEEP_BUILTIN_IDLE;
 * the Go component adds the flag at Open, so scx_bpf_select_cpu_dfl,
 * scx_bpf_pick_idle_cpu and cpuset.bpf.h's claiming keep working.
 *
 * Timestamps are bpf_ktime_get_ns(), CLOCK_MONOTONIC, the clock Go reads
 * with unix.ClockGettime(unix.CLOCK_MONOTONIC). Both are 0 until the CPU's
 * first transition after the scheduler attached: a CPU that stayed idle
 * (or busy) since attach reads "unknown" (both 0). Each field is one
 * 64-bit store, written only by the CPU it describes; a reader racing a
 * transition may see both fields 0 for an instant.
 *
 * Prerequisites: vmlinux.h, <scxkit/scx.bpf.h>
 */
#ifndef __SCXKIT_IDLE_BPF_H
#define __SCXKIT_IDLE_BPF_H

#include "topology.h"

/* The CPU ids tracked, as many as the topology component describes. */
#define SK_IDLE_MAX_CPUS SK_TOPO_MAX_CPUS

/* struct sk_idle_cpu - one CPU's state; 16 bytes, so Go reads them in one copy. */
struct sk_idle_cpu {
	u64 idle_since; /* ns when it went idle; 0 while busy or unknown */
	u64 busy_since; /* ns when it left idle; 0 while idle or unknown */
};

struct sk_idle_cpu sk_idle_cpus[SK_IDLE_MAX_CPUS] SEC(".bss");

/*
 * ___sk_idle_cpu - the entry of @cpu, or NULL out of range; bounded behind
 * barrier_var where it is used.
 */
static __always_inline struct sk_idle_cpu *___sk_idle_cpu(s32 cpu)
{
	u32 c = cpu;

	barrier_var(c);
	if (cpu < 0 || c >= SK_IDLE_MAX_CPUS)
		return NULL;
	return &sk_idle_cpus[c];
}

/*
 * sk_idle_update - record that @cpu went idle (@idle true) or left idle,
 * now. Call it from ops.update_idle with the callback's arguments.
 * The field being cleared is cleared first, so no reader sees both set.
 */
static __always_inline void sk_idle_update(s32 cpu, bool idle)
{
	struct sk_idle_cpu *c = ___sk_idle_cpu(cpu);
	u64 now = bpf_ktime_get_ns();

	if (!c)
		return;
	if (idle) {
		SK_WRITE_ONCE(c->busy_since, 0);
		SK_WRITE_ONCE(c->idle_since, now);
	} else {
		SK_WRITE_ONCE(c->idle_since, 0);
		SK_WRITE_ONCE(c->busy_since, now);
	}
}

/*
 * sk_idle_since - when @cpu went idle (bpf_ktime_get_ns), or 0 if it is
 * busy, out of range, or has not changed state since attach.
 */
static __always_inline u64 sk_idle_since(s32 cpu)
{
	struct sk_idle_cpu *c = ___sk_idle_cpu(cpu);

	return c ? SK_READ_ONCE(c->idle_since) : 0;
}

/* sk_idle_busy_since - when @cpu left idle, or 0 if it is idle or unknown. */
static __always_inline u64 sk_idle_busy_since(s32 cpu)
{
	struct sk_idle_cpu *c = ___sk_idle_cpu(cpu);

	return c ? SK_READ_ONCE(c->busy_since) : 0;
}

/*
 * sk_idle_for - how long @cpu has been idle at @now (ns, from
 * bpf_ktime_get_ns), 0 if busy or unknown. Pass one @now to compare CPUs.
 */
static __always_inline u64 sk_idle_for(s32 cpu, u64 now)
{
	u64 since = sk_idle_since(cpu);

	return since && now > since ? now - since : 0;
}

#endif /* __SCXKIT_IDLE_BPF_H */
