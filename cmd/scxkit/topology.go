package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/scxkit/scxkit/topology"
)

func topologyCommand() (*flag.FlagSet, func(context.Context, io.Writer, io.Writer) error) {
	fs := flag.NewFlagSet("topology", flag.ContinueOnError)
	root := fs.String("sysfs", "/", "filesystem root that holds sys/ (an unpacked snapshot, for instance)")
	jsonOut := fs.Bool("json", false, "print one JSON object instead of the tree")
	llcCores := fs.Int("llc-cores", 0, "split LLCs with more cores than this into virtual LLCs (0: no split)")
	setUsage(fs, "scxkit topology [--sysfs DIR] [--json] [--llc-cores N]", `Topology prints the CPU topology package topology discovers: packages, NUMA
nodes, LLCs, cores and CPUs with their capacities and core types, and the
assumptions made where sysfs files were missing.`)
	return fs, func(ctx context.Context, stdout, _ io.Writer) error {
		if *llcCores < 0 {
			return usagef("--llc-cores %d: must not be negative", *llcCores)
		}
		if err := checkSysfsRoot(*root); err != nil {
			return err
		}
		topo, err := discoverTopology(ctx, &topology.Options{Root: *root, LLCCores: *llcCores})
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

// discover is topology.Discover; tests replace it.
var discover = topology.Discover

// discoverTopology runs discover until it returns or ctx ends (a signal):
// whatever discover waits for, a signal ends the command.
func discoverTopology(ctx context.Context, opts *topology.Options) (*topology.Topology, error) {
	type result struct {
		topo *topology.Topology
		err  error
	}
	done := make(chan result, 1)
	go func() {
		t, err := discover(opts)
		done <- result{t, err}
	}()
	select {
	case r := <-done:
		return r.topo, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("interrupted while reading %s: %w", filepath.Join(opts.Root, "sys/devices/system/cpu"), ctx.Err())
	}
}

// checkSysfsRoot checks --sysfs: a directory that holds sys/, not sysfs
// itself.
func checkSysfsRoot(root string) error {
	if root == "" {
		return usagef(`--sysfs "": give the directory that holds sys/, e.g. / for this machine or an unpacked snapshot`)
	}
	fi, err := os.Stat(root)
	if err != nil {
		return usagef("--sysfs %s: %v: give the directory that holds sys/, e.g. / for this machine or an unpacked snapshot", root, errors.Unwrap(err))
	}
	if !fi.IsDir() {
		return usagef("--sysfs %s: not a directory: give the directory that holds sys/, e.g. / for this machine or an unpacked snapshot", root)
	}
	isDir := func(p string) bool {
		fi, err := os.Stat(p)
		return err == nil && fi.IsDir()
	}
	if isDir(filepath.Join(root, "devices/system/cpu")) && !isDir(filepath.Join(root, "sys/devices/system/cpu")) {
		abs, err := filepath.Abs(root)
		if err != nil {
			abs = root
		}
		return usagef("--sysfs %s: holds devices/system/cpu itself, so it is sysfs, not the directory that holds sys/: pass its parent, e.g. --sysfs %s", root, filepath.Dir(abs))
	}
	return nil
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
