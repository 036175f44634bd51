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
//     owner held the core for Config.Hold while the other class waited;
//     then it kicks the siblings that run the owner (a handover).
//   - Forced idle: a CPU idles although a class has work it may run there,
//     because a sibling holds the core for another class. The time is
//     charged to the class it waited behind.
//   - Violation: a task starting to run while a sibling runs another class.
//     The BPF side checks for it in ops.running; it should never happen.
//
// # Data flow
//
//	cgroup dirs --stat--> New --> Layout --WriteBPF--> sk_smt_layout, sk_smt_cgroups
//	sysfs --topology.Discover--^                             |
//	                                      ops.dispatch/running/stopping (BPF)
//	                                                         |
//	Reader.Read <-- sk_smt_stats (per-CPU hash, key = cgroup id) <--'
//
// A cgroup's id is the inode number of its cgroup v2 directory, which is
// what BPF reads as cgroup->kn->id; New stats the directories of
// Config.Isolate, and Reader maps the counters back to their paths.
//
// # Use
//
// The scheduler's BPF side calls the sk_smt_* helpers from its callbacks
// (see the header's comment and examples/pair), sets OpsFlags in its
// scx.Config, and its loader does, between Load and Attach:
//
//	l, err := smt.New(topo, smt.Config{Isolate: []string{"/a", "/b"}})
//	err = l.WriteBPF(sched.Collection())
//	r, err := smt.NewReader(sched.Collection(), l)
//
// The layout is read once: cgroups isolated later, or CPUs brought online,
// need a reload (scx.Serve's OnLoad runs again on restart).
package smt
