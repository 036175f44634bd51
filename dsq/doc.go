// Package dsq lays out user dispatch queues (DSQs) over a machine's
// topology, as the scheduler component "dsq", the Go half of
// bpf/include/scxkit/dsq.bpf.h.
//
// A DSQ is a kernel queue of runnable tasks that a sched_ext scheduler
// fills in ops.enqueue and drains in ops.dispatch. A Layout has one DSQ per
// LLC (the usual scheduling domain), per CPU, per NUMA node, one for the
// machine, or one per given CPU mask. Each DSQ knows the CPUs it serves
// first and the DSQs its CPUs steal from when it runs dry, nearest first:
// same NUMA node, then by node distance.
//
// # The component
//
// A *Layout is an scx.Component, used like every other component: built
// without a kernel, listed in the scheduler's Config, bound at every load.
//
//	topo, err := topology.Discover(nil)
//	layout, err := dsq.New(topo, &dsq.Options{Kind: dsq.PerLLC, StealMinQueued: 4})
//	cfg := scx.Config{Name: "mysched", Components: []scx.Component{topo, layout}}
//
// Its DSQ ids are never hand-picked: scx.Open allocates one per DSQ (from
// scx.FirstComponentDSQ up, Needs.DSQs), and Bind writes them, with the
// layout, into sk_dsq_layout and checks them against the kernel's builtin
// DSQ ids (bit 63, SCX_DSQ_FLAG_BUILTIN, read from the kernel's BTF).
//
//	topology.Discover ──► dsq.New ──► scx.Open: ids ──► Bind ──► sk_dsq_layout (.bss)
//	                                                             │ ops.init:     sk_dsq_create_all()
//	                                                             │ ops.enqueue:  sk_dsq_enqueue_vtime(p, sk_dsq_of_cpu(cpu), slice, flags)
//	                                                             │               (or sk_dsq_enqueue_fifo)
//	                                                             │ ops.dispatch: sk_dsq_dispatch(cpu)  own DSQ, then steal
//	                                                             │ ops.running:  sk_dsq_started(p, idx)   (vtime only)
//	                                                             │ ops.stopping: sk_dsq_charge(p, used)   (vtime only)
//	ReadCounters, ReadDepths ◄── sk_dsq_stats, sk_dsq_depths ◄───┘
//
// Needs declares all of this: the DSQ ids, ops.init, ops.running and
// ops.stopping (unless Options.FIFO), and ops.enqueue and ops.dispatch as
// callbacks it owns, since it alone decides where a task waits and what a
// CPU runs next; scx.Open refuses another component that owns either.
//
// # Classes
//
// With Options.Classes = n > 1, every domain has n DSQs, one per class,
// with ids [domain][class] from the allocated range (Needs.DSQs = domains
// × classes; domain d's class c is DSQs[d].ID + c). The scheduler, or an
// orderer such as package preempt with Options.OnDSQ, chooses the class
// and the order in which a CPU looks at them:
//
//	ops.enqueue:  sk_dsq_insert_class(p, dom, cls, slice, vtime, flags)
//	ops.dispatch: for each class in its order: sk_dsq_take(cpu, cls)  own domain, then steal
//	anywhere:     sk_dsq_queued(dom, cls)
//
// The single-class calls above are class 0 of the same layout.
// ReadCounters and ReadDepths sum each domain's classes; ReadClassCounters
// reads them per (domain, class).
//
// The BPF side orders a DSQ by weighted virtual time when asked
// (sk_dsq_enqueue_vtime with sk_dsq_started and sk_dsq_charge, see
// vtime.bpf.h): a task's virtual time advances by the time it ran times
// 100 over its weight, and a task that slept is credited with at most one
// slice of lag behind its DSQ's clock.
//
// # Stats
//
// A Layout is an scx.Reporter. Per DSQ, labelled "dsq" with its index:
//
//	inserted    counter  tasks queued on the DSQ
//	dispatched  counter  tasks its own CPUs took
//	stolen      counter  tasks other DSQs' CPUs took
//	depth       gauge    tasks waiting in it now
//
// Tests that load dsq.bpf.h outside a scheduler bind the layout with
// scx.NewBinding("dsq", coll, kernel, range).
package dsq
