package dsq

import (
	"errors"
	"slices"
	"testing"

	"github.com/scxkit/scxkit/internal/sysfstest"
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
			l, err := New(topo, Options{Kind: tt.kind})
			if err != nil {
				t.Fatal(err)
			}
			if len(l.DSQs) != tt.nDSQs {
				t.Fatalf("%d DSQs, want %d", len(l.DSQs), tt.nDSQs)
			}
			var all topology.Cpumask
			for i, d := range l.DSQs {
				if d.Index != i || d.ID != DefaultBase+uint64(i) {
					t.Errorf("DSQ %d: index %d id %#x", i, d.Index, d.ID)
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
	l, err := New(topo, Options{Kind: PerCPU, MaxSteal: 16})
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
		{"builtin ids", Options{Base: 1 << 63}},
		{"ids running into bit 63", Options{Base: 1<<63 - 1}},
		{"unknown kind", Options{Kind: Kind(42)}},
	} {
		if _, err := New(topo, tt.opts); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v; want ErrInvalid", tt.name, err)
		}
	}
	custom, err := New(topo, Options{Kind: Custom, Base: 100, Domains: []topology.Cpumask{topology.MaskOf(0, 1, 2), topology.MaskOf(6, 7)}})
	if err != nil {
		t.Fatal(err)
	}
	if custom.DSQs[1].ID != 101 {
		t.Errorf("second custom DSQ id %d, want 101", custom.DSQs[1].ID)
	}
	if _, ok := custom.Of(3); ok {
		t.Error("CPU 3 is in no custom domain but has a DSQ")
	}
}
