package topology_test

import (
	"fmt"
	"log"
	"testing/fstest"

	"github.com/scxkit/scxkit/scx"
	"github.com/scxkit/scxkit/topology"
	"github.com/scxkit/scxkit/topology/internal/toposched"
)

// machine returns a sysfs, rooted like "/", of one package with cores
// cores of smt threads numbered as on x86 (thread t of core c is CPU
// c + t*cores), sharing one L3 and one NUMA node.
func machine(cores, smt int) fstest.MapFS {
	fsys := fstest.MapFS{}
	add := func(p, format string, args ...any) {
		fsys[p] = &fstest.MapFile{Data: fmt.Appendf(nil, format+"\n", args...)}
	}
	n := cores * smt
	add("sys/devices/system/cpu/online", "0-%d", n-1)
	add("sys/devices/system/node/online", "0")
	add("sys/devices/system/node/node0/cpulist", "0-%d", n-1)
	add("sys/devices/system/node/node0/distance", "10")
	for cpu := range n {
		dir := fmt.Sprintf("sys/devices/system/cpu/cpu%d/", cpu)
		core := cpu % cores
		var siblings topology.Cpumask
		for t := range smt {
			siblings.Set(core + t*cores)
		}
		add(dir+"topology/physical_package_id", "0")
		add(dir+"topology/core_id", "%d", core)
		add(dir+"topology/core_cpus_list", "%s", siblings)
		add(dir+"cache/index3/level", "3")
		add(dir+"cache/index3/type", "Unified")
		add(dir+"cache/index3/size", "32768K")
		add(dir+"cache/index3/id", "0")
		add(dir+"cache/index3/shared_cpu_list", "0-%d", n-1)
		add(dir+"cpufreq/cpuinfo_max_freq", "%d", 3000000+100000*(core%2)) // odd cores boost higher
	}
	return fsys
}

func ExampleDiscover() {
	// On a real machine, call topology.Discover(nil). Here a synthetic
	// sysfs stands in: 4 cores of 2 threads. It has no cpu/possible and
	// present files, and capacities come from the maximum frequency.
	t, err := topology.Discover(&topology.Options{FS: machine(4, 2)})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(t)
	cpu, _ := t.CPU(5)
	fmt.Printf("cpu 5: core %d, siblings %s, capacity %d from %s\n",
		cpu.Core, t.Cores[cpu.Core].CPUs, cpu.Capacity, cpu.CapacitySource)
	// Output:
	// cpus: possible 0-7, present 0-7, online 0-7
	// capacity source: cpufreq
	// assumed: sys/devices/system/cpu/possible missing: derived 0-7 from cpuN directories
	// assumed: sys/devices/system/cpu/present missing: derived 0-7 from cpuN directories
	// package 0 [0] cpus 0-7
	//   node 0 [0] cpus 0-7 distances [10]
	//     llc 0 [0] L3 32768K cpus 0-7
	//       core 0 [0] big capacity 991 cluster 0 cpus 0,4
	//       core 1 [1] big capacity 1024 cluster 1 cpus 1,5
	//       core 2 [2] big capacity 991 cluster 2 cpus 2,6
	//       core 3 [3] big capacity 1024 cluster 3 cpus 3,7
	// cpu 5: core 1, siblings 1,5, capacity 1024 from cpufreq
}

func ExampleParseCPUList() {
	// The content of /sys/devices/system/cpu/online.
	m, err := topology.ParseCPUList("0-3,8,10-11\n")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(m, m.Weight(), m.Has(9), m.First(), m.Max())
	fmt.Println(m.Slice())
	fmt.Println(m.HexMask())

	_, err = topology.ParseCPUList("0-3,x")
	fmt.Println(err)
	// Output:
	// 0-3,8,10-11 7 false 0 11
	// [0 1 2 3 8 10 11]
	// d0f
	// topology: parse cpulist "0-3,x": invalid input: token "x": "x" is not a CPU id
}

func ExampleCpumask_And() {
	online, _ := topology.ParseCPUList("0-7")
	isolated, _ := topology.ParseCPUList("2-3")
	llc, _ := topology.ParseMask("0000f0f0") // CPUs 4-7 and 12-15

	housekeeping := online.AndNot(isolated)
	fmt.Println(housekeeping)
	fmt.Println(housekeeping.And(llc))
	fmt.Println(llc.Intersects(isolated), isolated.Subset(online))
	for cpu := range online.And(llc).All() {
		fmt.Print(cpu, " ")
	}
	fmt.Println()
	// Output:
	// 0-1,4-7
	// 4-7
	// false true
	// 4 5 6 7
}

func ExampleTopology_SplitLLCs() {
	// 8 cores without SMT sharing one L3, split into LLCs of at most 3
	// cores: 3 virtual LLCs of 2, 3 and 3 consecutive cores.
	t, err := topology.Discover(&topology.Options{FS: machine(8, 1)})
	if err != nil {
		log.Fatal(err)
	}
	split := t.SplitLLCs(3) // what Options.LLCCores = 3 does
	for _, l := range split.LLCs {
		fmt.Printf("llc %d: cpus %s, cores %v, virtual %t, cache id %d\n", l.ID, l.CPUs, l.Cores, l.Virtual, l.KernelID)
	}
	c, _ := split.CPU(6)
	fmt.Println("cpu 6 is in llc", c.LLC)
	fmt.Println("the original has", len(t.LLCs), "llc")
	// Output:
	// llc 0: cpus 0-1, cores [0 1], virtual true, cache id 0
	// llc 1: cpus 2-4, cores [2 3 4], virtual true, cache id 0
	// llc 2: cpus 5-7, cores [5 6 7], virtual true, cache id 0
	// cpu 6 is in llc 2
	// the original has 1 llc
}

// A Topology is the scheduler component "topology": listed in the Config
// of a scheduler whose object includes scxkit/topology.bpf.h, it is
// written into the object's sk_topology global at every load, before the
// scheduler is attached.
func ExampleTopology_Bind() {
	// On a real machine, topology.Discover(nil).
	topo, err := topology.Discover(&topology.Options{FS: machine(4, 2)})
	if err != nil {
		log.Fatal(err)
	}
	// toposched.Sched stands in for your scheduler's objects,
	// scx.Objects{Base: loadX, V2: loadXV2}. Open checks, without a
	// kernel, that the object has what the component needs.
	spec, err := scx.Open(toposched.Sched, scx.Config{Name: "sk_topo", Components: []scx.Component{topo}})
	if err != nil {
		log.Fatal(err)
	}
	for _, c := range spec.Components() {
		fmt.Printf("component %s, from %s\n", c.Name(), c.Needs().Header)
	}
	// With a sched_ext kernel, Load binds it (Topology.Bind fills
	// sk_topology) and Attach makes the scheduler the kernel's:
	//
	//	sched, err := spec.Load(nil)
	//	...
	//	err = sched.Attach()
	// Output:
	// component topology, from scxkit/topology.bpf.h
}
