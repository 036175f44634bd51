package toposched

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/scxkit/scxkit/scx"
	"github.com/scxkit/scxkit/topology"
	"github.com/scxkit/scxkit/vmtest"
	"github.com/scxkit/scxkit/workload"
)

// Shape is what a qemu topology (vmtest.Topology) must look like to
// Discover: qemu numbers vCPUs socket-major, then core, then thread, and
// vmtest puts whole sockets on each NUMA node.
type Shape struct {
	Packages, Nodes, Cores, CPUs int
	Siblings                     map[int]topology.Cpumask // kernel CPU → its core's CPUs
	Package, Node                map[int]int              // kernel CPU → kernel package / node id
}

// ShapeOf derives the expected shape of vm with only the CPUs of online.
func ShapeOf(vm vmtest.Topology, online topology.Cpumask) Shape {
	sockets, cores, threads, nodes := max(vm.Sockets, 1), max(vm.Cores, 1), max(vm.Threads, 1), max(vm.Nodes, 1)
	s := Shape{Siblings: map[int]topology.Cpumask{}, Package: map[int]int{}, Node: map[int]int{}}
	packages, nodeSet, coreSet := map[int]bool{}, map[int]bool{}, map[int]bool{}
	for cpu := range online.All() {
		core := cpu / threads
		var sib topology.Cpumask
		for t := range threads {
			if online.Has(core*threads + t) {
				sib.Set(core*threads + t)
			}
		}
		pkg := cpu / (cores * threads)
		node := pkg / (sockets / nodes)
		s.Siblings[cpu], s.Package[cpu], s.Node[cpu] = sib, pkg, node
		packages[pkg], nodeSet[node], coreSet[core] = true, true, true
		s.CPUs++
	}
	s.Packages, s.Nodes, s.Cores = len(packages), len(nodeSet), len(coreSet)
	return s
}

// ExpectShape fails t where topo differs from want.
func ExpectShape(t testing.TB, topo *topology.Topology, want Shape) {
	t.Helper()
	if len(topo.Packages) != want.Packages || len(topo.Nodes) != want.Nodes || len(topo.Cores) != want.Cores || len(topo.CPUs) != want.CPUs {
		t.Errorf("discovered %d packages, %d nodes, %d cores, %d CPUs; want %d, %d, %d, %d\n%s",
			len(topo.Packages), len(topo.Nodes), len(topo.Cores), len(topo.CPUs),
			want.Packages, want.Nodes, want.Cores, want.CPUs, topo)
		return
	}
	for _, c := range topo.CPUs {
		sib := topo.Cores[c.Core].CPUs
		if !sib.Equal(want.Siblings[c.KernelID]) {
			t.Errorf("cpu %d: core CPUs %v, want %v", c.KernelID, sib, want.Siblings[c.KernelID])
		}
		if got := topo.Packages[c.Package].KernelID; got != want.Package[c.KernelID] {
			t.Errorf("cpu %d: package %d, want %d", c.KernelID, got, want.Package[c.KernelID])
		}
		if got := topo.Nodes[c.Node].KernelID; got != want.Node[c.KernelID] {
			t.Errorf("cpu %d: node %d, want %d", c.KernelID, got, want.Node[c.KernelID])
		}
		if c.Capacity != 1024 {
			t.Errorf("cpu %d: capacity %d, want 1024 on identical vCPUs", c.KernelID, c.Capacity)
		}
	}
	for _, l := range topo.LLCs {
		// An LLC never spans packages in qemu's CPU model.
		pkg := -1
		for cpu := range l.CPUs.All() {
			if p := want.Package[cpu]; pkg >= 0 && p != pkg {
				t.Errorf("LLC %d (%v) spans packages", l.ID, l.CPUs)
			} else {
				pkg = p
			}
		}
	}
}

// AttachAndCheck loads the test scheduler with topo, attaches it, checks
// the BPF helpers against topo through the attached scheduler's own query
// program, runs a workload so that ops.select_cpu places wakeups with
// sk_topo_pick_idle_cpu, and detaches. It returns the pick counters.
func AttachAndCheck(t testing.TB, topo *topology.Topology) *scx.Stats {
	t.Helper()
	spec, err := scx.Open(Sched, scx.Config{Name: "sk_topo", Components: []scx.Component{topo}})
	if err != nil {
		t.Fatal(err)
	}
	sched, err := spec.Load(nil) // binds topo: fills sk_topology
	if err != nil {
		t.Fatal(err)
	}
	defer sched.Close()
	if err := sched.Attach(); err != nil {
		t.Fatal(err)
	}
	if err := Check(topo, sched.Collection().Programs["topo_query"]); err != nil {
		t.Errorf("BPF helpers disagree with Go while attached:\n%v", err)
	}
	rep, err := workload.Run(context.Background(), workload.Config{
		Spinners: 2, SpinWork: 20, PingPongPairs: len(topo.CPUs), RoundTrips: 300, Deadline: 60 * time.Second,
	})
	if err != nil {
		t.Fatalf("workload under sk_topo: %v\n%s", err, rep)
	}
	var st scx.Stats
	if err := sched.ReadStats(&st); err != nil {
		t.Fatal(err)
	}
	if err := sched.Detach(); err != nil {
		t.Fatal(err)
	}
	var picks uint64
	for _, name := range []string{"pick_core", "pick_llc", "pick_node", "pick_any"} {
		n, _ := st.Get(name)
		picks += n
	}
	if picks == 0 {
		t.Errorf("no wakeup found an idle CPU through sk_topo_pick_idle_cpu: %v", &st)
	}
	t.Logf("%s; stats: %v", rep, &st)
	return &st
}

// String describes a shape, for logs.
func (s Shape) String() string {
	return fmt.Sprintf("%d packages, %d nodes, %d cores, %d CPUs", s.Packages, s.Nodes, s.Cores, s.CPUs)
}
