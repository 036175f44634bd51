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
// # On dsq's queues
//
// With Options.OnDSQ, smt owns nothing: it filters the queues of the dsq
// component, so that it composes with dsq's domains, lb's balancing and
// preempt's classes. Its classes are then groups of dsq classes
// (Options.Groups; the dsq classes of no group form the system class):
// the scheduler, or preempt, puts each task in a dsq class, and smt keeps
// the groups off each other's siblings. In ops.dispatch it claims the CPU
// for one group and returns that group's dsq classes as a mask, and the
// orderer takes a task only from those:
//
//	layout, _ := dsq.New(topo, &dsq.Options{Kind: dsq.PerLLC, Classes: 3})
//	ctl, _ := preempt.New(cfg, &preempt.Options{OnDSQ: true}) // class 2: a tenant's cgroup
//	isolation, _ := smt.New(topo, &smt.Options{OnDSQ: true, Groups: [][]int{{2}}})
//	cfg := scx.Config{Components: []scx.Component{topo, layout, ctl, isolation}}
//
// and in BPF, with smt.bpf.h included after dsq.bpf.h (cls is the task's
// dsq class):
//
//	ops.enqueue     -> if (!sk_smt_enqueue_on(p, enq_flags, cls, slice)) queue it in dsq's (domain, cls)
//	ops.dispatch    -> allowed = sk_smt_dispatch_on(cpu, prev, prev_cls);
//	                   if (allowed) sk_smt_dispatched_on(cpu, sk_preempt_dispatch_on_mask(cpu, prev, allowed));
//	ops.running     -> sk_smt_running_on(p, cls)
//	ops.stopping, ops.update_idle, ops.disable: as above
//
// ops.select_cpu picks a CPU but must not insert into a local DSQ. Needs
// then Requires "dsq"; Bind checks the groups against dsq's classes.
// internal/combined's scheduler composes every component this way.
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
// path as given, "system", or a group's dsq classes as "dsq2") runtime_ns, forced_idle_ns,
// forced_idle_events, handovers, preempted and class_violations, and the
// total violations, all counters; Layout.Read gives the same per class as
// Counters.
//
// The layout is read once, by New: cgroups isolated later, or CPUs
// brought online, need a new Layout and a reload (runner.Command.Setup
// runs again before every restart).
package smt
