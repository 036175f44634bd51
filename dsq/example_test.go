package dsq_test

import (
	"fmt"
	"log"

	"github.com/scxkit/scxkit/dsq"
	"github.com/scxkit/scxkit/topology"
)

// A layout of one DSQ per custom domain: which DSQ serves a CPU, and where
// its CPUs steal from.
func ExampleNew() {
	var topo topology.Topology
	for cpu := range 4 {
		topo.Online.Set(cpu)
		topo.CPUs = append(topo.CPUs, &topology.CPU{ID: cpu, KernelID: cpu})
	}
	topo.Nodes = []*topology.Node{{CPUs: topo.Online}}
	l, err := dsq.New(&topo, dsq.Options{
		Kind:    dsq.Custom,
		Domains: []topology.Cpumask{topology.MaskOf(0, 1), topology.MaskOf(2, 3)},
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, d := range l.DSQs {
		fmt.Printf("DSQ %#x serves CPUs %v, steals from %v\n", d.ID, d.CPUs, d.Steal)
	}
	i, _ := l.Of(3)
	fmt.Println("CPU 3 is served by DSQ", i)
	// Output:
	// DSQ 0x100000000 serves CPUs 0-1, steals from [1]
	// DSQ 0x100000001 serves CPUs 2-3, steals from [0]
	// CPU 3 is served by DSQ 1
}
