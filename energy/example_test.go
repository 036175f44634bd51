package energy_test

import (
	"fmt"
	"log"
	"os"
	"testing/fstest"
	"time"

	"github.com/scxkit/scxkit/energy"
	"github.com/scxkit/scxkit/scx"
	"github.com/scxkit/scxkit/topology"
)

// Building the model of the RK3399 from its device tree.
func ExampleFromOPP() {
	little := energy.OPPDomain{
		CPUs:                    topology.MaskOf(0, 1, 2, 3),
		DynamicPowerCoefficient: 100,
		CapacityDMIPSMHz:        485,
		OPPs: []energy.OPP{
			{FrequencyHz: 408000000, MicroVolts: 825000},
			{FrequencyHz: 600000000, MicroVolts: 825000},
			{FrequencyHz: 816000000, MicroVolts: 850000},
			{FrequencyHz: 1008000000, MicroVolts: 925000},
			{FrequencyHz: 1200000000, MicroVolts: 1000000},
			{FrequencyHz: 1416000000, MicroVolts: 1125000},
		},
	}
	big := energy.OPPDomain{
		CPUs:                    topology.MaskOf(4, 5),
		DynamicPowerCoefficient: 436,
		CapacityDMIPSMHz:        1024,
		OPPs: []energy.OPP{
			{FrequencyHz: 408000000, MicroVolts: 825000},
			{FrequencyHz: 1008000000, MicroVolts: 875000},
			{FrequencyHz: 1800000000, MicroVolts: 1200000},
		},
	}
	m, err := energy.FromOPP([]energy.OPPDomain{little, big})
	if err != nil {
		log.Fatal(err)
	}
	for _, d := range m.Domains {
		fmt.Printf("%s cpus %s capacity %d\n", d.Name, d.CPUs, d.Capacity())
		for _, s := range d.States {
			fmt.Printf("  %7d kHz %7d µW performance %4d cost %5d inefficient %t\n", s.FrequencyKHz, s.Power, s.Performance, s.Cost, s.Inefficient)
		}
	}
	// Output:
	// cpu0 cpus 0-3 capacity 381
	//    408000 kHz   27769 µW performance  109 cost  2547 inefficient true
	//    600000 kHz   40837 µW performance  161 cost  2536 inefficient false
	//    816000 kHz   58956 µW performance  219 cost  2692 inefficient false
	//   1008000 kHz   86247 µW performance  271 cost  3182 inefficient false
	//   1200000 kHz  120000 µW performance  322 cost  3726 inefficient false
	//   1416000 kHz  179212 µW performance  381 cost  4703 inefficient false
	// cpu4 cpus 4-5 capacity 1024
	//    408000 kHz  121075 µW performance  232 cost  5218 inefficient false
	//   1008000 kHz  336483 µW performance  573 cost  5872 inefficient false
	//   1800000 kHz 1130112 µW performance 1024 cost 11036 inefficient false
}

// Reading the kernel's model from a copy of debugfs.
func ExampleReadDebugfs() {
	// On a real machine: energy.ReadDebugfs(nil), as root.
	m, err := energy.ReadDebugfs(&energy.Options{FS: fixtureFS("testdata/hi3660.debugfs.txtar")})
	if err != nil {
		log.Fatal(err)
	}
	for _, row := range m.PerCPU() {
		top := row.States[len(row.States)-1]
		fmt.Printf("cpu%d: domain %d, %d states, up to %d kHz, capacity %d\n", row.CPU, row.Domain, len(row.States), top.FrequencyKHz, top.Performance)
	}
	// Output:
	// cpu0: domain 0, 5 states, up to 1844000 kHz, capacity 462
	// cpu1: domain 0, 5 states, up to 1844000 kHz, capacity 462
	// cpu2: domain 0, 5 states, up to 1844000 kHz, capacity 462
	// cpu3: domain 0, 5 states, up to 1844000 kHz, capacity 462
	// cpu4: domain 1, 5 states, up to 2362000 kHz, capacity 1024
	// cpu5: domain 1, 5 states, up to 2362000 kHz, capacity 1024
	// cpu6: domain 1, 5 states, up to 2362000 kHz, capacity 1024
	// cpu7: domain 1, 5 states, up to 2362000 kHz, capacity 1024
}

// The state the kernel predicts for a domain, and the energy it expects.
func ExamplePerfDomain_SelectPerfState() {
	m, err := energy.ReadDebugfs(&energy.Options{FS: fixtureFS("testdata/rk3399.debugfs.txtar")})
	if err != nil {
		log.Fatal(err)
	}
	little := &m.Domains[0]
	for _, util := range []float64{50, 200, 380, 500} {
		i := little.SelectPerfState(util)
		fmt.Printf("util %3.0f: ps:%d (performance %d), energy of one CPU %.0f\n", util, little.States[i].FrequencyKHz, little.States[i].Performance, little.Energy(util, util))
	}
	// Output:
	// util  50: ps:600000 (performance 161), energy of one CPU 126800
	// util 200: ps:816000 (performance 219), energy of one CPU 538400
	// util 380: ps:1416000 (performance 381), energy of one CPU 1787140
	// util 500: ps:1416000 (performance 381), energy of one CPU 2351500
}

