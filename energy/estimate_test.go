package energy_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/scxkit/scxkit/energy"
	"github.com/scxkit/scxkit/topology"
)

func TestEstimateHybrid(t *testing.T) {
	m := hybridModel(t, 8, 16, 15)
	if len(m.Domains) != 24 || len(m.Classes()) != 2 {
		t.Fatalf("%d domains, %d classes", len(m.Domains), len(m.Classes()))
	}
	p, e := &m.Domains[0], &m.Domains[8]
	if p.Capacity() != 1024 || e.Capacity() != 620 || p.Microwatts || len(p.States) != 15 || p.States[14].FrequencyKHz != 5400000 || e.States[0].FrequencyKHz != 800000 {
		t.Errorf("P %+v\nE %+v", p, e)
	}
	// The E-cores are the cheaper way to run light and medium loads.
	for _, util := range []float64{50, 200, 600} {
		pc, ec := p.Energy(util, util), e.Energy(util, util)
		if ec >= pc {
			t.Errorf("util %v: E-core energy %v not below P-core %v", util, ec, pc)
		}
	}
	notes := strings.Join(m.Assumed, "\n")
	if !strings.Contains(notes, "cpufreq policy missing for cpus 0-23") || !strings.Contains(notes, "relative units") {
		t.Errorf("Assumed %q", m.Assumed)
	}
}

// rk3399Topology is the RK3399's topology as Discover would find it.
func rk3399Topology() *topology.Topology {
	t := &topology.Topology{}
	for i := range 6 {
		c := &topology.CPU{ID: i, KernelID: i, Capacity: 381, MinFreqKHz: 408000, MaxFreqKHz: 1416000}
		if i >= 4 {
			c.Capacity, c.MaxFreqKHz = 1024, 1800000
		}
		t.CPUs = append(t.CPUs, c)
	}
	return t
}

func TestEstimateCpufreq(t *testing.T) {
	fsys := fstest.MapFS{}
	for cpu := range 6 {
		dir := "sys/devices/system/cpu/cpu" + string(rune('0'+cpu)) + "/cpufreq/"
		if cpu < 4 {
			fsys[dir+"related_cpus"] = &fstest.MapFile{Data: []byte("0 1 2 3\n")}
			fsys[dir+"scaling_available_frequencies"] = &fstest.MapFile{Data: []byte("1416000 408000 600000 816000 1008000 1200000 \n")}
		} else {
			fsys[dir+"related_cpus"] = &fstest.MapFile{Data: []byte("4 5\n")}
			fsys[dir+"cpuinfo_min_freq"] = &fstest.MapFile{Data: []byte("408000\n")}
			fsys[dir+"cpuinfo_max_freq"] = &fstest.MapFile{Data: []byte("1800000\n")}
		}
	}
	m, err := energy.Estimate(rk3399Topology(), &energy.Options{FS: fsys, Steps: 5})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Domains) != 2 || m.Domains[0].CPUs.String() != "0-3" || m.Domains[1].CPUs.String() != "4-5" {
		t.Fatalf("domains %+v", m.Domains)
	}
	var freqs []uint64
	for _, s := range m.Domains[0].States {
		freqs = append(freqs, s.FrequencyKHz)
	}
	if !slices.Equal(freqs, []uint64{408000, 600000, 816000, 1008000, 1200000, 1416000}) || len(m.Domains[1].States) != 5 || m.Domains[1].States[1].FrequencyKHz != 756000 {
		t.Errorf("frequencies %v, big %+v", freqs, m.Domains[1].States)
	}
	// Like the device tree's model, the estimate finds the little cluster
	// cheaper at every load it can carry.
	dt, err := energy.FromOPP(oppDomains(t, parseDT(t, "rk3399")))
	if err != nil {
		t.Fatal(err)
	}
	for util := 10.0; util <= 381; util += 10 {
		for _, mm := range []*energy.Model{m, dt} {
			if l, b := mm.Domains[0].Energy(util, util), mm.Domains[1].Energy(util, util); l >= b {
				t.Errorf("util %v: little %v not below big %v", util, l, b)
			}
		}
	}
}

func TestEstimateFallbacks(t *testing.T) {
	topo := rk3399Topology()
	for _, c := range topo.CPUs {
		c.MinFreqKHz = 0
		if c.KernelID == 5 {
			c.MaxFreqKHz = 0
		}
	}
	m, err := energy.Estimate(topo, &energy.Options{FS: fstest.MapFS{}, Steps: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Domains) != 6 || len(m.Domains[0].States) != 1 || m.Domains[5].States[0].FrequencyKHz != 3000000 {
		t.Errorf("domains %+v", m.Domains)
	}
	notes := strings.Join(m.Assumed, "\n")
	for _, want := range []string{"no minimum frequency for cpus 0-4", "no frequencies for cpus 5"} {
		if !strings.Contains(notes, want) {
			t.Errorf("Assumed %q lacks %q", m.Assumed, want)
		}
	}
	if _, err := energy.Estimate(nil, nil); !errors.Is(err, energy.ErrInvalid) {
		t.Errorf("nil topology: %v", err)
	}
	bad := fstest.MapFS{"sys/devices/system/cpu/cpu0/cpufreq/scaling_available_frequencies": {Data: []byte("fast\n")}}
	if _, err := energy.Estimate(rk3399Topology(), &energy.Options{FS: bad}); !errors.Is(err, energy.ErrInvalid) || !strings.Contains(err.Error(), "scaling_available_frequencies") {
		t.Errorf("bad frequencies: %v", err)
	}
}
