package smt_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/scxkit/scxkit/dsq"
	"github.com/scxkit/scxkit/preempt"
	"github.com/scxkit/scxkit/scx"
	"github.com/scxkit/scxkit/smt"
)

// TestNeeds checks what smt declares: the ops flags schedulers had to set
// by hand before, every callback of smt.bpf.h's hooks, ops.enqueue and
// ops.dispatch as its own decisions, and a DSQ per class.
func TestNeeds(t *testing.T) {
	l, err := smt.New(smt.TwoCores(), nil)
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
// SCX_OPS_ENQ_LAST, as preempt owning its own queues cannot.
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
	l, err := smt.New(smt.TwoCores(), nil)
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

// TestRealConflicts opens a scheduler with smt owning its queues and each
// real component it cannot be combined with: preempt owning its queues
// forbids the SCX_OPS_ENQ_LAST smt requires, and dsq, like smt, decides
// ops.enqueue and ops.dispatch alone. Open refuses before it reads any
// object, naming both. (On dsq's queues, with Options.OnDSQ, the three
// compose: internal/combined.)
func TestRealConflicts(t *testing.T) {
	iso, err := smt.New(smt.TwoCores(), nil)
	if err != nil {
		t.Fatal(err)
	}
	pre, err := preempt.New(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	layout, err := dsq.New(smt.TwoCores(), &dsq.Options{Kind: dsq.Global})
	if err != nil {
		t.Fatal(err)
	}
	never := func() (*ebpf.CollectionSpec, error) {
		t.Error("Open read an object before refusing the components")
		return nil, errors.New("not reached")
	}
	for _, c := range []struct {
		comps []scx.Component
		a, b  string
		what  string
	}{
		{[]scx.Component{iso, pre}, "smt", "preempt", "flag SCX_OPS_ENQ_LAST"},
		{[]scx.Component{pre, iso}, "smt", "preempt", "flag SCX_OPS_ENQ_LAST"},
		{[]scx.Component{layout, iso}, "dsq", "smt", "ops.enqueue"},
	} {
		_, err := scx.Open(scx.Objects{Base: never, V2: never}, scx.Config{Name: "mix", Components: c.comps})
		var ce *scx.ConflictError
		if !errors.As(err, &ce) {
			t.Fatalf("Open(%s, %s) = %v; want a *scx.ConflictError", c.comps[0].Name(), c.comps[1].Name(), err)
		}
		if got := []string{ce.A, ce.B}; !slices.Equal(got, []string{c.a, c.b}) || ce.What != c.what ||
			(ce.Flag != scx.EnqLast && ce.Callback != "enqueue") {
			t.Errorf("conflict %v over %q; want %s and %s over %q", got, ce.What, c.a, c.b, c.what)
		}
		if !strings.Contains(err.Error(), c.a) || !strings.Contains(err.Error(), c.b) {
			t.Errorf("error %q does not name both components", err)
		}
	}
}
