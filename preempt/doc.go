// Package preempt is the userspace half of scxkit's preemption-policy
// component (bpf/include/scxkit/preempt.bpf.h): tasks fall into classes
// of work, by cgroup or by task name, and each class's Policy says whom
// its wakeups preempt, how long its slices are, and what happens when a
// slice ends. Policies change while the scheduler runs, without a reload.
//
// Years of tuning the fair scheduler's knobs mostly came down to one
// thing, how likely a task is to be preempted. Some workloads gain when
// long-running tasks are preempted by tasks handling short requests;
// others, made only of short requests, gain when they are never
// preempted; and background work should give way to everything. Under
// sched_ext preemption is the scheduler's own decision, so this package
// makes it a setting per workload.
//
// # Glossary
//
//   - Class: a named set of tasks with one Policy. Classes are ordered by
//     priority: Config.Classes[0] is the highest. Tasks that no class
//     matches are in DefaultClass.
//   - Member: a cgroup (with its descendants; the nearest listed cgroup
//     wins) or a task name. A task's name wins over its cgroup; a Config
//     under which a running task matches two classes is refused.
//   - Wakeup preemption: a waking task that finds no idle CPU kicks the CPU
//     of a running task its class may preempt (Policy.Wakeup); that CPU
//     then runs the highest class with work. Background classes are
//     preempted by every other class; no-preempt classes by none.
//   - Tick: what a task does when its slice runs out: yield to its class's
//     queue, or run on while no higher class has work (Policy.Tick).
//   - Priority is strict: while a class's tasks keep every CPU they may
//     use busy, lower classes get CPU time only through the starvation
//     bound. A task whose slice ends still counts as work of its class.
//   - Starvation bound: a class whose queue made no progress for 500ms
//     is served first for 100ms, so that strict priorities cannot stall
//     the class into the kernel's watchdog. The bound is per class, not
//     per task: within a class served only through it, one task can keep
//     losing to others (test runs saw a default-class task wait 10.6s
//     below CPU-bound run-on hogs on 6.16, and khugepaged, at nice 19,
//     12s below no-preempt hogs on 7.3; the watchdog fired both times).
//     Keep the default class, which holds kernel threads, above classes
//     of CPU-bound work.
//
// # Data flow
//
//	text --Parse--> Config --New--> Controller --Bind (at load)--> inactive slot of sk_preempt_configs,
//	                                  Write (any time after)        sk_preempt_cgroups, sk_preempt_comms
//	                                  watcher of Options.ConfigFile then sk_preempt_active flips (one write)
//	ops.runnable/enqueue/dispatch/running/stopping/tick (BPF) read the active slot
//	Controller.Read, ReadStats <-- sk_preempt_stats (per-CPU array, one slot per class name)
//
// Because a change is written beside the configuration in force and made
// current by one write, the BPF side never sees half of one: a refused or
// failed Write leaves the policy in force untouched. Tasks find their class
// again when the configuration's generation or their cgroup changes;
// running tasks do so at their next tick, which also shortens a slice the
// change made shorter (examples/interactive's TestChangeWithinTick measures
// it). A renamed task (exec, prctl(PR_SET_NAME)) finds its class again at
// its next wakeup, where BPF compares the name with the one its class was
// found for; otherwise the class is cached in task storage, and the hot
// paths do not walk cgroups or look names up.
//
// # Use
//
// A Controller is a component of the scheduler (scx.Component), used
// like the others: built from its input, the Config, then listed in the
// scheduler's Config.
//
//	cfg, err := preempt.ParseFile("/etc/classes.conf")
//	ctl, err := preempt.New(cfg, &preempt.Options{ConfigFile: "/etc/classes.conf"})
//	spec, err := scx.Open(objs, scx.Config{Components: []scx.Component{ctl}})
//	// Load binds it: the policy is in force before the scheduler attaches.
//	err = ctl.Write(other)         // any time after, also after attach
//	stats, err := ctl.Read(stats)  // per-class counters
//
// What it declares (Needs): the scheduler must not set SCX_OPS_ENQ_LAST
// (scx.Open refuses it); its object calls the hooks of preempt.bpf.h from
// ops.select_cpu, runnable, enqueue, dispatch, running, stopping, tick,
// yield, enable and init; the component alone decides where ops.enqueue
// queues a task and what ops.dispatch runs; it gets MaxClasses DSQ ids,
// the first written into sk_preempt_dsq_base. Its watcher (scx.Worker)
// looks at Options.ConfigFile every Options.WatchInterval and writes
// every change, logging what it applied or refused. Under package runner
// (examples/interactive), a restart builds the component again in
// Command.Setup, which reads the file again: the policy in force survives
// the restart.
//
// # On dsq's queues
//
// With Options.OnDSQ the Controller orders the queues of package dsq
// instead of owning its own: the scheduler lists a dsq.Layout with
// Options.Classes covering the Config's classes before the Controller,
// includes scxkit/dsq.bpf.h before scxkit/preempt.bpf.h, and calls
// sk_preempt_select_cpu_on, sk_preempt_enqueue_on(p, flags, vtime, dom) and
// sk_preempt_dispatch_on(cpu, prev) in place of the three owning hooks
// (and sk_dsq_create_all in ops.init). A task waits in dsq's DSQ of (its
// domain, its class); dispatch walks the classes in priority order, with
// starvation tracked per (domain, class), taking each through
// sk_dsq_take (own domain, then dsq's steal order); a wakeup kicks an
// idle CPU or preempts a victim only among its domain's CPUs. A filter
// that decides per dispatch which classes a CPU may run now (such as
// smt.bpf.h's) calls sk_preempt_dispatch_on_mask(cpu, prev, allowed)
// instead, with the mask it returns: only the dsq classes whose bit is
// set are taken from, boosted or kept running. In this mode Needs
// Requires "dsq", owns nothing, asks for no DSQ ids and forbids no flag:
// SCX_OPS_ENQ_LAST, which package smt requires, is harmless here (see
// Controller.Needs).
//
// ParseFile and the watcher read only a regular file of at most
// MaxFileSize (1 MiB), opened without blocking: a FIFO, a device or a
// huge file in its place is an error, and the watcher keeps the policy in
// force.
//
// # Counters
//
// ClassStats (Read) counts, per class: preemption kicks sent for its wakeups;
// its tasks cut short (stopped while runnable before their slice ran out,
// not by their own sched_yield); kicks its no-preempt tasks absorbed;
// slices extended by TickRunOn; boosts by the starvation bound;
// its run time; and the wait of its tasks from wakeup (ops.runnable) to
// running (ops.running), as a latency.Histogram with latency.Log2Bounds.
// Package latency measures the same waits from tracepoints, with or
// without sched_ext, for a comparison with the kernel's default
// scheduler.
//
// The same are the component's stats (scx.Reporter, Label "class"):
// kicks, preempted, kept, run_ons, starved, runtime_ns, wakeups, wait_ns,
// wait_p50_ns and wait_p99_ns, beside the generation of the
// configuration in force. Package runner shows them on its stats lines
// (preempt.runtime_ns{class=web}=...), as Prometheus metrics and on the
// scx_stats socket.
package preempt
