// Package idle is the idle-tracking component: when each CPU last went
// idle and when it last left idle, recorded by the scheduler's
// ops.update_idle and read by BPF (sk_idle_since) and by Go
// (Tracker.Read).
//
//	kernel ──ops.update_idle(cpu, idle)──► sk_idle_update  (idle.bpf.h)
//	                                          │ sk_idle_cpus[cpu] (.bss)
//	            BPF: sk_idle_since(cpu) ◄─────┤
//	            Go:  Tracker.Read        ◄────┘ (mmapped global)
//
// Glossary:
//
//   - idle since: the CLOCK_MONOTONIC time (bpf_ktime_get_ns) at which a
//     CPU went idle; 0 while it is busy.
//   - busy since: when it last left idle; 0 while it is idle.
//   - unknown: both 0, a CPU that has not changed state since the
//     scheduler attached.
//
// A scheduler that packs work onto few cores uses it to let cores that
// have been idle for a while go (shrink the nest) and to prefer recently
// idle ones (warm caches). Implementing ops.update_idle turns the kernel's
// builtin idle tracking off unless SCX_OPS_KEEP_BUILTIN_IDLE is set; the
// Tracker's Needs asks for that flag, so scx.Open adds it and
// scx_bpf_select_cpu_dfl, scx_bpf_pick_idle_cpu and cpuset.bpf.h's
// claiming keep working.
//
// The scheduler's BPF side:
//
//	#include <scxkit/idle.bpf.h>
//
//	SK_OPS(void, x_update_idle, s32 cpu, bool idle)
//	{
//		sk_idle_update(cpu, idle);
//	}
//	SK_SCHEDULER(x_ops, ..., .update_idle = (void *)x_update_idle);
package idle
