package cpuset_test

import (
	"fmt"
	"log"

	"github.com/scxkit/scxkit/cpuset"
	"github.com/scxkit/scxkit/scx"
	"github.com/scxkit/scxkit/topology"
)

// A loader gives a packing scheduler's primary nest ("struct sk_cpuset
// primary SEC(".bss");" in its BPF code) the first core's CPUs, and later
// reads back how BPF grew it.
func Example() {
	var sched *scx.Scheduler // from spec.Load
	topo, err := topology.Discover(nil)
	if err != nil {
		log.Fatal(err)
	}
	primary := sched.Collection().Variables["primary"]
	if err := cpuset.Write(primary, topo.Cores[0].CPUs); err != nil {
		log.Fatal(err) // e.g. "primary" is not a struct sk_cpuset
	}
	// ... later, while the scheduler runs:
	nest, err := cpuset.Read(primary)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("primary nest: %v (%d CPUs)\n", nest, nest.Weight())
}
