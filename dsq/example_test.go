package dsq_test

import (
	"fmt"
	"log"

	"github.com/scxkit/scxkit/dsq"
	"github.com/scxkit/scxkit/dsq/internal/dsqtest"
	"github.com/scxkit/scxkit/scx"
	"github.com/scxkit/scxkit/topology"
)

// A layout of one DSQ per custom domain: which DSQ serves a CPU, where its
// CPUs steal from, and the DSQ ids scx.Open allocates to it as the
// component "dsq" of a scheduler.
func ExampleNew() {
	// On a real machine, topology.Discover(nil).
	var topo topology.Topology
	for cpu := range 4 {
		topo.Online.Set(cpu)
		topo.CPUs = append(topo.CPUs, &topology.CPU{ID: cpu, KernelID: cpu})
	}
	topo.Nodes = []*topology.Node{{CPUs: topo.Online}}
	layout, err := dsq.New(&topo, &dsq.Options{
		Kind:    dsq.Custom,
		Domains: []topology.Cpumask{topology.MaskOf(0, 1), topology.MaskOf(2, 3)},
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, d := range layout.DSQs {
		fmt.Printf("DSQ %d serves CPUs %v, steals from %v\n", d.Index, d.CPUs, d.Steal)
	}
	i, _ := layout.Of(3)
	fmt.Println("CPU 3 is served by DSQ", i)

	// dsqtest.Sched stands in for your scheduler's objects,
	// scx.Objects{Base: loadX, V2: loadXV2}, built with scxkit/dsq.bpf.h.
	spec, err := scx.Open(dsqtest.Sched, scx.Config{Name: "sk_dsq", Components: []scx.Component{layout}})
	if err != nil {
		log.Fatal(err)
	}
	r, _ := spec.DSQs("dsq")
	fmt.Printf("ids %#x to %#x, written into sk_dsq_layout when Load binds the layout\n", r.First, r.ID(r.Count-1))
	// With a sched_ext kernel:
	//
	//	sched, err := spec.Load(nil) // Bind: DSQs[i].ID = r.ID(i)
	//	...
	//	err = sched.Attach()
	//	counters, err := layout.ReadCounters(nil)
	// Output:
	// DSQ 0 serves CPUs 0-1, steals from [1]
	// DSQ 1 serves CPUs 2-3, steals from [0]
	// CPU 3 is served by DSQ 1
	// ids 0x100000000 to 0x100000001, written into sk_dsq_layout when Load binds the layout
}
