// Package numavm tests topology discovery and topology.bpf.h in a VM with
// 2 sockets x 2 cores x 2 threads on 2 NUMA nodes.
package numavm

import (
	"testing"

	"github.com/scxkit/scxkit/topology"
	"github.com/scxkit/scxkit/topology/internal/toposched"
	"github.com/scxkit/scxkit/vmtest"
)

var shape = vmtest.Topology{Sockets: 2, Cores: 2, Threads: 2, Nodes: 2}

func TestMain(m *testing.M) {
	vmtest.Main(m, &vmtest.Config{Topology: shape})
}

func TestDiscover(t *testing.T) {
	topo, err := topology.Discover(nil)
	if err != nil {
		t.Fatal(err)
	}
	toposched.ExpectShape(t, topo, toposched.ShapeOf(shape, topo.Online))
	if !topo.Online.Equal(topology.MaskOf(0, 1, 2, 3, 4, 5, 6, 7)) {
		t.Errorf("online %v, want 0-7", topo.Online)
	}
	for _, n := range topo.Nodes {
		if len(n.Distances) != 2 || n.Distances[n.ID] >= n.Distances[1-n.ID] {
			t.Errorf("node %d distances %v: want 2 entries, local nearer", n.KernelID, n.Distances)
		}
	}
	t.Logf("\n%s", topo)
}

func TestBPFAgrees(t *testing.T) {
	topo, err := topology.Discover(nil)
	if err != nil {
		t.Fatal(err)
	}
	toposched.AttachAndCheck(t, topo)
}
