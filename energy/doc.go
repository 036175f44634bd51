// Package energy models the energy CPUs spend, for energy-aware sched_ext
// schedulers: it reads the kernel's Energy Model (EM), or builds one from
// device-tree OPP tables or as an estimate, predicts the performance state
// a domain runs at, computes the energy of a placement as the kernel's
// Energy Aware Scheduling (EAS) does, and tabulates the cheapest set of
// CPUs for each level of demand.
//
// ReadDebugfs reads the running kernel's model; FromOPP computes the same
// model from device-tree numbers; Estimate guesses one from cpufreq and
// package topology when neither exists (x86, VMs). Model.CheapestSets
// builds the table a scheduler consults to decide which CPUs to keep warm,
// and Model.PerCPU gives each CPU's (performance, cost) table.
//
// # The component
//
// Planner is the package's sched_ext component (scx.Component, named
// "energy"), the Go half of scxkit/energy.bpf.h. It is built from a model
// like the other components are from their inputs, and listed in the
// scheduler's Config:
//
//	m, _ := energy.ReadDebugfs(nil)
//	en, _ := energy.New(m, &energy.PlannerOptions{
//		Interval: 250 * time.Millisecond,
//		Demand:   measure, // capacity units, e.g. runnable tasks × 1024
//	})
//	spec, _ := scx.Open(objs, scx.Config{Components: []scx.Component{en}})
//
// New builds the model's per-CPU tables and its Table of cheapest sets
// (PlannerOptions.Table), without a kernel. Bind, at every load, writes
// the tables to sk_energy_model. Then every Interval the Planner's
// periodic work (scx.Worker) measures demand, looks up the cheapest level
// that carries it with PlannerOptions.Headroom (at once when demand grows,
// after ShrinkAfter intervals when it falls) and writes it to
// sk_energy_plan (WriteDemand, or Write for a level of the caller's
// choice): the level's CPUs warm, each at the performance target of its
// share's state, the rest at their lowest state. Read reads the plan back
// from the BPF side.
//
// On the BPF side the scheduler calls, from
//
//	ops.select_cpu        sk_energy_pick_idle_cpu: the warm idle CPU that
//	                      runs the task at the least energy (one with the
//	                      capacity for it if any); the Planner owns this
//	                      decision
//	ops.dispatch          sk_energy_is_warm: cold CPUs stay idle
//	ops.running or .tick  sk_energy_apply_perf: the plan's target to
//	                      scx_bpf_cpuperf_set
//
// (Needs declares select_cpu and dispatch, and forbids
// SCX_OPS_BUILTIN_IDLE_PER_NODE, which takes the builtin idle mask away.)
// Its stats (scx.Reporter) are the demand, the level and warm CPUs of the
// plan in force, the plans written, and per performance domain (label
// "pd", the domain's index in Model.Domains) its warm CPUs, state,
// performance target and frequency. examples/energy puts it together.
//
// # The knobs
//
// Knobs sets cpufreq knobs (governor, energy-performance preference,
// frequency limits) for a scheduler's run and restores every one it
// changed, also after errors; a machine without a knob gives an error
// wrapping ErrNoKnob. Knobs is not a component: it changes the machine,
// not the scheduler, before the scheduler is loaded and after it is gone
// (with package runner: in Command.Setup, once Env.Kernel found the
// kernel able to run the scheduler, restored by Env.OnExit).
//
// Errors about input the package cannot use (a malformed or inconsistent
// energy model, a utilisation, demand, option, plan or knob value out of
// range) wrap ErrInvalid; a model beyond the BPF layout's or CheapestSets'
// limits gives one wrapping ErrTooBig. Planner methods that reach the BPF
// side before Bind give errors wrapping scx.ErrNotBound.
//
// # Glossary
//
//   - Performance domain: CPUs whose frequency changes together, usually
//     a cpufreq policy (an Arm cluster, or one CPU on Intel hybrid
//     machines). They share one table of performance states.
//   - Performance state (perf state, OPP): a frequency the domain can
//     run at, with the power one CPU draws while busy at it.
//   - Capacity: a CPU's performance at its highest frequency, in units
//     where the fastest CPU is 1024 (SCHED_CAPACITY_SCALE).
//   - Performance: a state's capacity, capacity × f / fmax.
//   - Utilisation: the capacity a CPU's work needs, in the same units; a
//     CPU at utilisation u running a state of performance p is busy u / p
//     of the time.
//   - Cost: the kernel's per-state coefficient, 10 × power / performance,
//     the energy of one unit of utilisation at that state.
//   - Inefficient state: one that a higher-frequency state beats on cost;
//     the kernel skips it.
//   - Class: performance domains with the same number of CPUs and
//     identical tables, interchangeable for placement (Model.Classes).
//
// # Formulas
//
// The kernel's, in integer arithmetic (kernel/power/energy_model.c,
// include/linux/energy_model.h, Linux 6.9 and later):
//
//	performance(s)  = capacity × frequency(s) / frequency(highest state)
//	cost(s)         = 10 × power(s) / performance(s)
//	inefficient(s)  = cost(s) ≥ cost(t) for some state t above s
//	state(maxUtil)  = the lowest state that is not inefficient with
//	                  performance ≥ maxUtil, else the highest
//	energy(domain)  = cost(state(max util of its CPUs)) × Σ util of its CPUs
//	energy(model)   = Σ energy(domain)
//
// Energy is thus ten times the average power of the busy CPUs over the
// period, in the power unit; idle power is not modelled, as in the kernel.
// This package computes energies in float64 from float64 utilisations.
//
// FromOPP computes power as drivers/opp/of.c does for a CPU node with
// dynamic-power-coefficient C (µW/MHz/V²), in integers:
//
//	power(µW) = C × mV × mV × MHz / 1000000,   mV = µV / 1000, MHz = Hz / 1000000
//
// and capacity as drivers/base/arch_topology.c does: capacity-dmips-mhz ×
// the domain's highest frequency, scaled so that the largest is 1024.
//
// # What ReadDebugfs reads
//
// Paths are relative to the root (Options.Root, Options.FS or /). Debugfs
// is where proc/mounts mounts the file system of type debugfs
// (sys/kernel/debug when proc/mounts is missing). Under
// <debugfs>/energy_model/, each directory named after a device (cpu0,
// cpu4, ...; the policy's first CPU) is a performance domain if it has a
// cpus file (directories without one are GPUs and other devices, skipped):
//
//   - cpus: the domain's CPUs, a cpulist such as 0-3.
//   - flags (Linux 5.19 on): the domain flags in hex; bit 0 means power
//     is in µW, bit 2 an artificial model whose costs do not come from
//     power. Without bit 0, PerfDomain.Microwatts is false.
//   - units (Linux 5.11 to 5.18): milliWatts (scaled to µW) or
//     bogoWatts (an abstract scale). With neither file (5.10 and
//     older), power is taken as mW.
//   - ps:<kHz>/ for each state: frequency (kHz, equal to the directory's
//     number), power, cost, and from Linux 6.9 performance; inefficient
//     (0 or 1) from Linux 5.16.
//
// Kernels before 6.9 have no performance files and used another cost
// (fmax × power / frequency, divided by capacity when used). ReadDebugfs
// then reads the capacity from sys/devices/system/cpu/cpuN/cpu_capacity
// of the domain's first CPU and recomputes performance, cost and the
// inefficient flags as Linux 6.9 does, noting it in Model.Assumed, so that
// models from all kernels have the same meaning.
//
// # Units
//
// Frequencies are in kHz, power in µW (or the abstract unit of a domain
// whose Microwatts is false: Estimate's relative power, bogoWatts),
// performance, capacity and utilisation in capacity units (1024 = the
// fastest CPU at full speed), cost in tenths of the power unit per
// capacity unit, energy in tenths of the power unit.
//
// # Limits
//
// The model ignores idle power, cluster-level power, thermal capping
// (the kernel's allowed_cpu_cap) and the runtime performance limits of
// em_update_performance_limits, none of which debugfs shows. The kernel
// skips inefficient states only when the domain's flags have
// EM_PERF_DOMAIN_SKIP_INEFFICIENCIES (set when cpufreq knows the
// inefficient frequencies, as with cpufreq-dt); this package always does.
package energy
