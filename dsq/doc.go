// Package dsq lays out user dispatch queues (DSQs) over a machine's
// topology and hands the layout to the BPF half, bpf/include/scxkit/dsq.bpf.h.
//
// A DSQ is a kernel queue of runnable tasks that a sched_ext scheduler
// fills in ops.enqueue and drains in ops.dispatch. Builtin DSQs (the
// global one, each CPU's local one) have ids with bit 63 set
// (SCX_DSQ_FLAG_BUILTIN, read from the kernel's BTF by Layout.Check); user
// DSQs get ids from Options.Base upwards, DefaultBase by default.
//
// A Layout has one DSQ per LLC (the usual scheduling domain), per CPU, per
// NUMA node, one for the machine, or one per given CPU mask. Each DSQ knows
// the CPUs it serves first and the DSQs its CPUs steal from when it runs
// dry, nearest first: same NUMA node, then by node distance.
//
//	topology.Discover ──► dsq.New ──► Layout.WriteBPF ──► sk_dsq_layout (.bss)
//	                                                        │ ops.init: sk_dsq_create_all
//	                                                        │ ops.enqueue: sk_dsq_enqueue_vtime/_fifo
//	                                                        │ ops.dispatch: sk_dsq_dispatch (own, then steal)
//	Layout.ReadCounters, Layout.Depths ◄── sk_dsq_stats, sk_dsq_depths ◄┘
//
// The BPF side orders a DSQ by weighted virtual time when asked
// (sk_dsq_enqueue_vtime with sk_dsq_started and sk_dsq_charge): a task's
// virtual time advances by the time it ran times 100 over its weight, and
// a task that slept is credited with at most one slice of lag.
package dsq
