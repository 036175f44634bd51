package energy

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/scxkit/scxkit/scx"
	"github.com/scxkit/scxkit/topology"
)

// rk3399 is the RK3399's model from its device tree: CPUs 0-3 little
// (capacity 381), 4-5 big (1024).
func rk3399(t testing.TB) *Model {
	t.Helper()
	m, err := FromOPP([]OPPDomain{{
		CPUs: topology.MaskOf(0, 1, 2, 3), DynamicPowerCoefficient: 100, CapacityDMIPSMHz: 485,
		OPPs: []OPP{{FrequencyHz: 408000000, MicroVolts: 825000}, {FrequencyHz: 600000000, MicroVolts: 825000}, {FrequencyHz: 816000000, MicroVolts: 850000}, {FrequencyHz: 1008000000, MicroVolts: 925000}, {FrequencyHz: 1200000000, MicroVolts: 1000000}, {FrequencyHz: 1416000000, MicroVolts: 1125000}},
	}, {
		CPUs: topology.MaskOf(4, 5), DynamicPowerCoefficient: 436, CapacityDMIPSMHz: 1024,
		OPPs: []OPP{{FrequencyHz: 408000000, MicroVolts: 825000}, {FrequencyHz: 1008000000, MicroVolts: 875000}, {FrequencyHz: 1800000000, MicroVolts: 1200000}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// boundPlanner returns a Planner of m bound to the selftest object.
func boundPlanner(t testing.TB, m *Model, opts *PlannerOptions) *Planner {
	t.Helper()
	p, err := New(m, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Bind(scx.NewBinding("energy", loadEnergySelftest(t), nil, scx.DSQRange{})); err != nil {
		t.Fatal(err)
	}
	return p
}

// stat returns the value of the stat name (with label) in samples.
func stat(t testing.TB, p *Planner, name, label string) float64 {
	t.Helper()
	samples, err := p.ReadStats(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range samples {
		if d := p.Stats()[s.Stat]; d.Name == name && s.Label == label {
			return s.Value
		}
	}
	t.Fatalf("no stat %s{%s}", name, label)
	return 0
}

func TestPlannerNew(t *testing.T) {
	m := rk3399(t)
	for _, c := range []struct {
		name string
		m    *Model
		opts *PlannerOptions
		want error
	}{
		{"nil model", nil, nil, ErrInvalid},
		{"empty model", &Model{}, nil, ErrInvalid},
		{"negative interval", m, &PlannerOptions{Interval: -time.Second}, ErrInvalid},
		{"headroom below 1", m, &PlannerOptions{Headroom: 0.5}, ErrInvalid},
		{"headroom NaN", m, &PlannerOptions{Headroom: math.NaN()}, ErrInvalid},
		{"headroom Inf", m, &PlannerOptions{Headroom: math.Inf(1)}, ErrInvalid},
		{"negative shrink-after", m, &PlannerOptions{ShrinkAfter: -1}, ErrInvalid},
		{"negative granularity", m, &PlannerOptions{Table: &TableOptions{Granularity: -1}}, ErrInvalid},
		{"CPU beyond the BPF layout", &Model{Domains: []PerfDomain{{CPUs: topology.MaskOf(maxBPFCPUs), States: m.Domains[0].States}}}, nil, ErrTooBig},
	} {
		if _, err := New(c.m, c.opts); !errors.Is(err, c.want) {
			t.Errorf("%s: New: %v, want an error wrapping %v", c.name, err, c.want)
		}
	}
	p, err := New(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Name() != "energy" || p.Work() != nil || p.Table() == nil {
		t.Errorf("New(m, nil): name %q, work %v, table %v: want energy, no work without Demand, a table", p.Name(), p.Work(), p.Table())
	}
	n := p.Needs()
	if n.Header != "scxkit/energy.bpf.h" || len(n.Owns) != 1 || n.Owns[0] != "select_cpu" {
		t.Errorf("Needs: %+v", n)
	}
}

// TestPlannerNotBound: before Bind, Write, WriteDemand and Read say so.
func TestPlannerNotBound(t *testing.T) {
	p, err := New(rk3399(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Write(&p.Table().Levels[1]); !errors.Is(err, scx.ErrNotBound) {
		t.Errorf("Write before Bind: %v", err)
	}
	if err := p.WriteDemand(100); !errors.Is(err, scx.ErrNotBound) {
		t.Errorf("WriteDemand before Bind: %v", err)
	}
	if _, err := p.Read(nil); !errors.Is(err, scx.ErrNotBound) {
		t.Errorf("Read before Bind: %v", err)
	}
}

// TestPlannerWriteDemand follows demand up at once and down after
// ShrinkAfter plans, and checks what the BPF side holds and the stats.
func TestPlannerWriteDemand(t *testing.T) {
	m := rk3399(t)
	p := boundPlanner(t, m, &PlannerOptions{Headroom: 1, ShrinkAfter: 3, Table: &TableOptions{Granularity: 128}})

	// Before the first plan: every CPU warm, performance left alone.
	got, err := p.Read(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 6 {
		t.Fatalf("Read: %d CPUs, want 6", len(got))
	}
	for _, c := range got {
		if !c.Warm || c.Perf != 0 {
			t.Errorf("before the first plan: %+v, want warm, perf 0", c)
		}
	}
	if v := stat(t, p, "warm_cpus", ""); v != 6 {
		t.Errorf("warm_cpus before the first plan = %v, want 6", v)
	}
	if v := stat(t, p, "pd_state", "1"); v != -1 {
		t.Errorf("pd_state{pd=1} before the first plan = %v, want -1", v)
	}

	check := func(demand float64, want topology.Cpumask, plans float64) {
		t.Helper()
		if err := p.WriteDemand(demand); err != nil {
			t.Fatal(err)
		}
		if w := p.Warm(); !w.Equal(want) {
			t.Errorf("demand %v: warm %s, want %s", demand, w, want)
		}
		got, err := p.Read(got[:0])
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range got {
			if c.Warm != want.Has(c.CPU) || c.Perf == 0 || c.Perf > CapacityScale {
				t.Errorf("demand %v: BPF plan %+v, want warm %t and a target in 1..1024", demand, c, want.Has(c.CPU))
			}
		}
		if v := stat(t, p, "plans_written", ""); v != plans {
			t.Errorf("demand %v: plans_written = %v, want %v", demand, v, plans)
		}
		if v := stat(t, p, "demand", ""); v != demand {
			t.Errorf("demand stat = %v, want %v", v, demand)
		}
		if v := stat(t, p, "warm_cpus", ""); v != float64(want.Weight()) {
			t.Errorf("demand %v: warm_cpus = %v, want %d", demand, v, want.Weight())
		}
	}
	// Levels of ExampleModel_CheapestSets: 300 needs CPUs 0-2, 2000 all.
	check(300, topology.MaskOf(0, 1, 2), 1)
	if v := stat(t, p, "level_demand", ""); v != 384 {
		t.Errorf("level_demand = %v, want 384", v)
	}
	check(2000, topology.MaskOf(0, 1, 2, 3, 4, 5), 2)
	if v := stat(t, p, "pd_warm_cpus", "1"); v != 2 {
		t.Errorf("pd_warm_cpus{pd=1} = %v, want 2", v)
	}
	big := &m.Domains[1]
	if s, f := stat(t, p, "pd_state", "1"), stat(t, p, "pd_freq_khz", "1"); f != float64(big.States[int(s)].FrequencyKHz) {
		t.Errorf("pd_freq_khz{pd=1} = %v, want the frequency of state %v", f, s)
	}
	// Down: only after three plans in a row want less.
	check(100, topology.MaskOf(0, 1, 2, 3, 4, 5), 2)
	check(100, topology.MaskOf(0, 1, 2, 3, 4, 5), 2)
	check(100, topology.MaskOf(0), 3)
	if v := stat(t, p, "pd_warm_cpus", "1"); v != 0 {
		t.Errorf("pd_warm_cpus{pd=1} = %v, want 0", v)
	}
	if v, want := stat(t, p, "pd_perf_target", "1"), float64(perfTarget(big, 0)); v != want {
		t.Errorf("pd_perf_target{pd=1} of a cold domain = %v, want its lowest state's %v", v, want)
	}
	// No demand: the cheapest CPU stays warm.
	check(0, topology.MaskOf(0), 3)
	check(0, topology.MaskOf(0), 3)
	check(0, topology.MaskOf(0), 4)

	for _, d := range []float64{-1, math.NaN()} {
		if err := p.WriteDemand(d); !errors.Is(err, ErrInvalid) {
			t.Errorf("WriteDemand(%v): %v, want ErrInvalid", d, err)
		}
	}

	// A new load starts without a plan.
	if err := p.Bind(scx.NewBinding("energy", loadEnergySelftest(t), nil, scx.DSQRange{})); err != nil {
		t.Fatal(err)
	}
	if v := stat(t, p, "plans_written", ""); v != 0 {
		t.Errorf("plans_written after a new Bind = %v, want 0", v)
	}
}

func TestPlannerWriteInvalid(t *testing.T) {
	m := rk3399(t)
	p := boundPlanner(t, m, nil)
	for _, l := range []*Level{
		nil,
		{Shares: []Share{{Domain: 2, CPUs: topology.MaskOf(0)}}},
		{Shares: []Share{{Domain: 0, State: 6, CPUs: topology.MaskOf(0)}}},
		{Shares: []Share{{Domain: 0, CPUs: topology.MaskOf(4)}}},
	} {
		if err := p.Write(l); !errors.Is(err, ErrInvalid) {
			t.Errorf("Write(%+v): %v, want ErrInvalid", l, err)
		}
	}
}

// TestPlannerWork: the periodic work measures demand and plans for it; a
// failing measurement stops it.
func TestPlannerWork(t *testing.T) {
	demand, fail := 2000.0, errors.New("no demand")
	var err error
	p := boundPlanner(t, rk3399(t), &PlannerOptions{Interval: time.Second, Demand: func() (float64, error) { return demand, err }})
	work := p.Work()
	if len(work) != 1 || work[0].Every != time.Second {
		t.Fatalf("Work: %+v, want one periodic every second", work)
	}
	if err := work[0].Func(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	if w := p.Warm(); w.Weight() != 6 {
		t.Errorf("after planning for 2000: warm %s, want all 6 CPUs", w)
	}
	err = fail
	if got := work[0].Func(t.Context(), nil); !errors.Is(got, fail) {
		t.Errorf("failing Demand: %v, want it wrapped", got)
	}
}

// TestPlannerReadsAllocateNothing: Read and ReadStats reuse the caller's
// buffer.
func TestPlannerReadsAllocateNothing(t *testing.T) {
	p := boundPlanner(t, rk3399(t), nil)
	if err := p.WriteDemand(500); err != nil {
		t.Fatal(err)
	}
	plans, err := p.Read(nil)
	if err != nil {
		t.Fatal(err)
	}
	samples, err := p.ReadStats(nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { plans, _ = p.Read(plans[:0]) }); n != 0 {
		t.Errorf("Read: %v allocations, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { samples, _ = p.ReadStats(samples[:0]) }); n != 0 {
		t.Errorf("ReadStats: %v allocations, want 0", n)
	}
	for _, s := range samples {
		if s.Stat < 0 || s.Stat >= len(p.Stats()) {
			t.Fatalf("sample %+v: no such stat", s)
		}
		if d := p.Stats()[s.Stat]; (d.Label == "") != (s.Label == "") {
			t.Errorf("sample %+v of %s (label %q)", s, d.Name, d.Label)
		}
	}
	if want := 4 + 4*2; len(samples) != want {
		t.Errorf("%d samples, want %d", len(samples), want)
	}
}

// TestPlannerConcurrent reads the stats and the plan while plans are
// written, as a stats server does while the periodic work runs (go test
// -race).
func TestPlannerConcurrent(t *testing.T) {
	p := boundPlanner(t, rk3399(t), &PlannerOptions{ShrinkAfter: 1})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var samples []scx.Sample
		var plans []CPUPlan
		for range 200 {
			var err error
			if samples, err = p.ReadStats(samples[:0]); err != nil {
				t.Error(err)
				return
			}
			if plans, err = p.Read(plans[:0]); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for i := range 200 {
		if err := p.WriteDemand(float64(i%7) * 500); err != nil {
			t.Fatal(err)
		}
	}
	<-done
}
