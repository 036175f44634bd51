package topology

import (
	"fmt"
	"slices"
)

// checkTopology returns an error if t breaks an invariant that every
// Topology from Discover or SplitLLCs keeps: dense ids are slice indexes
// in order of each object's lowest CPU, the objects of a kind partition
// the online CPUs, links agree with masks, and capacities are scaled.
func checkTopology(t *Topology) error {
	if len(t.CPUs) == 0 {
		return fmt.Errorf("no CPUs")
	}
	var online Cpumask
	for i, c := range t.CPUs {
		if c.ID != i {
			return fmt.Errorf("CPUs[%d].ID = %d", i, c.ID)
		}
		if i > 0 && c.KernelID <= t.CPUs[i-1].KernelID {
			return fmt.Errorf("CPUs not in kernel id order at %d", i)
		}
		online.Set(c.KernelID)
		if got, ok := t.CPU(c.KernelID); !ok || got != c {
			return fmt.Errorf("CPU(%d) does not find it", c.KernelID)
		}
	}
	if !online.Equal(t.Online) {
		return fmt.Errorf("CPUs %v, Online %v", online, t.Online)
	}
	if _, ok := t.CPU(t.Online.Max() + 1); ok {
		return fmt.Errorf("CPU finds an offline CPU")
	}

	// partition checks that the masks are disjoint, cover the online
	// CPUs and come in order of their lowest CPU.
	partition := func(kind string, masks []Cpumask) error {
		var all Cpumask
		for i, m := range masks {
			if m.Empty() {
				return fmt.Errorf("%s %d is empty", kind, i)
			}
			if m.Intersects(all) {
				return fmt.Errorf("%s %d (%v) overlaps another", kind, i, m)
			}
			if i > 0 && m.First() < masks[i-1].First() {
				return fmt.Errorf("%s %d (%v) is out of order", kind, i, m)
			}
			for c := range m.All() {
				all.Set(c)
			}
		}
		if !all.Equal(t.Online) {
			return fmt.Errorf("%ss cover %v, not the online CPUs %v", kind, all, t.Online)
		}
		return nil
	}
	masks := func(n int, f func(int) (int, Cpumask)) ([]Cpumask, error) {
		var ms []Cpumask
		for i := range n {
			id, m := f(i)
			if id != i {
				return nil, fmt.Errorf("dense id %d at index %d", id, i)
			}
			ms = append(ms, m)
		}
		return ms, nil
	}
	for _, k := range []struct {
		kind string
		n    int
		f    func(int) (int, Cpumask)
	}{
		{"package", len(t.Packages), func(i int) (int, Cpumask) { return t.Packages[i].ID, t.Packages[i].CPUs }},
		{"node", len(t.Nodes), func(i int) (int, Cpumask) { return t.Nodes[i].ID, t.Nodes[i].CPUs }},
		{"llc", len(t.LLCs), func(i int) (int, Cpumask) { return t.LLCs[i].ID, t.LLCs[i].CPUs }},
		{"cluster", len(t.Clusters), func(i int) (int, Cpumask) { return t.Clusters[i].ID, t.Clusters[i].CPUs }},
		{"core", len(t.Cores), func(i int) (int, Cpumask) { return t.Cores[i].ID, t.Cores[i].CPUs }},
	} {
		ms, err := masks(k.n, k.f)
		if err != nil {
			return fmt.Errorf("%s: %w", k.kind, err)
		}
		if err := partition(k.kind, ms); err != nil {
			return err
		}
	}

	virtual := slices.ContainsFunc(t.LLCs, func(l *LLC) bool { return l.Virtual })
	source := t.CPUs[0].CapacitySource
	maxCap := 0
	for _, c := range t.CPUs {
		if c.Core < 0 || c.Core >= len(t.Cores) || c.LLC < 0 || c.LLC >= len(t.LLCs) ||
			c.Node < 0 || c.Node >= len(t.Nodes) || c.Package < 0 || c.Package >= len(t.Packages) ||
			c.Cluster < 0 || c.Cluster >= len(t.Clusters) {
			return fmt.Errorf("cpu %d: dense id out of range: %+v", c.KernelID, *c)
		}
		for kind, m := range map[string]Cpumask{
			"core": t.Cores[c.Core].CPUs, "llc": t.LLCs[c.LLC].CPUs, "node": t.Nodes[c.Node].CPUs,
			"package": t.Packages[c.Package].CPUs, "cluster": t.Clusters[c.Cluster].CPUs,
		} {
			if !m.Has(c.KernelID) {
				return fmt.Errorf("cpu %d: not in its %s %v", c.KernelID, kind, m)
			}
		}
		co := t.Cores[c.Core]
		if co.LLC != c.LLC || co.Package != c.Package || co.Cluster != c.Cluster {
			return fmt.Errorf("cpu %d: links differ from its core's", c.KernelID)
		}
		if c.CapacitySource != source {
			return fmt.Errorf("cpu %d: capacity source %q, cpu %d has %q", c.KernelID, c.CapacitySource, t.CPUs[0].KernelID, source)
		}
		if c.Capacity < 0 || c.Capacity > 1024 || c.Capacity > co.Capacity {
			return fmt.Errorf("cpu %d: capacity %d, core capacity %d", c.KernelID, c.Capacity, co.Capacity)
		}
		maxCap = max(maxCap, c.Capacity)
	}
	if maxCap != 1024 || t.MaxCapacity != 1024 {
		return fmt.Errorf("highest capacity %d, MaxCapacity %d; want 1024", maxCap, t.MaxCapacity)
	}
	for _, co := range t.Cores {
		first, _ := t.CPU(co.CPUs.First())
		if co.Node != first.Node {
			return fmt.Errorf("core %d: node %d, its first CPU's %d", co.ID, co.Node, first.Node)
		}
		if co.Type == CoreUnknown {
			return fmt.Errorf("core %d: type unknown", co.ID)
		}
		if !co.CPUs.Subset(t.Clusters[co.Cluster].CPUs) || !co.CPUs.Subset(t.LLCs[co.LLC].CPUs) {
			return fmt.Errorf("core %d: not within its cluster and LLC", co.ID)
		}
		capacity := 0
		for c := range co.CPUs.All() {
			cpu, _ := t.CPU(c)
			capacity = max(capacity, cpu.Capacity)
		}
		if capacity != co.Capacity {
			return fmt.Errorf("core %d: capacity %d, its CPUs' highest %d", co.ID, co.Capacity, capacity)
		}
	}
	for _, cl := range t.Clusters {
		first, _ := t.CPU(cl.CPUs.First())
		if cl.LLC != first.LLC {
			return fmt.Errorf("cluster %d: llc %d, its first CPU's %d", cl.ID, cl.LLC, first.LLC)
		}
		if !virtual && !cl.CPUs.Subset(t.LLCs[cl.LLC].CPUs) {
			return fmt.Errorf("cluster %d: not within its LLC", cl.ID)
		}
	}
	llcCores := make([][]int, len(t.LLCs))
	for _, co := range t.Cores {
		llcCores[co.LLC] = append(llcCores[co.LLC], co.ID)
	}
	for _, l := range t.LLCs {
		first, _ := t.CPU(l.CPUs.First())
		if l.Node != first.Node || l.Package != first.Package {
			return fmt.Errorf("llc %d: node %d package %d, its first CPU's %d %d", l.ID, l.Node, l.Package, first.Node, first.Package)
		}
		if !l.CPUs.Subset(t.Packages[l.Package].CPUs) {
			return fmt.Errorf("llc %d: not within its package", l.ID)
		}
		if !slices.Equal(llcCores[l.ID], l.Cores) {
			return fmt.Errorf("llc %d: Cores %v, want %v", l.ID, l.Cores, llcCores[l.ID])
		}
	}
	// The LLCs of a node and the nodes of a package are those its CPUs
	// are in.
	nodeLLCs := make([]map[int]bool, len(t.Nodes))
	pkgNodes := make([]map[int]bool, len(t.Packages))
	for _, c := range t.CPUs {
		if nodeLLCs[c.Node] == nil {
			nodeLLCs[c.Node] = map[int]bool{}
		}
		nodeLLCs[c.Node][c.LLC] = true
		if pkgNodes[c.Package] == nil {
			pkgNodes[c.Package] = map[int]bool{}
		}
		pkgNodes[c.Package][c.Node] = true
	}
	sorted := func(m map[int]bool) []int {
		var s []int
		for k := range m {
			s = append(s, k)
		}
		slices.Sort(s)
		return s
	}
	for _, n := range t.Nodes {
		if want := sorted(nodeLLCs[n.ID]); !slices.Equal(want, n.LLCs) {
			return fmt.Errorf("node %d: LLCs %v, want %v", n.ID, n.LLCs, want)
		}
		if n.Distances != nil && len(n.Distances) != len(t.Nodes) {
			return fmt.Errorf("node %d: %d distances for %d nodes", n.ID, len(n.Distances), len(t.Nodes))
		}
	}
	for _, p := range t.Packages {
		if want := sorted(pkgNodes[p.ID]); !slices.Equal(want, p.Nodes) {
			return fmt.Errorf("package %d: Nodes %v, want %v", p.ID, p.Nodes, want)
		}
	}
	return nil
}
