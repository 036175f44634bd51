package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"github.com/schedkit/schedkit/topology"
)

func topologyCommand() (*flag.FlagSet, func(context.Context, io.Writer, io.Writer) error) {
	fs := flag.NewFlagSet("topology", flag.ContinueOnError)
	root := fs.String("sysfs", "/", "filesystem root that holds sys/ (an unpacked snapshot, for instance)")
	jsonOut := fs.Bool("json", false, "print one JSON object instead of the tree")
	llcCores := fs.Int("llc-cores", 0, "split LLCs with more cores than this into virtual LLCs (0: no split)")
	setUsage(fs, "schedkit topology [--sysfs DIR] [--json] [--llc-cores N]", `Topology prints the CPU topology package topology discovers: packages, NUMA
nodes, LLCs, cores and CPUs with their capacities and core types, and the
assumptions made where sysfs files were missing.`)
	return fs, func(_ context.Context, stdout, _ io.Writer) error {
		if *llcCores < 0 {
			return usagef("--llc-cores %d: must not be negative", *llcCores)
		}
		topo, err := topology.Discover(&topology.Options{Root: *root, LLCCores: *llcCores})
		if err != nil {
			return err
		}
		if *jsonOut {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(topologyJSON(topo))
		}
		fmt.Fprint(stdout, topo) // the tree ends with the assumptions
		return nil
	}
}

// topologyReport is the output of topology --json. Ids are package
// topology's dense ids; kernel_id is the kernel's CPU number.
type topologyReport struct {
	Possible topology.Cpumask `json:"possible"`
	Online   topology.Cpumask `json:"online"`
	Assumed  []string         `json:"assumed"`
	Nodes    []nodeJSON       `json:"nodes"`
	LLCs     []llcJSON        `json:"llcs"`
	Cores    []coreJSON       `json:"cores"`
	CPUs     []cpuJSON        `json:"cpus"`
}

type nodeJSON struct {
	ID        int              `json:"id"`
	KernelID  int              `json:"kernel_id"`
	CPUs      topology.Cpumask `json:"cpus"`
	Distances []int            `json:"distances"`
}

type llcJSON struct {
	ID      int              `json:"id"`
	Node    int              `json:"node"`
	CPUs    topology.Cpumask `json:"cpus"`
	SizeKiB int              `json:"size_kib"`
	Virtual bool             `json:"virtual,omitempty"`
}

type coreJSON struct {
	ID       int               `json:"id"`
	LLC      int               `json:"llc"`
	CPUs     topology.Cpumask  `json:"cpus"`
	Type     topology.CoreType `json:"type"`
	Capacity int               `json:"capacity"`
}

type cpuJSON struct {
	ID         int `json:"id"`
	KernelID   int `json:"kernel_id"`
	Core       int `json:"core"`
	LLC        int `json:"llc"`
	Node       int `json:"node"`
	Package    int `json:"package"`
	Capacity   int `json:"capacity"`
	MaxFreqKHz int `json:"max_freq_khz,omitempty"`
}

func topologyJSON(t *topology.Topology) topologyReport {
	r := topologyReport{Possible: t.Possible, Online: t.Online, Assumed: t.Assumed}
	if r.Assumed == nil {
		r.Assumed = []string{}
	}
	for _, n := range t.Nodes {
		r.Nodes = append(r.Nodes, nodeJSON{ID: n.ID, KernelID: n.KernelID, CPUs: n.CPUs, Distances: n.Distances})
	}
	for _, l := range t.LLCs {
		r.LLCs = append(r.LLCs, llcJSON{ID: l.ID, Node: l.Node, CPUs: l.CPUs, SizeKiB: l.SizeKiB, Virtual: l.Virtual})
	}
	for _, c := range t.Cores {
		r.Cores = append(r.Cores, coreJSON{ID: c.ID, LLC: c.LLC, CPUs: c.CPUs, Type: c.Type, Capacity: c.Capacity})
	}
	for _, c := range t.CPUs {
		r.CPUs = append(r.CPUs, cpuJSON{ID: c.ID, KernelID: c.KernelID, Core: c.Core, LLC: c.LLC, Node: c.Node,
			Package: c.Package, Capacity: c.Capacity, MaxFreqKHz: c.MaxFreqKHz})
	}
	return r
}
