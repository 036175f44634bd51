package toposched

import (
	"testing"

	"github.com/cilium/ebpf"
	"github.com/scxkit/scxkit/internal/sysfstest"
	"github.com/scxkit/scxkit/scx"
	"github.com/scxkit/scxkit/topology"
)

// TestHelpersAgreeOnFixtures loads topology.bpf.h (without a scheduler) on
// the host, fills it from each real machine's snapshot, and compares every
// helper answer with the Go view.
func TestHelpersAgreeOnFixtures(t *testing.T) {
	spec, err := LoadQuery()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range sysfstest.Names(t) {
		t.Run(name, func(t *testing.T) {
			topo, err := topology.Discover(&topology.Options{Root: sysfstest.Unpack(t, name)})
			if err != nil {
				t.Fatal(err)
			}
			coll, err := ebpf.NewCollection(spec)
			if err != nil {
				t.Fatal(err)
			}
			defer coll.Close()
			if err := topo.Bind(scx.NewBinding(topo.Name(), coll, nil, scx.DSQRange{})); err != nil {
				t.Fatal(err)
			}
			if err := Check(topo, coll.Programs["topo_query"]); err != nil {
				t.Error(err)
			}
		})
	}
}
