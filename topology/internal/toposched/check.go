package toposched

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/scxkit/scxkit/scx"
	"github.com/scxkit/scxkit/topology"
)

// Sched is the test scheduler (sched.bpf.c) for both kfunc generations.
var Sched = scx.Objects{Base: loadSched, V2: loadSchedV2}

// LoadQuery returns the spec of query.bpf.c, which loads without sched_ext.
func LoadQuery() (*ebpf.CollectionSpec, error) { return loadQuery() }

// maxMismatches bounds the errors Check reports.
const maxMismatches = 20

// Check asks prog (the topo_query program, after Topology.Bind) about
// every pair of CPUs, online or not, plus ids out of range, and compares
// each answer with topo. It returns the mismatches, joined.
func Check(topo *topology.Topology, prog *ebpf.Program) error {
	ids := topo.Possible.Or(topo.Online).Slice()
	ids = append(ids, -1, topo.Online.Max()+1, topology.MaxBPFCPUs-1, topology.MaxBPFCPUs, 1<<20)
	var errs []error
	for _, a := range ids {
		for _, b := range ids {
			got, err := ask(prog, a, b)
			if err != nil {
				return err
			}
			if want := expect(topo, a, b); got != want {
				errs = append(errs, fmt.Errorf("cpus %d,%d: BPF says %+v, Go says %+v", a, b, got, want))
				if len(errs) == maxMismatches {
					return errors.Join(append(errs, errors.New("more mismatches left out"))...)
				}
			}
		}
	}
	return errors.Join(errs...)
}

func ask(prog *ebpf.Program, a, b int) (queryTopoQuestion, error) {
	in := queryTopoQuestion{A: int32(a), B: int32(b)}
	var out queryTopoQuestion
	if _, err := prog.Run(&ebpf.RunOptions{Context: in, ContextOut: &out}); err != nil {
		return out, fmt.Errorf("run topo_query(%d, %d): %w", a, b, err)
	}
	out.A, out.B = in.A, in.B
	return out, nil
}

func b2u(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

// expect is what topo says topo_query should answer.
func expect(topo *topology.Topology, a, b int) queryTopoQuestion {
	q := queryTopoQuestion{A: int32(a), B: int32(b)}
	ca, okA := topo.CPU(a)
	cb, okB := topo.CPU(b)
	if !okA {
		return q
	}
	q.Known = 1
	q.Core, q.Llc, q.Node, q.Capacity = uint32(ca.Core), uint32(ca.LLC), uint32(ca.Node), uint32(ca.Capacity)
	if okB {
		q.SameCore = b2u(ca.Core == cb.Core)
		q.SameLlc = b2u(ca.LLC == cb.LLC)
		q.SameNode = b2u(ca.Node == cb.Node)
	}
	if b >= 0 && b < topology.MaxBPFCPUs {
		q.InCoreMask = b2u(topo.Cores[ca.Core].CPUs.Has(b))
		q.InLlcMask = b2u(topo.LLCs[ca.LLC].CPUs.Has(b))
		q.InNodeMask = b2u(topo.Nodes[ca.Node].CPUs.Has(b))
	}
	return q
}
