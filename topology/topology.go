package topology

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// CoreType is the kind of a core on a machine whose cores differ in
// performance (big.LITTLE, Intel hybrid, AMD Zen c-cores). Discover sets it
// from the cores' capacities; see Core.Type.
type CoreType int

// The core types.
const (
	// CoreUnknown is the zero value; Discover never assigns it.
	CoreUnknown CoreType = iota
	// CoreBig is a performance core, and every core of a machine whose
	// cores are all alike.
	CoreBig
	// CoreLittle is an efficiency core: a core of lower capacity than the
	// big ones.
	CoreLittle
	// CoreTurbo is one of a few cores above the big ones (a "prime" core
	// of an Arm phone SoC), found only on machines with three or more
	// capacity levels.
	CoreTurbo
)

// String returns "unknown", "big", "little" or "turbo", and "CoreType(N)"
// for other values.
func (t CoreType) String() string {
	switch t {
	case CoreUnknown:
		return "unknown"
	case CoreBig:
		return "big"
	case CoreLittle:
		return "little"
	case CoreTurbo:
		return "turbo"
	}
	return "CoreType(" + strconv.Itoa(int(t)) + ")"
}

// MarshalText returns the String form, so that JSON shows a core type as
// "big" rather than a number.
func (t CoreType) MarshalText() ([]byte, error) {
	return []byte(t.String()), nil
}

// UnmarshalText parses the String form.
func (t *CoreType) UnmarshalText(b []byte) error {
	for c := CoreUnknown; c <= CoreTurbo; c++ {
		if string(b) == c.String() {
			*t = c
			return nil
		}
	}
	return fmt.Errorf("topology: core type %s: %w: want unknown, big, little or turbo", quoteShort(string(b)), ErrInvalid)
}

// Topology is the machine's CPU topology: which CPUs share a core, an L2
// cluster, a last-level cache, a NUMA node and a package, and how fast each
// CPU is. Discover reads it from sysfs.
//
// Every object has a dense id, its index in the slice of its kind: CPUs[i].ID
// is i, LLCs[j].ID is j, and the fields that link objects (CPU.LLC,
// Node.LLCs, ...) hold dense ids. Dense ids count from 0 in ascending order
// of each object's lowest CPU (kernel id), so they are deterministic for a
// given machine and CPU set. KernelID fields keep the ids the kernel uses
// (physical_package_id, core_id, cache id, node number), which may repeat
// across packages or leave gaps.
//
// Only online CPUs take part: CPUs, and the masks of every object, hold
// online CPUs only, so Online equals the union of CPUs.
type Topology struct {
	// Possible, Present and Online are the kernel's CPU masks
	// (devices/system/cpu/possible, present, online).
	Possible, Present, Online Cpumask
	// Assumed lists, in a fixed order, what Discover derived because a
	// file was missing or inconsistent, one human-readable note each, for
	// example "sys/devices/system/cpu/possible missing: derived 0-3 from
	// cpuN directories". It is empty when sysfs had everything.
	Assumed []string
	// Packages are the physical packages (sockets).
	Packages []*Package
	// Nodes are the NUMA nodes that have online CPUs.
	Nodes []*Node
	// LLCs are the last-level caches, and the virtual LLCs SplitLLCs made.
	LLCs []*LLC
	// Clusters are the L2 clusters: groups of cores sharing an L2 cache.
	// Where each core has its own L2, clusters equal cores.
	Clusters []*Cluster
	// Cores are the physical cores, each holding its SMT siblings.
	Cores []*Core
	// CPUs are the online CPUs (hardware threads), ordered by kernel id;
	// CPUs[i].ID is i.
	CPUs []*CPU
	// MaxCapacity is the highest CPU capacity: 1024, as capacities are
	// scaled to it.
	MaxCapacity int
}

// Package is a physical package (socket).
type Package struct {
	ID int
	// KernelID is topology/physical_package_id; -1 where the platform
	// does not say.
	KernelID int
	CPUs     Cpumask
	// Nodes are the dense ids of the nodes with CPUs in the package,
	// ascending.
	Nodes []int
}

// Node is a NUMA node.
type Node struct {
	ID int
	// KernelID is N of devices/system/node/nodeN.
	KernelID int
	CPUs     Cpumask
	// Distances holds the node's distance to each node, indexed by dense
	// node id, from node/nodeN/distance (10 for the node itself by ACPI
	// convention); nil if unknown.
	Distances []int
	// LLCs are the dense ids of the LLCs with CPUs in the node,
	// ascending. An LLC spanning nodes (Intel sub-NUMA clustering) is
	// listed in each.
	LLCs []int
}

// LLC is a last-level cache: the highest-level data or unified cache of
// its CPUs (L3, or L2 where there is no L3), or a part of one that
// SplitLLCs made.
type LLC struct {
	ID int
	// KernelID is the cache's id (cache/indexN/id); where the kernel does
	// not give one, the lowest CPU sharing the cache (recorded in
	// Topology.Assumed). Virtual LLCs keep the id of the cache they split.
	KernelID int
	// Level is the cache level: 3 or 2, 1 where only L1 caches are known,
	// 0 where the cache was assumed (no cache information).
	Level int
	// Node and Package are dense ids: the node of the LLC's lowest CPU,
	// and its package.
	Node, Package int
	CPUs          Cpumask
	// Cores are the dense ids of the LLC's cores, ascending.
	Cores []int
	// SizeKiB is the size of the cache (of the whole physical cache for a
	// virtual LLC); 0 if unknown.
	SizeKiB int
	// Virtual is set on the LLCs SplitLLCs made.
	Virtual bool
}

