package topology

import "slices"

// SplitLLCs returns a copy of t in which every LLC with more than maxCores
// cores is split into virtual LLCs of whole cores, for schedulers that keep
// one run queue per LLC and would contend on a queue shared by too many
// cores (a 64-core server L3, a 24-core client L3).
//
// An LLC of n > maxCores cores becomes k = ceil(n/maxCores) virtual LLCs of
// consecutive cores in core order, as even as possible: their sizes differ
// by at most one. Virtual LLCs have Virtual set and keep the KernelID,
// Level and SizeKiB of the cache they split. LLC dense ids are then
// renumbered in order of each LLC's lowest CPU, and every field that holds
// one (CPU.LLC, Core.LLC, Cluster.LLC, Node.LLCs) is updated. A cluster
// split between two virtual LLCs belongs to the one of its lowest CPU.
//
// maxCores <= 0 returns an unchanged copy. The copy shares nothing with t.
func (t *Topology) SplitLLCs(maxCores int) *Topology {
	c := t.clone()
	if maxCores <= 0 {
		return c
	}
	var llcs []*LLC
	for _, l := range c.LLCs {
		n := len(l.Cores)
		if n <= maxCores {
			llcs = append(llcs, l)
			continue
		}
		k := (n + maxCores - 1) / maxCores
		for i := range k {
			part := slices.Clone(l.Cores[i*n/k : (i+1)*n/k])
			v := &LLC{
				KernelID: l.KernelID,
				Level:    l.Level,
				Package:  l.Package,
				Cores:    part,
				SizeKiB:  l.SizeKiB,
				Virtual:  true,
			}
			for _, co := range part {
				v.CPUs = v.CPUs.Or(c.Cores[co].CPUs)
			}
			if cpu, ok := c.CPU(v.CPUs.First()); ok {
				v.Node = cpu.Node
			}
			llcs = append(llcs, v)
		}
	}
	slices.SortFunc(llcs, func(a, b *LLC) int { return a.CPUs.First() - b.CPUs.First() })
	nodeLLCs := make([]Cpumask, len(c.Nodes))
	for id, l := range llcs {
		l.ID = id
		for _, co := range l.Cores {
			c.Cores[co].LLC = id
		}
	}
	for _, cpu := range c.CPUs {
		cpu.LLC = c.Cores[cpu.Core].LLC
		if cpu.Node >= 0 && cpu.Node < len(nodeLLCs) {
			nodeLLCs[cpu.Node].Set(cpu.LLC)
		}
	}
	for _, cl := range c.Clusters {
		if cpu, ok := c.CPU(cl.CPUs.First()); ok {
			cl.LLC = cpu.LLC
		}
	}
	for i, n := range c.Nodes {
		n.LLCs = nodeLLCs[i].Slice()
	}
	c.LLCs = llcs
	return c
}

// clone returns a deep copy of t.
func (t *Topology) clone() *Topology {
	c := &Topology{
		Possible:    t.Possible.Clone(),
		Present:     t.Present.Clone(),
		Online:      t.Online.Clone(),
		Assumed:     slices.Clone(t.Assumed),
		MaxCapacity: t.MaxCapacity,
	}
	for _, p := range t.Packages {
		v := *p
		v.CPUs, v.Nodes = p.CPUs.Clone(), slices.Clone(p.Nodes)
		c.Packages = append(c.Packages, &v)
	}
	for _, n := range t.Nodes {
		v := *n
		v.CPUs, v.Distances, v.LLCs = n.CPUs.Clone(), slices.Clone(n.Distances), slices.Clone(n.LLCs)
		c.Nodes = append(c.Nodes, &v)
	}
	for _, l := range t.LLCs {
		v := *l
		v.CPUs, v.Cores = l.CPUs.Clone(), slices.Clone(l.Cores)
		c.LLCs = append(c.LLCs, &v)
	}
	for _, cl := range t.Clusters {
		v := *cl
		v.CPUs = cl.CPUs.Clone()
		c.Clusters = append(c.Clusters, &v)
	}
	for _, co := range t.Cores {
		v := *co
		v.CPUs = co.CPUs.Clone()
		c.Cores = append(c.Cores, &v)
	}
	for _, cpu := range t.CPUs {
		v := *cpu
		c.CPUs = append(c.CPUs, &v)
	}
	return c
}
