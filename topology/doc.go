// Package topology discovers a machine's CPU topology from sysfs, for
// schedulers that place tasks by cache, NUMA node and core performance, and
// provides Cpumask, a set of CPU ids in the kernel's formats.
//
// Discover(nil) reads the running system; Options point it at a sysfs
// snapshot or an fs.FS instead. Topology.String prints the result as a
// tree.
//
// # The topology component
//
// A *Topology is the scheduler component "topology" (scx.Component): a
// scheduler whose BPF object includes scxkit/topology.bpf.h lists it in
// its Config, like every other component, and loading the scheduler binds
// it: Bind writes the machine's layout into the sk_topology global before
// the scheduler is attached.
//
//	topo, err := topology.Discover(nil)
//	...
//	cfg := scx.Config{Name: "mysched", Components: []scx.Component{topo, layout}}
//
// The BPF side may call its helpers from any callback; none is required
// and none is owned, so it combines with every other component:
//
//	ops.select_cpu  sk_topo_pick_idle_cpu(p, prev_cpu, &level)  an idle CPU, nearest first
//	anywhere        sk_topo_cpu(cpu), sk_topo_same_llc(a, b),    what a CPU is part of
//	                sk_topo_same_core, sk_topo_same_node, ...
//
// Until Bind ran, every helper answers "unknown" (NULL, false, -1). A
// Topology describes the CPUs online when it was discovered: after CPU
// hotplug, discover again (package runner's Command.Setup runs again
// before a restart). It reports no stats. Bind fails with an error
// wrapping ErrTooBig for a machine beyond the BPF layout (MaxBPFCPUs,
// MaxBPFLLCs, MaxBPFNodes). Tests that load topology.bpf.h without a
// scheduler bind it with scx.NewBinding.
//
// # Glossary
//
//   - CPU: a logical CPU, one hardware thread; what the kernel numbers
//     (cpuN) and schedules on.
//   - SMT sibling: a CPU sharing a core with another (Intel
//     Hyper-Threading, AMD SMT); siblings compete for the core's execution
//     units.
//   - Core: a physical core, holding one CPU per hardware thread.
//   - Cluster: cores sharing an L2 cache, as the E-cores of an Intel
//     hybrid CPU in fours or Arm cores in a cluster; a core with a private
//     L2 is a cluster of one.
//   - LLC: a last-level cache, the highest level of data cache, shared by
//     the cores of a CCX on AMD, of a socket on most Intel servers, of all
//     cores on client CPUs. Tasks that move within an LLC keep their cache
//     warm; SplitLLCs cuts large ones into virtual LLCs.
//   - Node: a NUMA node, CPUs with the same distance to memory.
//   - Package: a physical package or socket.
//   - Capacity: a CPU's relative performance, 1024 for the fastest CPU,
//     lower for efficiency cores.
//   - Dense and kernel ids: every object has a dense id, its index in its
//     Topology slice, counted from 0 in ascending order of the object's
//     lowest CPU (kernel id). Objects refer to each other by dense id.
//     KernelID fields keep the kernel's numbers (physical_package_id,
//     core_id, cache id, node number), which may repeat across packages or
//     leave gaps; CPU.KernelID is the number affinity masks and BPF
//     helpers use. On the dual-socket Xeon in testdata, CPU 0 is on kernel
//     package 1, so dense package 0 has KernelID 1.
//
// # What Discover reads
//
// Paths are relative to the root (Options.Root, Options.FS or /):
//
//   - sys/devices/system/cpu/{possible,present,online}: the CPU masks.
//   - For each online CPU, sys/devices/system/cpu/cpuN/:
//     topology/{physical_package_id,core_id}, topology/core_cpus_list (or
//     thread_siblings_list) for SMT siblings, topology/cluster_cpus_list;
//     cache/indexM/{level,type,size,id,shared_cpu_list} for the L1 data,
//     L2 and last-level caches; the capacity files (see below);
//     cpufreq/{cpuinfo_min_freq,cpuinfo_max_freq} (else
//     scaling_min_freq, scaling_max_freq) and cpufreq/base_frequency (else
//     acpi_cppc/nominal_freq) for frequencies.
//   - sys/devices/system/node/nodeN/{cpulist,distance} and
//     sys/devices/system/node/online, which orders the distance columns.
//
// CPUs sharing a core_cpus_list form a core; cores sharing an L2
// (shared_cpu_list of the level 2 cache, else cluster_cpus_list) form a
// cluster; clusters sharing the LLC (the data or unified cache of the
// highest level, L3 or else L2) form an LLC. Cores, clusters and LLCs never
// span packages: a sharing list naming CPUs of another package has those
// CPUs left out, with a note.
//
// # Capacity and core types
//
// Capacities come from one source for all CPUs: the first of these that
// every online CPU has, with a value above 0, scaled so that the highest is
// 1024:
//
//  1. cpuN/cpu_capacity ("cpu_capacity"): the scheduler's own capacity, on
//     Arm and RISC-V (and x86 kernels that have it);
//  2. cpuN/acpi_cppc/highest_perf ("acpi_cppc");
//  3. cpuN/cpufreq/amd_pstate_prefcore_ranking ("amd_pstate_prefcore"):
//     amd-pstate's per-core ranking, which the driver splits off
//     highest_perf, as amd_pstate_highest_perf is the same for every core
//     on machines with preferred cores;
//  4. cpuN/cpufreq/cpuinfo_max_freq ("cpufreq");
//  5. none: every CPU gets 1024 ("uniform").
//
// Core.Type groups cores into capacity levels: sorted by capacity, a core
// below 7/8 of the next higher capacity starts a lower level, so the few
// percent that preferred-core rankings or favoured-core frequencies vary by
// stay in one level. With one level every core is big; with two, the top
// level is big and the other little. With three or more, the top level is
// turbo if it has fewer cores than all lower levels together, the second
// big and the rest little; otherwise the top is big and the rest little.
//
// When all cores are in one level (capacities are uniform, often for want
// of cpufreq, as in VMs) but the cores with SMT each have a private L2
// while the cores without SMT share L2s (an Intel hybrid CPU: P-cores and
// E-core clusters), the cores without SMT are typed little, with a note;
// their capacity is left as it was.
//
// # Missing files
//
// Sysfs varies with kernel version, architecture, configuration and
// virtualization, and snapshots are often partial, so missing files never
// make Discover fail. Each fallback is recorded in Topology.Assumed as one
// note, naming the file (with cpuN standing for every CPU) and the CPUs it
// applies to:
//
//   - cpu/possible or present missing: the cpuN directories. cpu/online
//     missing: CPUs whose cpuN/online is 1, or that have no online file (cpu0
//     usually cannot go offline) but a topology directory.
//   - cpuN or cpuN/topology missing for an online CPU: a core of its own
//     on package 0. physical_package_id missing: package 0. core_id
//     missing: the CPU id. Both sibling lists missing: CPUs with the same
//     package and core_id form a core.
//   - cache missing: one LLC per package (LLC.Level 0). A cache without
//     id: the lowest CPU of its shared_cpu_list. A cache without
//     shared_cpu_list: private to its CPU.
//   - No nodeN directories (a kernel without NUMA): one node 0 with every
//     CPU and unknown distances. CPUs in no node's cpulist: node 0.
//     node/online missing: the nodeN directories order the distances.
//   - No complete capacity source: uniform capacity. A better source that
//     only some CPUs have is named too.
//   - A file that exists but cannot be read (some firmware attributes
//     answer EIO): treated as missing.
//
// Frequencies and cache sizes that are missing are 0, without a note.
// Content the kernel would not write (a malformed number or cpulist, a CPU
// in two nodes, a distance row of the wrong length, cpu/online not within
// present or present not within possible, a CPU id of 8192 or more) is an
// error that names the file and quotes the content, as is a FIFO, socket
// or device where sysfs has a file.
package topology