// Cluster is a group of cores sharing an L2 cache (an E-core module, an
// Arm cluster); a core with its own L2 is a cluster by itself.
type Cluster struct {
	ID   int
	CPUs Cpumask
	// LLC is the dense id of the LLC of the cluster's lowest CPU.
	LLC int
	// SizeKiB is the size of the L2 cache; 0 if unknown.
	SizeKiB int
}

// Core is a physical core.
type Core struct {
	ID int
	// KernelID is topology/core_id, unique within a package only.
	KernelID int
	// Package, Node, LLC and Cluster are dense ids; Node is the node of
	// the core's lowest CPU.
	Package, Node, LLC, Cluster int
	// CPUs are the core's online SMT siblings.
	CPUs Cpumask
	// Type classifies the core by capacity; see the package documentation.
	Type CoreType
	// Capacity is the highest capacity of the core's CPUs.
	Capacity int
}

// CPU is an online logical CPU (hardware thread).
type CPU struct {
	// ID is the dense id, the CPU's index in Topology.CPUs.
	ID int
	// KernelID is the kernel's CPU number (N of cpuN), used by
	// sched_setaffinity, BPF helpers and cpulists.
	KernelID int
	// Core, LLC, Node, Package and Cluster are dense ids.
	Core, LLC, Node, Package, Cluster int
	// Capacity is the CPU's relative performance, scaled so that the
	// biggest CPU is 1024.
	Capacity int
	// CapacitySource names the files Capacity was computed from, the same
	// for every CPU: "cpu_capacity", "acpi_cppc",
	// "amd_pstate_prefcore", "cpufreq" or "uniform".
	CapacitySource string
	// MinFreqKHz, MaxFreqKHz and BaseFreqKHz are the hardware frequency
	// limits and the base (non-turbo) frequency; 0 if unknown.
	MinFreqKHz, MaxFreqKHz, BaseFreqKHz int
	// L1dKiB, L2KiB and L3KiB are the sizes of the CPU's level 1 data,
	// level 2 and level 3 caches; 0 if it has none or they are unknown.
	L1dKiB, L2KiB, L3KiB int
}

// CPU returns the online CPU with kernel id kernelID, and whether there
// is one.
func (t *Topology) CPU(kernelID int) (*CPU, bool) {
	i, ok := slices.BinarySearchFunc(t.CPUs, kernelID, func(c *CPU, id int) int {
		return c.KernelID - id
	})
	if !ok {
		return nil, false
	}
	return t.CPUs[i], true
}

// String returns the topology as an indented tree, package > node > LLC >
// core, for people to read. Each line gives the dense id, the kernel id in
// brackets and the CPUs (kernel ids); core lines add the type, capacity and
// L2 cluster. The CPU masks, capacity source and Assumed notes come first.
// The format may change; programs should use the fields.
func (t *Topology) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "cpus: possible %s, present %s, online %s\n",
		orDash(t.Possible), orDash(t.Present), orDash(t.Online))
	if len(t.CPUs) > 0 {
		fmt.Fprintf(&b, "capacity source: %s\n", t.CPUs[0].CapacitySource)
	}
	for _, a := range t.Assumed {
		fmt.Fprintf(&b, "assumed: %s\n", a)
	}
	for _, p := range t.Packages {
		fmt.Fprintf(&b, "package %d [%d] cpus %s\n", p.ID, p.KernelID, p.CPUs)
		for _, ni := range p.Nodes {
			n := t.Nodes[ni]
			fmt.Fprintf(&b, "  node %d [%d] cpus %s", n.ID, n.KernelID, n.CPUs)
			if n.Distances != nil {
				fmt.Fprintf(&b, " distances %v", n.Distances)
			}
			b.WriteByte('\n')
			for _, l := range t.LLCs {
				if l.Package != p.ID || l.Node != n.ID {
					continue
				}
				fmt.Fprintf(&b, "    llc %d [%d] L%d", l.ID, l.KernelID, l.Level)
				if l.SizeKiB > 0 {
					fmt.Fprintf(&b, " %dK", l.SizeKiB)
				}
				if l.Virtual {
					b.WriteString(" virtual")
				}
				fmt.Fprintf(&b, " cpus %s\n", l.CPUs)
				for _, ci := range l.Cores {
					c := t.Cores[ci]
					fmt.Fprintf(&b, "      core %d [%d] %s capacity %d cluster %d cpus %s\n",
						c.ID, c.KernelID, c.Type, c.Capacity, c.Cluster, c.CPUs)
				}
			}
		}
	}
	return b.String()
}

// orDash returns m's cpulist form, or "-" when it is empty.
func orDash(m Cpumask) string {
	if m.Empty() {
		return "-"
	}
	return m.String()
}