// Which CPUs an energy-aware scheduler should keep warm as demand grows.
func ExampleModel_CheapestSets() {
	m, err := energy.ReadDebugfs(&energy.Options{FS: fixtureFS("testdata/rk3399.debugfs.txtar")})
	if err != nil {
		log.Fatal(err)
	}
	t, err := m.CheapestSets(&energy.TableOptions{Granularity: 128})
	if err != nil {
		log.Fatal(err)
	}
	for _, demand := range []float64{100, 300, 600, 1000, 2000, 3500} {
		lv := t.Lookup(demand)
		fmt.Printf("demand %4.0f -> level %4d: cpus %v", demand, lv.Demand, lv.CPUs)
		for _, sh := range lv.Shares {
			fmt.Printf(" [%s ps:%d util %d]", m.Domains[sh.Domain].Name, m.Domains[sh.Domain].States[sh.State].FrequencyKHz, sh.Util)
		}
		fmt.Println()
	}
	// Output:
	// demand  100 -> level  128: cpus [0] [cpu0 ps:600000 util 128]
	// demand  300 -> level  384: cpus [0 1 2] [cpu0 ps:600000 util 384]
	// demand  600 -> level  640: cpus [0 1 2 3] [cpu0 ps:600000 util 640]
	// demand 1000 -> level 1024: cpus [0 1 2 3 4] [cpu0 ps:816000 util 876] [cpu4 ps:816000 util 148]
	// demand 2000 -> level 2048: cpus [0 1 2 3 4 5] [cpu0 ps:1200000 util 1288] [cpu4 ps:816000 util 760]
	// demand 3500 -> level 3572: cpus [0 1 2 3 4 5] [cpu0 ps:1416000 util 1524] [cpu4 ps:1800000 util 2048]
}

// fixtureFS loads a fixture archive; see fixtures_test.go.
func fixtureFS(name string) fstest.MapFS {
	data, err := os.ReadFile(name)
	if err != nil {
		log.Fatal(err)
	}
	files, err := parseArchive(string(data))
	if err != nil {
		log.Fatal(err)
	}
	return mapFS(files)
}

// The energy component of a scheduler: built from the model, listed in the
// scheduler's Config, it writes the model at load and then a plan every
// interval, for the demand the scheduler measures.
func ExampleNew() {
	m, err := energy.ReadDebugfs(&energy.Options{FS: fixtureFS("testdata/rk3399.debugfs.txtar")})
	if err != nil {
		log.Fatal(err)
	}
	runnable := func() (float64, error) { return 0.5, nil } // e.g. read from the scheduler's maps
	en, err := energy.New(m, &energy.PlannerOptions{
		Interval: 250 * time.Millisecond,
		Headroom: 1.25,
		Demand: func() (float64, error) {
			r, err := runnable()
			return r * energy.CapacityScale, err
		},
		Table: &energy.TableOptions{CPUCost: 50000},
	})
	if err != nil {
		log.Fatal(err)
	}
	cfg := scx.Config{Name: "energy", Components: []scx.Component{en}}
	_ = cfg // scx.Open(objs, cfg), or return it from runner.Command.Setup

	n := en.Needs()
	fmt.Printf("%s: include %s; owns %v, calls from %v, forbids %v\n", en.Name(), n.Header, n.Owns, n.Callbacks, n.Forbids)
	fmt.Println("half a task, with headroom, keeps warm CPUs", en.Table().Lookup(0.5*energy.CapacityScale*1.25).CPUs)
	for _, d := range en.Stats() {
		if d.Label != "" {
			fmt.Printf("%s{%s} %v\n", d.Name, d.Label, d.Kind)
		} else {
			fmt.Printf("%s %v\n", d.Name, d.Kind)
		}
	}
	// Output:
	// energy: include scxkit/energy.bpf.h; owns [select_cpu], calls from [dispatch], forbids [SCX_OPS_BUILTIN_IDLE_PER_NODE]
	// half a task, with headroom, keeps warm CPUs [0 1 2 3]
	// demand gauge
	// level_demand gauge
	// warm_cpus gauge
	// plans_written counter
	// pd_warm_cpus{pd} gauge
	// pd_state{pd} gauge
	// pd_perf_target{pd} gauge
	// pd_freq_khz{pd} gauge
}
