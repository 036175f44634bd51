// Package smt is the userspace half of scxkit's SMT isolation component
// (bpf/include/scxkit/smt.bpf.h): hardware threads of one core only run
// tasks of the same cgroup at the same time, and the time a thread spends
// idle because of that is accounted per cgroup.
//
// # Glossary
//
//   - Sibling: another hardware thread (logical CPU) of the same core.
//   - Class: the tasks that may share a core. Each isolated cgroup, with
//     its descendants, is a class; every other task (kernel threads
//     included) belongs to the system class, which is isolated like the
//     others, as kernel core scheduling treats untagged tasks.
//   - Owner: the class a core runs now. A sibling takes the core over for
//     another class when the owner has nothing left for it, or when the
//     owner held the core for Options.Hold while the other class waited;
//     then it kicks the siblings that run the owner (a handover).
//   - Forced idle: a CPU idles although a class has work it may run there,
//     because a sibling holds the core for another class. The time is
//     charged to the class it waited behind.
//   - Violation: a task starting to run while a sibling runs another class.
//     The BPF side checks for it in ops.running; it should never happen.
//
// # Use
//
// smt is a component (scx.Component) named "smt", used like the others:
//
//	topo, _ := topology.Discover(nil)
//	isolation, err := smt.New(topo, &smt.Options{Isolate: []string{"/a", "/b"}})
//	cfg := scx.Config{Components: []scx.Component{isolation}}
//
// Layout.Needs declares what the scheduler must provide, and scx.Open
// checks it: the ops flags SCX_OPS_ENQ_LAST, SCX_OPS_KEEP_BUILTIN_IDLE,
// SCX_OPS_ENQ_EXITING and SCX_OPS_ENQ_MIGRATION_DISABLED (Open adds them
// to the scheduler's, and refuses a component that forbids one); one DSQ
// per class, whose first id Load writes into sk_smt_dsq_base; and an
// object that includes scxkit/smt.bpf.h and calls its hooks:
//
//	ops.init        -> sk_smt_init()
//	ops.select_cpu  -> return sk_smt_select_cpu(p, prev_cpu, wake_flags);
//	ops.enqueue     -> sk_smt_enqueue(p, enq_flags, slice, vtime)   smt decides alone
//	ops.dispatch    -> sk_smt_dispatch(cpu, prev)                   smt decides alone
//	ops.running     -> sk_smt_running(p)
//	ops.stopping    -> sk_smt_stopping(p, runnable)
//	ops.update_idle -> sk_smt_update_idle(cpu, idle)
//	ops.disable     -> sk_smt_disable(p)
//
// smt owns ops.enqueue and ops.dispatch: no other component may decide
// them too. examples/pair is a complete scheduler built this way.
//
// # Data flow
//
//	cgroup dirs --stat--> New --> Layout --Bind--> sk_smt_layout, sk_smt_cgroups
//	sysfs --topology.Discover--^                       | ops.init creates the DSQs
//	                                      ops.dispatch/running/stopping (BPF)
//	                                                   |
//	Read, ReadStats <-- sk_smt_stats (per-CPU hash, key = cgroup id) <--'
//
// A cgroup's id is the inode number of its cgroup v2 directory, which is
// what BPF reads as cgroup->kn->id; New stats the directories of
// Options.Isolate, and Read maps the counters back to their paths.
//
// # Stats
//
// As an scx.Reporter, smt reports per class (label "class": the cgroup
// path as given, or "system") runtime_ns, forced_idle_ns,
// forced_idle_events, handovers, preempted and class_violations, and the
// total violations, all counters; Layout.Read gives the same per class as
// Counters.
//
// The layout is read once, by New: cgroups isolated later, or CPUs
// brought online, need a new Layout and a reload (runner.Command.Setup
// runs again before every restart).
package smt
