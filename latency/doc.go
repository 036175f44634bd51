// Package latency profiles scheduling latency per cgroup with BPF tracing
// programs: how long the tasks of each cgroup wait for a CPU, what ran on
// that CPU while they waited, and how long they run and sleep. It works on
// any kernel with BTF and BPF tracing (5.19 or later), whether a sched_ext
// scheduler runs or not, so it can compare schedulers, or profile one.
//
// # Glossary
//
//   - Queueing delay (a wait): the time a task is runnable but not
//     running: from its wakeup (sched_wakeup, sched_wakeup_new) or from
//     being switched out while runnable (preempted, or yielded:
//     sched_switch with prev_state TASK_RUNNING), to being switched in.
//     CgroupStats counts both kinds (Wakeups, Preemptions) in one
//     histogram.
//   - Same-cgroup, other-cgroup and idle wait: a wait split by what
//     occupied the waiting task's CPU during it: a task of the waiting
//     task's own cgroup, a task of another cgroup, or no task (the CPU was
//     idle, or about to pick the task). Each stretch of the wait between
//     two switches on that CPU is charged to the cgroup that ran; a task
//     that migrates while waiting is charged for each CPU in turn.
//   - On-CPU time: from a task's switch-in to its switch-out, at the
//     sched_switch tracepoint. It includes interrupts handled and time a
//     hypervisor stole meanwhile, which the kernel's own task clock
//     (cpu.stat usage_usec) leaves out, and the tracepoint comes a little
//     after the kernel starts the next task's clock: on a busy CPU expect
//     differences of a few percent from cpu.stat.
//   - Off-CPU time: from a task's switch-out while blocked to its wakeup.
//     A task's on-CPU, off-CPU and queueing time cover its life from the
//     first event seen, save the rare wakeup of a task that had not yet
//     left its CPU (it does not wait, and its brief sleep is not counted).
//   - Cgroup: a cgroup of the v2 hierarchy, named by its path in the
//     hierarchy ("/system.slice") and its id, the inode number of its
//     directory under the cgroup2 mount (Cgroup2Mount; /sys/fs/cgroup,
//     or /sys/fs/cgroup/unified on a system in hybrid mode). A task counts
//     in the cgroup it is directly in, not in the ancestors.
//   - Histogram: counts per bucket of user-given upper bounds (Options.Bounds,
//     Log2Bounds by default), Prometheus style: bucket i counts delays
//     above Bounds[i-1] up to Bounds[i], one more bucket the rest.
//   - Outlier: a wait of at least Options.OutlierThreshold, sent with its
//     task, cgroup and CPU through a BPF ring buffer to Profiler.Outliers,
//     as runqslower does.
//
// # Data flow
//
//	tracepoints          BPF (scxkit/latency.bpf.h)               Go
//	sched_wakeup(_new) ─► task storage: wait start, clocks ─┐
//	sched_switch ───────► per-CPU: running cgroup, since,    ├─► per-CPU hash  ─► Read: sum CPUs,
//	sched_migrate_task ─► busy clock; per-cgroup on-CPU    ─┘   cgroup id → stats    subtract Reset,
//	                      outliers ──────────────────────────► ring buffer ──────► Outliers channel
//
// The split needs no loop over waiting tasks: every CPU keeps two clocks
// that only grow, the time each profiled cgroup ran on it and the time any
// task did; a wait reads both at its start and its end. The comment at the
// top of bpf/include/scxkit/latency.bpf.h draws it. Its three hooks
// (sk_lat_wakeup, sk_lat_switch, sk_lat_migrate) are plain functions, so a
// BPF program of one's own can drive them from other events.
//
// # Cost
//
// Each event does a few map lookups and, for profiled tasks, a task-storage
// access; the switch path has no loop. The program in
// latency/internal/cmd/overhead measures a pipe ping-pong with and without
// a Profiler. Read reads one per-CPU hash entry per cgroup and reuses
// its dst; what it still allocates is cilium/ebpf's per-CPU lookup buffers.
//
// # Kernel
//
// Start needs root (CAP_BPF and CAP_PERFMON; without them its error wraps
// ErrPermission and says how to get them), kernel BTF, tp_btf programs,
// task storage in tracing programs (5.11), sched_switch's prev_state
// argument (5.18) and bpf_map_lookup_percpu_elem (5.19).
package latency
