package energy

import (
	"math/rand/v2"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/scxkit/scxkit/scx"
	"github.com/scxkit/scxkit/topology"
)

//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -tags linux -target bpfel enselftest bpf_selftest.bpf.c -- -mcpu=v3 -Wno-missing-declarations -I../bpf/include

const maxQueries = 4096 // MAX_QUERIES

func loadEnergySelftest(t testing.TB) *ebpf.Collection {
	t.Helper()
	spec, err := loadEnselftest()
	if err != nil {
		t.Fatal(err)
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		t.Fatalf("load bpf_selftest.bpf.c: %+v", err)
	}
	t.Cleanup(func() { coll.Close() })
	return coll
}

// randomModel returns a valid model of nd domains with random CPUs (ids
// below 64, some left out), random frequencies and powers, so that
// some states are inefficient.
func randomModel(t testing.TB, rng *rand.Rand, nd int) *Model {
	t.Helper()
	perm := rng.Perm(64)
	m := &Model{}
	next := 0
	for range nd {
		var cpus topology.Cpumask
		for range 1 + rng.IntN(4) {
			cpus.Set(perm[next])
			next++
		}
		var states []PerfState
		f := uint64(200_000 + rng.IntN(300_000))
		for range 1 + rng.IntN(maxBPFStates) {
			states = append(states, PerfState{FrequencyKHz: f, Power: uint64(1 + rng.IntN(5_000_000))})
			f += uint64(1 + rng.IntN(150_000))
		}
		d, err := NewPerfDomain(cpus, uint64(100+rng.IntN(925)), states)
		if err != nil {
			t.Fatal(err)
		}
		m.Domains = append(m.Domains, d)
	}
	sortDomains(m.Domains)
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestBPFLookupsMatch writes random models into energy.bpf.h's tables and
// checks that the BPF side picks the state SelectPerfState picks, with its
// performance and cost, for random utilisations, and that the plan's warm
// set is what Planner.Write wrote.
func TestBPFLookupsMatch(t *testing.T) {
	coll := loadEnergySelftest(t)
	rng := rand.New(rand.NewPCG(1, 2))
	inefficient := 0
	for round := range 40 {
		m := randomModel(t, rng, 1+rng.IntN(8))
		w, err := New(m, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Bind(scx.NewBinding("energy", coll, nil, scx.DSQRange{})); err != nil {
			t.Fatal(err)
		}
		// Warm: a random subset of the model's CPUs, as one share per
		// domain at a random state.
		var level Level
		for i, d := range m.Domains {
			if rng.IntN(2) == 0 {
				level.Shares = append(level.Shares, Share{Domain: i, CPUs: d.CPUs, State: rng.IntN(len(d.States))})
			}
		}
		if err := w.Write(&level); err != nil {
			t.Fatal(err)
		}

		var queries [maxQueries]enselftestQuery
		n := 0
		maxCPU := m.CPUs().Max()
		for n < maxQueries-8 {
			cpu := rng.IntN(maxCPU + 3)
			queries[n] = enselftestQuery{Cpu: int32(cpu), Util: uint32(rng.IntN(1100))}
			n++
		}
		for _, cpu := range []int32{-1, 511, 512, 100000} {
			queries[n] = enselftestQuery{Cpu: cpu, Util: 10}
			n++
		}
		if err := coll.Variables["queries"].Set(queries); err != nil {
			t.Fatal(err)
		}
		if err := coll.Variables["nr_queries"].Set(uint32(n)); err != nil {
			t.Fatal(err)
		}
		ret, err := coll.Programs["lookup"].Run(&ebpf.RunOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if int(ret) != n {
			t.Fatalf("lookup answered %d of %d", ret, n)
		}
		var answers [maxQueries]enselftestAnswer
		if err := coll.Variables["answers"].Get(&answers); err != nil {
			t.Fatal(err)
		}
		warm := w.Warm()
		for i, q := range queries[:n] {
			want := enselftestAnswer{State: -1, Cost: ^uint64(0), Warm: 0}
			if warm.Has(int(q.Cpu)) {
				want.Warm = 1
			}
			if di := m.DomainOf(int(q.Cpu)); q.Cpu >= 0 && di >= 0 {
				d := &m.Domains[di]
				s := d.States[d.SelectPerfState(float64(q.Util))]
				// The BPF table holds the efficient states only: the
				// index is s's among them.
				idx := 0
				for _, o := range d.States {
					if o.FrequencyKHz == s.FrequencyKHz {
						break
					}
					if !o.Inefficient {
						idx++
					}
				}
				want.State = int32(idx)
				want.Perf = uint32(s.Performance)
				want.Capacity = uint32(d.Capacity())
				want.Cost = s.Cost * uint64(max(q.Util, 1))
				if s.Inefficient {
					t.Fatalf("SelectPerfState picked an inefficient state")
				}
			}
			if got := answers[i]; got != want {
				t.Fatalf("round %d, CPU %d, util %d: BPF %+v, want %+v", round, q.Cpu, q.Util, got, want)
			}
		}
		for _, d := range m.Domains {
			for _, s := range d.States {
				if s.Inefficient {
					inefficient++
				}
			}
		}
	}
	if inefficient == 0 {
		t.Errorf("no model had an inefficient state: the test misses the case")
	}
}
