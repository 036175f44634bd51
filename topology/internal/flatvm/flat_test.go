// Package flatvm tests topology discovery and topology.bpf.h in a VM with
// 1 socket x 4 cores x 1 thread, including a CPU taken offline at run time.
package flatvm

import (
	"os"
	"testing"

	"github.com/scxkit/scxkit/topology"
	"github.com/scxkit/scxkit/topology/internal/toposched"
	"github.com/scxkit/scxkit/vmtest"
)

var shape = vmtest.Topology{Sockets: 1, Cores: 4, Threads: 1}

func TestMain(m *testing.M) {
	vmtest.Main(m, &vmtest.Config{Topology: shape})
}

func TestDiscover(t *testing.T) {
	topo, err := topology.Discover(nil)
	if err != nil {
		t.Fatal(err)
	}
	toposched.ExpectShape(t, topo, toposched.ShapeOf(shape, topo.Online))
	toposched.AttachAndCheck(t, topo)
}

// TestOfflineCPU takes CPU 2 offline: discovery and the BPF view drop it,
// and both come back when it returns.
func TestOfflineCPU(t *testing.T) {
	const online = "/sys/devices/system/cpu/cpu2/online"
	setOnline := func(v string) {
		t.Helper()
		if err := os.WriteFile(online, []byte(v), 0); err != nil {
			t.Fatalf("write %s to %s: %v", v, online, err)
		}
	}
	setOnline("0")
	defer setOnline("1")
	topo, err := topology.Discover(nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := topology.MaskOf(0, 1, 3); !topo.Online.Equal(want) {
		t.Fatalf("online %v with cpu2 offline, want %v", topo.Online, want)
	}
	if _, ok := topo.CPU(2); ok {
		t.Error("offline cpu2 is in the tree")
	}
	toposched.ExpectShape(t, topo, toposched.ShapeOf(shape, topo.Online))
	toposched.AttachAndCheck(t, topo)

	setOnline("1")
	topo, err = topology.Discover(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !topo.Online.Equal(topology.MaskOf(0, 1, 2, 3)) {
		t.Errorf("online %v after cpu2 returned, want 0-3", topo.Online)
	}
}
