package dsq

import (
	"errors"
	"slices"
	"testing"

	"github.com/scxkit/scxkit/internal/sysfstest"
	"github.com/scxkit/scxkit/scx"
	"github.com/scxkit/scxkit/topology"
)

func discover(t *testing.T, fixture string) *topology.Topology {
	t.Helper()
	topo, err := topology.Discover(&topology.Options{Root: sysfstest.Unpack(t, fixture)})
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// TestLayouts builds each kind over the dual-socket Xeon (2 nodes, CPUs
// interleaved between them) and checks CPUs, ids and steal order.
func TestLayouts(t *testing.T) {
	topo := discover(t, "amd64-24cpu-2socket-2node-smt")
	for _, tt := range []struct {
		kind  Kind
		nDSQs int
	}{{PerLLC, 2}, {PerCPU, 24}, {PerNode, 2}, {Global, 1}} {
		t.Run(tt.kind.String(), func(t *testing.T) {
			l, err := New(topo, &Options{Kind: tt.kind})
			if err != nil {
				t.Fatal(err)
			}
			if len(l.DSQs) != tt.nDSQs {
				t.Fatalf("%d DSQs, want %d", len(l.DSQs), tt.nDSQs)
			}
			var all topology.Cpumask
			for i, d := range l.DSQs {
				if d.Index != i || d.ID != 0 {
					t.Errorf("DSQ %d: index %d id %#x; want its index, and no id before Bind", i, d.Index, d.ID)
				}
				if all.Intersects(d.CPUs) {
					t.Errorf("DSQ %d overlaps another", i)
				}
				all = all.Or(d.CPUs)
				for cpu := range d.CPUs.All() {
					if got, ok := l.Of(cpu); !ok || got != i {
						t.Errorf("Of(%d) = %d, %v; want %d", cpu, got, ok, i)
					}
				}
				if slices.Contains(d.Steal, i) || len(d.Steal) != min(tt.nDSQs-1, MaxSteal) {
					t.Errorf("DSQ %d steals from %v", i, d.Steal)
				}
			}
			if !all.Equal(topo.Online) {
				t.Errorf("DSQs cover %v, want every online CPU %v", all, topo.Online)
			}
		})
	}
}

// TestStealNearestFirst: per CPU on the Xeon, a CPU's DSQ steals from the
// CPUs of its own node before those of the other node.
func TestStealNearestFirst(t *testing.T) {
	topo := discover(t, "amd64-24cpu-2socket-2node-smt")
	l, err := New(topo, &Options{Kind: PerCPU, MaxSteal: 16})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range l.DSQs {
		seenRemote := false
		for _, s := range d.Steal {
			remote := l.DSQs[s].Node != d.Node
			if seenRemote && !remote {
				t.Fatalf("DSQ %d (node %d) steals from %v: a local DSQ after a remote one", d.Index, d.Node, d.Steal)
			}
			seenRemote = seenRemote || remote
		}
		if len(d.Steal) != 16 || !seenRemote {
			// 11 other CPUs share the node, so 16 candidates reach the other node.
			t.Errorf("DSQ %d steals from %v: want 16, ending on the other node", d.Index, d.Steal)
		}
	}
}

func TestNewErrors(t *testing.T) {
	topo := discover(t, "amd64-12cpu-2llc-smt")
	for _, tt := range []struct {
		name string
		opts Options
	}{
		{"custom without domains", Options{Kind: Custom}},
		{"overlapping domains", Options{Kind: Custom, Domains: []topology.Cpumask{topology.MaskOf(0, 1), topology.MaskOf(1, 2)}}},
		{"empty domain", Options{Kind: Custom, Domains: []topology.Cpumask{{}}}},
		{"offline CPU", Options{Kind: Custom, Domains: []topology.Cpumask{topology.MaskOf(0, 40)}}},
		{"unknown kind", Options{Kind: Kind(42)}},
	} {
		if _, err := New(topo, &tt.opts); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v; want ErrInvalid", tt.name, err)
		}
	}
	custom, err := New(topo, &Options{Kind: Custom, Domains: []topology.Cpumask{topology.MaskOf(0, 1, 2), topology.MaskOf(6, 7)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(custom.DSQs) != 2 || !custom.DSQs[1].CPUs.Equal(topology.MaskOf(6, 7)) {
		t.Errorf("custom DSQs %+v, want 0-2 and 6-7", custom.DSQs)
	}
	if _, ok := custom.Of(3); ok {
		t.Error("CPU 3 is in no custom domain but has a DSQ")
	}
}

// TestNilOptions: nil options make one DSQ per LLC.
func TestNilOptions(t *testing.T) {
	topo := discover(t, "amd64-12cpu-2llc-smt")
	l, err := New(topo, nil)
	if err != nil {
		t.Fatal(err)
	}
	if l.Kind != PerLLC || len(l.DSQs) != len(topo.LLCs) {
		t.Errorf("kind %v with %d DSQs, want per-llc with %d", l.Kind, len(l.DSQs), len(topo.LLCs))
	}
}

// TestNeeds checks what the layout declares: one DSQ id per DSQ, ops.init,
// ops.running and ops.stopping unless it is FIFO, and ops.enqueue and
// ops.dispatch as its own.
func TestNeeds(t *testing.T) {
	topo := discover(t, "amd64-24cpu-2socket-2node-smt")
	for _, tt := range []struct {
		opts      Options
		callbacks []string
	}{
		{Options{Kind: PerNode}, []string{"init", "running", "stopping"}},
		{Options{Kind: PerCPU, FIFO: true}, []string{"init"}},
	} {
		l, err := New(topo, &tt.opts)
		if err != nil {
			t.Fatal(err)
		}
		n := l.Needs()
		if n.DSQs != len(l.DSQs) || n.DSQBase != "" {
			t.Errorf("%v: Needs.DSQs %d, DSQBase %q; want %d ids written by Bind", tt.opts.Kind, n.DSQs, n.DSQBase, len(l.DSQs))
		}
		if !slices.Equal(n.Callbacks, tt.callbacks) || !slices.Equal(n.Owns, []string{"enqueue", "dispatch"}) {
			t.Errorf("FIFO %v: callbacks %v, owns %v; want %v, [enqueue dispatch]", tt.opts.FIFO, n.Callbacks, n.Owns, tt.callbacks)
		}
		if n.Header != "scxkit/dsq.bpf.h" || n.Objects == nil {
			t.Errorf("header %q, objects %v", n.Header, n.Objects)
		}
	}
}

// TestClasses: a layout of several classes asks for one DSQ id per
// (domain, class), and bounds the number of classes.
func TestClasses(t *testing.T) {
	topo := discover(t, "amd64-12cpu-2llc-smt")
	l, err := New(topo, &Options{Kind: PerLLC, Classes: 3})
	if err != nil {
		t.Fatal(err)
	}
	if l.Classes != 3 || len(l.DSQs) != 2 {
		t.Fatalf("%d domains of %d classes, want 2 of 3", len(l.DSQs), l.Classes)
	}
	if n := l.Needs(); n.DSQs != 6 {
		t.Errorf("Needs.DSQs %d, want 2 domains x 3 classes", n.DSQs)
	}
	if l, err := New(topo, nil); err != nil || l.Classes != 1 || l.Needs().DSQs != len(l.DSQs) {
		t.Errorf("default layout: %v, %d classes; want one class, one id per domain", err, l.Classes)
	}
	if _, err := New(topo, &Options{Classes: MaxClasses + 1}); !errors.Is(err, ErrTooBig) {
		t.Errorf("%d classes: %v, want ErrTooBig", MaxClasses+1, err)
	}
	if _, err := New(topo, &Options{Classes: -1}); !errors.Is(err, ErrInvalid) {
		t.Errorf("-1 classes: %v, want ErrInvalid", err)
	}
}

// TestReadBeforeBind: the Read methods and stats of an unbound layout fail
// with scx.ErrNotBound.
func TestReadBeforeBind(t *testing.T) {
	l, err := New(discover(t, "amd64-12cpu-2llc-smt"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.ReadCounters(nil); !errors.Is(err, scx.ErrNotBound) {
		t.Errorf("ReadCounters: %v, want ErrNotBound", err)
	}
	if _, err := l.ReadDepths(nil); !errors.Is(err, scx.ErrNotBound) {
		t.Errorf("ReadDepths: %v, want ErrNotBound", err)
	}
	if _, err := l.ReadStats(nil); !errors.Is(err, scx.ErrNotBound) {
		t.Errorf("ReadStats: %v, want ErrNotBound", err)
	}
}
