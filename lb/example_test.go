package lb_test

import (
	"fmt"
	"log"
	"time"

	"github.com/scxkit/scxkit/dsq"
	"github.com/scxkit/scxkit/lb"
	"github.com/scxkit/scxkit/scx"
	"github.com/scxkit/scxkit/topology"
)

func ExampleAdjustWeights() {
	// Seven nice-19-ish tasks and one that, by weight, asks for nearly all
	// of 4 CPUs, every one always runnable.
	weights := []float64{1, 1, 1, 1, 1, 1, 1, 10000}
	duty := []float64{1, 1, 1, 1, 1, 1, 1, 1}
	adj, err := lb.AdjustWeights(nil, weights, duty, 4)
	if err != nil {
		log.Fatal(err)
	}
	var total float64
	for i := range adj {
		total += adj[i] * duty[i]
	}
	fmt.Printf("adjusted: %.4g\n", adj)
	fmt.Printf("heavy task: %.4g of %.4g total load = %.2f CPUs\n", adj[7], total, adj[7]/total*4)
	// Output:
	// adjusted: [1 1 1 1 1 1 1 2.333]
	// heavy task: 2.333 of 9.333 total load = 1.00 CPUs
}

func ExampleBalancer_Balance() {
	// Two NUMA nodes of two 4-CPU domains; all tasks start in domain 0.
	domains := []lb.Domain{
		{ID: 0, Node: 0, CPUs: 4}, {ID: 1, Node: 0, CPUs: 4},
		{ID: 2, Node: 1, CPUs: 4}, {ID: 3, Node: 1, CPUs: 4},
	}
	b, err := lb.New(domains, nil)
	if err != nil {
		log.Fatal(err)
	}
	var tasks []lb.Task
	for pid := range uint64(8) {
		tasks = append(tasks, lb.Task{ID: 100 + pid, Domain: 0, Weight: 100, DutyCycle: 0.5})
	}
	tasks[0].Pinned = true                    // e.g. a per-CPU kthread
	tasks[1].Affinity = []uint64{1<<0 | 1<<1} // may run in domains 0 and 1 only

	var plan []lb.Migration // reused round after round
	plan, st, err := b.Balance(plan, tasks)
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range plan {
		fmt.Printf("task %d: domain %d -> %d (load %g)\n", m.Task, m.From, m.To, m.Load)
	}
	fmt.Printf("spread %.1f -> %.1f per CPU, %d moves, %d across nodes\n",
		st.ImbalanceBefore, st.ImbalanceAfter, st.Moved, st.CrossNode)
	// Output:
	// task 102: domain 0 -> 2 (load 50)
	// task 103: domain 0 -> 3 (load 50)
	// task 104: domain 0 -> 2 (load 50)
	// task 105: domain 0 -> 3 (load 50)
	// task 101: domain 0 -> 1 (load 50)
	// task 106: domain 0 -> 1 (load 50)
	// spread 100.0 -> 0.0 per CPU, 6 moves, 4 across nodes
}

// The balancer as the scheduler component "lb": its domains are the DSQs of
// the scheduler's dsq layout, and the layout comes first in the Config.
func ExampleDomainsOf() {
	// On a real machine, topology.Discover(nil); here two NUMA nodes of
	// two CPUs.
	var topo topology.Topology
	for cpu := range 4 {
		topo.Online.Set(cpu)
		topo.CPUs = append(topo.CPUs, &topology.CPU{ID: cpu, KernelID: cpu, Node: cpu / 2})
	}
	topo.Nodes = []*topology.Node{
		{ID: 0, CPUs: topology.MaskOf(0, 1), Distances: []int{10, 20}},
		{ID: 1, KernelID: 1, CPUs: topology.MaskOf(2, 3), Distances: []int{20, 10}},
	}
	layout, err := dsq.New(&topo, &dsq.Options{Kind: dsq.PerCPU})
	if err != nil {
		log.Fatal(err)
	}
	bal, err := lb.New(lb.DomainsOf(layout), &lb.Options{Interval: 500 * time.Millisecond})
	if err != nil {
		log.Fatal(err)
	}
	// scx.Open(objs, cfg) with your scheduler's objects, built with
	// scxkit/lb.bpf.h; Load binds both, and Run balances every 500ms.
	cfg := scx.Config{Name: "mysched", Components: []scx.Component{layout, bal}}
	for _, d := range lb.DomainsOf(layout) {
		fmt.Printf("domain %d: node %d, %d CPU\n", d.ID, d.Node, d.CPUs)
	}
	n := bal.Needs()
	fmt.Printf("%d components; lb requires %v, calls from %v\n", len(cfg.Components), n.Requires, n.Callbacks)
	// Output:
	// domain 0: node 0, 1 CPU
	// domain 1: node 0, 1 CPU
	// domain 2: node 1, 1 CPU
	// domain 3: node 1, 1 CPU
	// 2 components; lb requires [dsq], calls from [enable disable runnable quiescent enqueue stopping set_cpumask]
}
