// Package scxkit is an SDK for writing Linux sched_ext schedulers in Go
// out of reusable components.
//
// sched_ext lets a BPF program implement the kernel's CPU scheduling policy
// (struct sched_ext_ops: select_cpu, enqueue, dispatch, running, stopping,
// ...). Every scheduler needs the same parts: topology, dispatch-queue
// layouts, duty-cycle tracking, load balancing, energy awareness. Each part
// has a BPF half (headers under bpf/include/scxkit/) and a Go half (a
// package here) that talk through BPF maps, so a scheduler author composes
// components instead of rewriting them.
//
// # Glossary
//
//	DSQ         dispatch queue: where a scheduler queues tasks for CPUs to run
//	domain      a group of CPUs (usually one LLC) that shares a DSQ and a load figure
//	duty cycle  the fraction of time a task is runnable, as a decaying average
//	load        weight x duty cycle, what a load balancer evens out
//	kfunc       a kernel function a BPF program may call (scx_bpf_*)
//
// # Packages
//
//	scx        probe the kernel; open, configure, load, attach and run a scheduler; exit info; stats
//	topology   sysfs discovery (nodes, LLCs, cores, CPUs, SMT, capacity), cpumasks
//	dsq        DSQ id space and layouts built from topology
//	lb         duty-cycle reading, infeasible weights, load balancer
//	energy     energy model, placement cost, frequency knobs
//	smt        SMT isolation of cgroups with forced-idle accounting
//	preempt    per-workload preemption policy, changed at run time
//	behavior   latency-sensitive tasks found by their run bursts; wakeup preemption for them
//	cpuset     CPU sets shared with BPF (cpuset.bpf.h: atomic updates, idle claiming within a set)
//	idle       per-CPU idle-since and busy-since times from ops.update_idle
//	runner     the command line every scheduler shares: flags, signals, stats, restarts
//	bench      standard benchmark tools under the default scheduler and yours, as ratios
//	latency    per-cgroup scheduling latency distributions
//	vmtest     run a scheduler's Go tests in qemu on real sched_ext kernels
//	scxtest    what a scheduler's tests need: wait until attached, busy CPU time, hogs
//	workload   bounded, self-checking loads: spinners, ping-pong, periodic requests
//
// cmd/scxkit is the command line: scxkit new writes a scheduler module of
// your own that builds and passes its VM test, scxkit gen compiles its BPF
// source, scxkit vm runs it in a VM. examples/ holds runnable schedulers
// built only from the components. bpf/include/scxkit/timer.bpf.h has a
// periodic BPF timer; headers without a Go half are listed in the README.
//
// # Where data flows
//
//	sysfs ──► Go (topology, energy) ──► BPF maps ──► BPF scheduler ──► kernel
//	                 ▲                                    │
//	                 └──── stats, duty cycles, exit info ◄┘
package scxkit
