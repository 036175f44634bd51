package smt_test

import (
	"fmt"
	"log"

	"github.com/scxkit/scxkit/scx"
	"github.com/scxkit/scxkit/smt"
	"github.com/scxkit/scxkit/topology"
)

// Isolate two cgroups from each other on the machine's SMT cores, in a
// scheduler whose object includes scxkit/smt.bpf.h (as examples/pair's
// does). The cgroups must exist and the layout depends on the machine's
// cores, so this example has no Output and only compiles.
func Example() {
	topo, err := topology.Discover(nil)
	if err != nil {
		log.Fatal(err)
	}
	isolation, err := smt.New(topo, &smt.Options{Isolate: []string{"/tenant-a", "/tenant-b"}})
	if err != nil {
		log.Fatal(err) // e.g. smt: isolate "/tenant-a": no such cgroup under /sys/fs/cgroup: file does not exist
	}
	for _, c := range isolation.Classes {
		fmt.Printf("class %d: %s (cgroup id %d)\n", c.Index, c.Name(), c.CgroupID)
	}
	// smt brings its ops flags (SCX_OPS_ENQ_LAST, ...) and DSQ ids with
	// it; Load binds it before attaching.
	cfg := scx.Config{Name: "pair", Components: []scx.Component{isolation}}
	_ = cfg // scx.Open(objects, cfg), or return it from runner.Command.Setup

	// Once the scheduler is loaded, its stats (smt.runtime_ns{class=...},
	// smt.violations, ...) come with scx.Scheduler.ReadSnapshot, and
	// each class's counters with
	//	counters, err := isolation.Read(counters)
	// which prints, per class, e.g.
	//	/tenant-a run=1520ms fi=310ms fi_n=42 ho=12 pre=3 viol=0
}
