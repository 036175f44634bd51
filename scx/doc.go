// Package scx loads, runs and watches Linux sched_ext schedulers written
// with scxkit's BPF headers (bpf/include/scxkit/scx.bpf.h), in pure Go.
//
// # Lifecycle
//
// A scheduler goes through the same steps as the objects of cilium/ebpf:
// a spec that needs no kernel, then kernel objects.
//
//	Open(Objects, Config)   parse both objects, validate the config    no kernel needed
//	   │
//	Spec.Load(opts)         probe the kernel, pick the object for its   kernel, not attached
//	   │                    kfunc generation, drop callbacks it lacks,
//	   │                    write sched_ext_ops fields and constants
//	Scheduler.Attach()      become the kernel's scheduler, or fail      tasks on sched_ext
//	   │                    with *BusyError naming the one in charge
//	Scheduler.Run(ctx)      watch until ctx ends or the kernel ejects  stats every interval
//	   │                    the scheduler; returns *ExitInfo
//	Scheduler.Close()       detach and free                            tasks back on fair
//
// Serve runs the whole sequence and reloads the scheduler when the kernel
// asks for a restart (ExitInfo.ShouldRestart, e.g. after CPU hotplug).
//
// The kernel always ends up on the fair class: Run detaches before it
// returns, Close detaches, and a loader that dies without either (even by
// SIGKILL) drops its struct_ops link with its file descriptors, which
// detaches the scheduler within milliseconds. Loaders should turn SIGINT
// and SIGTERM into context cancellation (signal.NotifyContext), as
// examples/simple does.
//
// # Components
//
// A scheduler is composed of components (Config.Components): reusable
// parts, each a BPF header its object includes and a Go type that
// implements Component. One contract, the same for every component:
//
//	             Go side                              BPF side (one object)
//	┌──────────────────────────┐
//	│ New(inputs, *Options)    │  no kernel
//	│ Needs(): flags required/ │
//	│   forbidden, callbacks,  │
//	│   owned callbacks, DSQs, │
//	│   constants, objects     │
//	└────────────┬─────────────┘
//	 Open        │ conflicts between components → *ConflictError (names both)
//	             │ object lacks what one needs  → *MissingError (lists all)
//	             │ DSQ ids allocated ───────────────► const volatile u64 <DSQBase>
//	             │ constants, flags ────────────────► .rodata, sched_ext_ops.flags
//	 Load        ▼
//	┌──────────────────────────┐  Binding.Assign   ┌──────────────────────────┐
//	│ Bind(*Binding)           │ ◄───────────────► │ maps and globals tagged  │
//	│   write what ops.init    │   `ebpf:"name"`   │ in the component's header│
//	│   reads                  │                   └──────────────────────────┘
//	└────────────┬─────────────┘
//	 Attach, Run │
//	┌────────────▼─────────────┐                   ┌──────────────────────────┐
//	│ Worker.Work(): periodic  │ ── Write ───────► │ hooks the scheduler calls│
//	│ Reporter.ReadStats(dst)  │ ◄── Read ──────── │ from its callbacks       │
//	└──────────────────────────┘                   └──────────────────────────┘
//
// Every component package follows the same pattern: New(inputs, *Options)
// builds it from its inputs without a kernel; Load binds it once per load
// (a restart after CPU hotplug binds again); its Write methods hand new
// decisions to the BPF side and its Read(dst) methods read state back into
// a buffer the caller reuses.
//
// What a component needs is declared, never left to prose: Open refuses a
// component that forbids SCX_OPS_ENQ_LAST next to one that requires it,
// two components that both own ops.dispatch, or an object that forgot a
// component's header, before anything is loaded. DSQ ids are never
// hand-picked: each component gets a range from FirstComponentDSQ up, and
// ids below it are the scheduler's own.
//
// Stats are typed: a Reporter describes counters and gauges with names
// and help text (StatDesc), and Scheduler.ReadSnapshot reads them together
// with the scheduler's own counters and gauges. Package runner serves them
// as Prometheus metrics and over the scx_stats protocol.
//
// # Kernel API generations
//
// Kernels rename sched_ext kfuncs as their signatures change. Probe reads
// the running kernel's BTF and reports its KfuncGen; a scheduler is
// compiled once per generation (Objects.Base, Objects.V2, two bpf2go lines
// over one C source) and Load takes the matching object. See
// bpf/include/scxkit/compat.bpf.h for why this cannot be a single object
// with cilium/ebpf. Everything else that varies between kernels is read at
// run time: sched_ext_ops members (Kernel.Ops), builtin constants such as
// SCX_DSQ_LOCAL or SCX_SLICE_DFL (Kernel.Enums on the Go side, CO-RE enum
// relocations on the BPF side), and the layout of struct scx_exit_info.
//
// # Exits
//
// ops.exit must call sk_exit_record, which copies the kernel's exit info
// into a global that Run reads once the scheduler is gone. ExitInfo.Kind
// names the kind ("unreg", "error_bpf", "error_stall", ...), Message carries
// what sk_error formatted, and Dump the kernel's debug dump. Run returns an
// *ExitError for every exit that was not an orderly detach.
//
// # A slow verifier
//
// Load hands the object to the kernel, whose verifier explores every path
// of every callback before any of it runs. Most schedulers load in well
// under a second; a loop the verifier cannot bound can take minutes and
// end in "The sequence of 8193 jumps is too complex" or "BPF program is
// too large". The verifier walks a plain C for loop once per iteration,
// each branch in its body can double the paths it must keep, and nested
// loops multiply. Write loops over CPUs, DSQs or tasks with bpf_for (an
// open-coded iterator, which it checks until the state at the top of the
// loop repeats, not once per iteration), keep branches out of loop bodies where the result does not
// depend on them, and index arrays through a copy of the loop variable
// behind barrier_var with an explicit bound, as the scxkit headers do.
// LoadOptions.Logger at Debug level names each program with the
// instructions the verifier went through, which shows the costly
// callback, and LoadOptions.Context bounds the wait.
//
// # Stats
//
// A scheduler declares its counters as a struct of u64 fields
// (SK_STATS_DEFINE) and bumps them per CPU with sk_stat_inc; Stats sums
// them over CPUs and names them after the fields. Levels are gauges: a
// field of that struct tagged SK_STAT_GAUGE is a level summed over CPUs
// (each CPU adds or sets its own part: sk_stat_sub, sk_stat_set), and
// the fields of a second struct, SK_GAUGES_DEFINE, are global levels any
// CPU sets (sk_gauge_set) or changes atomically (sk_gauge_add); see
// bpf/include/scxkit/stats.bpf.h. Stats.Kinds tells them apart, and the
// Snapshot, Prometheus and the scx_stats socket carry the kind.
//
// RunOptions.OnStats gets the Scheduler and its Stats every
// StatsInterval; each call's Stats keeps the previous call's values, so
// Delta, Rate and Interval give the counters' change over the interval
// with no state kept by the callback.
//
// Loading needs root (CAP_BPF and CAP_SYS_ADMIN) and a kernel built with
// CONFIG_SCHED_CLASS_EXT; on other kernels Probe and Load fail with an
// error wrapping ErrNotSupported. Package vmtest runs such code in a VM.
package scx
