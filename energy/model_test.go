package energy_test

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/scxkit/scxkit/energy"
	"github.com/scxkit/scxkit/topology"
)

func TestNewPerfDomain(t *testing.T) {
	d, err := energy.NewPerfDomain(topology.MaskOf(2, 3), 512, []energy.PerfState{
		{FrequencyKHz: 500000, Power: 100000},
		{FrequencyKHz: 1000000, Power: 150000}, // cheaper per unit of work than 500 MHz
		{FrequencyKHz: 2000000, Power: 600000},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []energy.PerfState{
		{FrequencyKHz: 500000, Power: 100000, Performance: 128, Cost: 7812, Inefficient: true},
		{FrequencyKHz: 1000000, Power: 150000, Performance: 256, Cost: 5859},
		{FrequencyKHz: 2000000, Power: 600000, Performance: 512, Cost: 11718},
	}
	if !slices.Equal(d.States, want) || d.CPUs.String() != "2-3" || d.Capacity() != 512 {
		t.Errorf("got %+v", d)
	}
	for _, tc := range []struct {
		name     string
		capacity uint64
		states   []energy.PerfState
	}{
		{"no states", 1024, nil},
		{"capacity 0", 0, want},
		{"capacity 2000", 2000, want},
		{"unsorted", 1024, []energy.PerfState{{FrequencyKHz: 2, Power: 1}, {FrequencyKHz: 1, Power: 1}}},
		{"duplicate", 1024, []energy.PerfState{{FrequencyKHz: 2, Power: 1}, {FrequencyKHz: 2, Power: 1}}},
		{"power 0", 1024, []energy.PerfState{{FrequencyKHz: 2, Power: 0}}},
		{"power too high", 1024, []energy.PerfState{{FrequencyKHz: 2, Power: energy.MaxPower + 1}}},
		{"performance 0", 1, []energy.PerfState{{FrequencyKHz: 1, Power: 1}, {FrequencyKHz: 2, Power: 1}}},
	} {
		if _, err := energy.NewPerfDomain(topology.MaskOf(0), tc.capacity, tc.states); !errors.Is(err, energy.ErrInvalid) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

func TestValidate(t *testing.T) {
	good := func() *energy.Model {
		m, err := energy.FromOPP(oppDomains(t, parseDT(t, "rk3399")))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	if err := good().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, want string
		edit       func(m *energy.Model)
	}{
		{"nil", "no performance domains", func(m *energy.Model) { m.Domains = nil }},
		{"empty cpus", "no CPUs", func(m *energy.Model) { m.Domains[1].CPUs = topology.Cpumask{} }},
		{"shared cpu", "CPUs 3 are also", func(m *energy.Model) { m.Domains[1].CPUs.Set(3) }},
		{"no states", "no performance states", func(m *energy.Model) { m.Domains[0].States = nil }},
		{"unsorted", "ps:408000: invalid input: frequency not above the 600000 kHz", func(m *energy.Model) {
			s := m.Domains[0].States
			s[0], s[1] = s[1], s[0]
		}},
		{"duplicate", "frequency not above", func(m *energy.Model) { m.Domains[0].States[1].FrequencyKHz = 408000 }},
		{"zero frequency", "frequency 0", func(m *energy.Model) { m.Domains[0].States[0].FrequencyKHz = 0 }},
		{"power", "power 0", func(m *energy.Model) { m.Domains[0].States[2].Power = 0 }},
		{"performance", "performance 2000", func(m *energy.Model) { m.Domains[1].States[7].Performance = 2000 }},
		{"cost", "cost 700000000", func(m *energy.Model) { m.Domains[1].States[7].Cost = 700000000 }},
		{"inefficient", "inefficient is false", func(m *energy.Model) { m.Domains[0].States[0].Inefficient = false }},
		{"efficient", "inefficient is true", func(m *energy.Model) { m.Domains[1].States[7].Inefficient = true }},
	} {
		m := good()
		tc.edit(m)
		err := m.Validate()
		if !errors.Is(err, energy.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	var nilModel *energy.Model
	if err := nilModel.Validate(); !errors.Is(err, energy.ErrInvalid) {
		t.Errorf("nil model: %v", err)
	}
}

func TestPerCPUAndClasses(t *testing.T) {
	m, err := energy.FromOPP(oppDomains(t, parseDT(t, "hi3660")))
	if err != nil {
		t.Fatal(err)
	}
	rows := m.PerCPU()
	if len(rows) != 8 {
		t.Fatalf("%d rows", len(rows))
	}
	for i, r := range rows {
		if r.CPU != i || r.Domain != i/4 || len(r.States) != 5 || m.DomainOf(i) != i/4 {
			t.Errorf("row %d: %+v", i, r)
		}
	}
	if m.DomainOf(8) != -1 || m.CPUs().String() != "0-7" {
		t.Error("DomainOf(8) or CPUs wrong")
	}
	classes := m.Classes()
	if len(classes) != 2 || !slices.Equal(classes[1].Domains, []int{1}) || classes[1].CPUsPerDomain != 4 {
		t.Errorf("classes %+v", classes)
	}

	// A hybrid machine: one domain per CPU, two kinds.
	h := hybridModel(t, 2, 3, 5)
	classes = h.Classes()
	if len(classes) != 2 || !slices.Equal(classes[0].Domains, []int{0, 1}) || !slices.Equal(classes[1].Domains, []int{2, 3, 4}) {
		t.Errorf("hybrid classes %+v", classes)
	}
	if !slices.Equal(classes[1].States(h), h.Domains[4].States) {
		t.Error("Class.States")
	}
	// Same table, different CPU count: different classes.
	h.Domains[4].CPUs.Set(100)
	if got := len(h.Classes()); got != 3 {
		t.Errorf("%d classes after growing a domain", got)
	}
}

func TestSelectPerfState(t *testing.T) {
	m, err := energy.FromOPP(oppDomains(t, parseDT(t, "rk3399")))
	if err != nil {
		t.Fatal(err)
	}
	little := &m.Domains[0] // ps:408000 (performance 109) is inefficient
	for _, tc := range []struct {
		util float64
		want int
	}{
		{0, 1}, {50, 1}, {109, 1}, {161, 1}, {161.5, 2}, {271, 3}, {381, 5}, {382, 5}, {1e9, 5}, {math.Inf(1), 5},
	} {
		if got := little.SelectPerfState(tc.util); got != tc.want {
			t.Errorf("SelectPerfState(%v) = %d, want %d", tc.util, got, tc.want)
		}
	}
	// em_cpu_energy: cost of the state for the busiest CPU × the sum.
	if got, want := little.Energy(200, 500), float64(little.States[2].Cost)*500; got != want {
		t.Errorf("Energy(200, 500) = %v, want %v", got, want)
	}
	if got := little.Energy(200, 0); got != 0 {
		t.Errorf("Energy with no utilisation = %v", got)
	}

	util := []float64{100, 200, 0, 0, 300}
	got, err := m.Energy(util)
	if err != nil {
		t.Fatal(err)
	}
	want := little.Energy(200, 300) + m.Domains[1].Energy(300, 300)
	if got != want {
		t.Errorf("Model.Energy = %v, want %v", got, want)
	}
	for _, bad := range [][]float64{{-1}, {math.NaN()}, {0, 0, 0, 0, 0, 0, 1}, {math.Inf(1)}} {
		if _, err := m.Energy(bad); !errors.Is(err, energy.ErrInvalid) {
			t.Errorf("Energy(%v): %v", bad, err)
		}
	}
	if e, err := m.Energy([]float64{0, 0, 0, 0, 0, 0, 0}); err != nil || e != 0 {
		t.Errorf("idle CPU outside the model: %v, %v", e, err)
	}
}
