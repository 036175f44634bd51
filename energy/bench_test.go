package energy_test

import (
	"testing"
	"testing/fstest"

	"github.com/scxkit/scxkit/energy"
	"github.com/scxkit/scxkit/topology"
)

// hybridTopology returns an Intel-hybrid-like machine: nP P-cores
// (capacity 1024, 0.8 to 5.4 GHz) then nE E-cores (capacity 620, 0.8 to
// 4.0 GHz), one CPU each.
func hybridTopology(nP, nE int) *topology.Topology {
	t := &topology.Topology{MaxCapacity: 1024}
	for i := range nP + nE {
		c := &topology.CPU{ID: i, KernelID: i, Capacity: 1024, MinFreqKHz: 800000, MaxFreqKHz: 5400000}
		if i >= nP {
			c.Capacity, c.MaxFreqKHz = 620, 4000000
		}
		t.CPUs = append(t.CPUs, c)
	}
	return t
}

// hybridModel estimates the model of hybridTopology: without cpufreq
// files, one performance domain per CPU, with steps states each.
func hybridModel(t testing.TB, nP, nE, steps int) *energy.Model {
	t.Helper()
	m, err := energy.Estimate(hybridTopology(nP, nE), &energy.Options{FS: fstest.MapFS{}, Steps: steps})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// BenchmarkCheapestSetsHybrid24 builds the table of a 24-CPU hybrid
// machine, 8 P-CPUs and 16 E-CPUs, each its own performance domain with
// 15 states.
func BenchmarkCheapestSetsHybrid24(b *testing.B) {
	m := hybridModel(b, 8, 16, 15)
	if len(m.Domains) != 24 || len(m.Classes()) != 2 || len(m.Domains[0].States) != 15 {
		b.Fatalf("model: %d domains, %d classes", len(m.Domains), len(m.Classes()))
	}
	b.ReportAllocs()
	var tb *energy.Table
	for b.Loop() {
		var err error
		if tb, err = m.CheapestSets(nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(tb.Levels)), "levels")
}

// BenchmarkCheapestSetsHybrid24Exact is the same table with a level per
// unit of capacity.
func BenchmarkCheapestSetsHybrid24Exact(b *testing.B) {
	m := hybridModel(b, 8, 16, 15)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.CheapestSets(&energy.TableOptions{Granularity: 1}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadDebugfs(b *testing.B) {
	fsys := loadFixture(b, "rk3399")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := energy.ReadDebugfs(&energy.Options{FS: fsys}); err != nil {
			b.Fatal(err)
		}
	}
}
