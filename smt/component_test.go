package smt_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/scxkit/scxkit/scx"
	"github.com/scxkit/scxkit/smt"
	"github.com/scxkit/scxkit/topology"
)

// twoCores is a machine of two cores of two threads: CPUs 0,2 and 1,3.
func twoCores() *topology.Topology {
	t := &topology.Topology{Online: topology.MaskOf(0, 1, 2, 3)}
	for i, cpus := range [][]int{{0, 2}, {1, 3}} {
		t.Cores = append(t.Cores, &topology.Core{ID: i, CPUs: topology.MaskOf(cpus...)})
	}
	for k := range 4 {
		t.CPUs = append(t.CPUs, &topology.CPU{ID: k, KernelID: k, Core: k % 2})
	}
	return t
}

// TestNeeds checks what smt declares: the ops flags schedulers had to set
// by hand before, every callback of smt.bpf.h's hooks, ops.enqueue and
// ops.dispatch as its own decisions, and a DSQ per class.
func TestNeeds(t *testing.T) {
	l, err := smt.New(twoCores(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if l.Name() != "smt" {
		t.Errorf("Name() = %q, want smt", l.Name())
	}
	n := l.Needs()
	for _, f := range []scx.OpsFlag{scx.EnqLast, scx.KeepBuiltinIdle, scx.EnqExiting, scx.EnqMigrationDisabled} {
		if !slices.Contains(n.Flags, f) {
			t.Errorf("Needs.Flags %v lacks %s", n.Flags, f)
		}
	}
	cbs := slices.Concat(n.Callbacks, n.Owns)
	for _, cb := range []string{"init", "select_cpu", "enqueue", "dispatch", "running", "stopping", "update_idle", "disable"} {
		if !slices.Contains(cbs, cb) {
			t.Errorf("Needs lacks callback %s: %v", cb, cbs)
		}
	}
	if !slices.Equal(n.Owns, []string{"enqueue", "dispatch"}) {
		t.Errorf("Needs.Owns = %v, want enqueue and dispatch", n.Owns)
	}
	if n.DSQs != len(l.Classes) || n.Objects == nil || n.Header != "scxkit/smt.bpf.h" {
		t.Errorf("Needs: %d DSQs for %d classes, objects %v, header %q", n.DSQs, len(l.Classes), n.Objects, n.Header)
	}
	if _, err := l.Read(nil); !errors.Is(err, scx.ErrNotBound) {
		t.Errorf("Read before Bind: %v, want scx.ErrNotBound", err)
	}
	if _, err := l.Violations(); !errors.Is(err, scx.ErrNotBound) {
		t.Errorf("Violations before Bind: %v, want scx.ErrNotBound", err)
	}
}

// noEnqLast stands in for a component that cannot work with
// SCX_OPS_ENQ_LAST, as preemption by class cannot.
type noEnqLast struct{}

func (noEnqLast) Name() string { return "noenqlast" }
func (noEnqLast) Needs() scx.Needs {
	return scx.Needs{Forbids: []scx.OpsFlag{scx.EnqLast}}
}
func (noEnqLast) Bind(*scx.Binding) error { return nil }

// TestConflictEnqLast checks that scx.Open refuses smt beside a component
// that forbids SCX_OPS_ENQ_LAST, in either order, with a *ConflictError
// naming both and the flag, before it reads any object.
func TestConflictEnqLast(t *testing.T) {
	l, err := smt.New(twoCores(), nil)
	if err != nil {
		t.Fatal(err)
	}
	noObject := func() (*ebpf.CollectionSpec, error) {
		t.Error("scx.Open read an object before it found the conflict")
		return nil, errors.New("no object in this test")
	}
	objs := scx.Objects{Base: noObject, V2: noObject}
	for _, comps := range [][]scx.Component{{l, noEnqLast{}}, {noEnqLast{}, l}} {
		_, err := scx.Open(objs, scx.Config{Name: "conflict", Components: comps})
		var ce *scx.ConflictError
		if !errors.As(err, &ce) {
			t.Fatalf("Open(%s, %s): %v, want a *scx.ConflictError", comps[0].Name(), comps[1].Name(), err)
		}
		names := []string{ce.A, ce.B}
		slices.Sort(names)
		if !slices.Equal(names, []string{"noenqlast", "smt"}) || !strings.Contains(ce.What, string(scx.EnqLast)) {
			t.Errorf("conflict between %s and %s over %q, want smt and noenqlast over %s", ce.A, ce.B, ce.What, scx.EnqLast)
		}
		if !errors.Is(err, scx.ErrConflict) {
			t.Errorf("%v does not match scx.ErrConflict", err)
		}
		t.Log(err)
	}
}
