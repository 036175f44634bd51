package smt_test

import (
	"fmt"
	"log"

	"github.com/scxkit/scxkit/smt"
	"github.com/scxkit/scxkit/topology"
)

// Resolve two cgroups and the machine's cores into a layout for a
// scheduler that includes scxkit/smt.bpf.h. The cgroups must exist and
// the layout depends on the machine's cores, so this example has no Output
// and only compiles.
func Example() {
	topo, err := topology.Discover(nil)
	if err != nil {
		log.Fatal(err)
	}
	l, err := smt.New(topo, smt.Config{Isolate: []string{"/tenant-a", "/tenant-b"}})
	if err != nil {
		log.Fatal(err) // e.g. smt: isolate "/tenant-a": no such cgroup under /sys/fs/cgroup: file does not exist
	}
	for _, c := range l.Classes {
		fmt.Printf("class %d: %s (cgroup id %d)\n", c.Index, c.Name(), c.CgroupID)
	}
	// Then, between scx.Spec.Load and Attach:
	//	l.WriteBPF(sched.Collection())
	//	r, _ := smt.NewReader(sched.Collection(), l)
	// and, while it runs, r.Read(nil) gives each class's Counters.
}
