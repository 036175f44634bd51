package energy_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/scxkit/scxkit/energy"
	"github.com/scxkit/scxkit/topology"
)

// randModel returns a random valid model of n domains with at most
// maxCPUs CPUs and maxStates states each, and capacities up to maxCap.
// Every other domain may repeat the previous one's table, so that classes
// hold several domains.
func randModel(t testing.TB, rng *rand.Rand, n, maxCPUs, maxStates int, maxCap uint64) *energy.Model {
	t.Helper()
	m := &energy.Model{}
	cpu := 0
	for i := range n {
		cpus := 1 + rng.IntN(maxCPUs)
		mask := topology.Cpumask{}
		for range cpus {
			mask.Set(cpu)
			cpu++
		}
		if i > 0 && rng.IntN(2) == 0 {
			prev := m.Domains[i-1]
			mask = topology.Cpumask{}
			for range prev.CPUs.Weight() {
				mask.Set(cpu)
				cpu++
			}
			m.Domains = append(m.Domains, energy.PerfDomain{Name: fmt.Sprint("d", i), CPUs: mask, States: slices.Clone(prev.States), Microwatts: true})
			continue
		}
		ns := 1 + rng.IntN(maxStates)
		capacity := uint64(ns) + rng.Uint64N(maxCap-uint64(ns)+1)
		var states []energy.PerfState
		f := uint64(0)
		for range ns {
			f += 1 + rng.Uint64N(100)
			states = append(states, energy.PerfState{FrequencyKHz: f, Power: 1 + rng.Uint64N(5000)})
		}
		// Raise the frequencies so that every state's performance is at
		// least 1.
		for j := range states {
			states[j].FrequencyKHz += f * uint64(ns)
		}
		d, err := energy.NewPerfDomain(mask, capacity, states)
		if err != nil {
			t.Fatal(err)
		}
		d.Name, d.Microwatts = fmt.Sprint("d", i), true
		m.Domains = append(m.Domains, d)
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	return m
}

type choice struct{ k, s int } // k = 0: unused

// bruteOptions lists each domain's choices: unused, or k CPUs at an
// efficient state s.
func bruteOptions(m *energy.Model) [][]choice {
	var all [][]choice
	for _, d := range m.Domains {
		cs := []choice{{}}
		for k := 1; k <= d.CPUs.Weight(); k++ {
			for s, st := range d.States {
				if !st.Inefficient {
					cs = append(cs, choice{k, s})
				}
			}
		}
		all = append(all, cs)
	}
	return all
}

// bruteLP returns, for each demand from 0 to the capacity, the lowest
// energy and then the fewest warm CPUs, by trying every combination of
// choices and filling the cheapest rates first (the optimal split of a
// demand over fixed choices).
func bruteLP(m *energy.Model, cpuCost int64) (energies []int64, cpus []int) {
	opts := bruteOptions(m)
	var capacity int64
	for _, d := range m.Domains {
		capacity += int64(d.CPUs.Weight()) * int64(d.Capacity())
	}
	energies = make([]int64, capacity+1)
	cpus = make([]int, capacity+1)
	for i := range energies {
		energies[i] = math.MaxInt64
	}
	combo := make([]choice, len(m.Domains))
	type item struct{ rate, cap int64 }
	var rec func(i int)
	rec = func(i int) {
		if i < len(combo) {
			for _, c := range opts[i] {
				combo[i] = c
				rec(i + 1)
			}
			return
		}
		var items []item
		warm := 0
		for d, c := range combo {
			if c.k > 0 {
				st := m.Domains[d].States[c.s]
				items = append(items, item{int64(st.Cost), int64(c.k) * int64(st.Performance)})
				warm += c.k
			}
		}
		slices.SortFunc(items, func(a, b item) int { return int(a.rate - b.rate) })
		for demand := int64(0); demand <= capacity; demand++ {
			e, left := cpuCost*int64(warm), demand
			for _, it := range items {
				x := min(left, it.cap)
				e += x * it.rate
				left -= x
			}
			if left > 0 {
				break // more demand fits even less
			}
			if e < energies[demand] || e == energies[demand] && warm < cpus[demand] {
				energies[demand], cpus[demand] = e, warm
			}
		}
	}
	rec(0)
	return energies, cpus
}

// bruteKernel returns, for each demand, the lowest energy the kernel's
// formula gives to a placement of integer utilisations per domain, each
// spread evenly over k of the domain's CPUs, and then the fewest CPUs.
func bruteKernel(m *energy.Model, cpuCost int64) (energies []float64, cpus []int) {
	var capacity int64
	for _, d := range m.Domains {
		capacity += int64(d.CPUs.Weight()) * int64(d.Capacity())
	}
	energies = make([]float64, capacity+1)
	cpus = make([]int, capacity+1)
	for i := range energies {
		energies[i] = math.Inf(1)
	}
	var rec func(d int, demand int64, e float64, warm int)
	rec = func(d int, demand int64, e float64, warm int) {
		if d == len(m.Domains) {
			if e < energies[demand] || e == energies[demand] && warm < cpus[demand] {
				energies[demand], cpus[demand] = e, warm
			}
			return
		}
		dom := &m.Domains[d]
		rec(d+1, demand, e, warm)
		for k := 1; k <= dom.CPUs.Weight(); k++ {
			for u := int64(1); u <= int64(k)*int64(dom.Capacity()); u++ {
				rec(d+1, demand+u, e+dom.Energy(float64(u)/float64(k), float64(u))+float64(cpuCost*int64(k)), warm+k)
			}
		}
	}
	rec(0, 0, 0, 0)
	return energies, cpus
}

// checkLevel checks that a level is a placement of its demand with the
// energy it claims, computed with Model.Energy.
func checkLevel(t *testing.T, m *energy.Model, tb *energy.Table, lv *energy.Level) {
	t.Helper()
	util := make([]float64, m.CPUs().Max()+1)
	var sum int64
	var warm []int
	for _, sh := range lv.Shares {
		d := &m.Domains[sh.Domain]
		k := sh.CPUs.Weight()
		if k == 0 || !sh.CPUs.Subset(d.CPUs) || sh.Util <= 0 || sh.Util > int64(k)*int64(d.States[sh.State].Performance) {
			t.Fatalf("demand %d: bad share %+v", lv.Demand, sh)
		}
		if got := d.SelectPerfState(float64(sh.Util) / float64(k)); got != sh.State {
			t.Errorf("demand %d: share of domain %d has state %d, SelectPerfState gives %d", lv.Demand, sh.Domain, sh.State, got)
		}
		for cpu := range sh.CPUs.All() {
			util[cpu] = float64(sh.Util) / float64(k)
		}
		sum += sh.Util
		warm = append(warm, sh.CPUs.Slice()...)
	}
	if sum != lv.Demand || !slices.Equal(warm, lv.CPUs) {
		t.Fatalf("demand %d: shares carry %d on cpus %v, level says cpus %v", lv.Demand, sum, warm, lv.CPUs)
	}
	e, err := m.Energy(util)
	if err != nil {
		t.Fatal(err)
	}
	e += float64(tb.CPUCost) * float64(len(lv.CPUs))
	if math.Abs(e-lv.Energy) > 1e-9*max(1, e) {
		t.Errorf("demand %d: Model.Energy of the placement is %v, level says %v", lv.Demand, e, lv.Energy)
	}
}

func TestCheapestSetsBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 150 {
		m := randModel(t, rng, 1+rng.IntN(3), 3, 4, 60)
		cpuCost := int64(0)
		if i%3 == 1 {
			cpuCost = rng.Int64N(20000)
		}
		tb, err := m.CheapestSets(&energy.TableOptions{Granularity: 1, CPUCost: uint64(cpuCost)})
		if err != nil {
			t.Fatal(err)
		}
		wantE, wantCPUs := bruteLP(m, cpuCost)
		if len(tb.Levels) != len(wantE) || tb.Capacity != int64(len(wantE)-1) {
			t.Fatalf("model %d: %d levels, capacity %d; want %d levels", i, len(tb.Levels), tb.Capacity, len(wantE))
		}
		for demand, lv := range tb.Levels {
			if lv.Demand != int64(demand) || lv.Energy != float64(wantE[demand]) || len(lv.CPUs) != wantCPUs[demand] {
				t.Fatalf("model %d %+v: demand %d: energy %v with %d CPUs, brute force %d with %d",
					i, m.Domains, demand, lv.Energy, len(lv.CPUs), wantE[demand], wantCPUs[demand])
			}
			checkLevel(t, m, tb, &lv)
		}
	}
}

// TestCheapestSetsKernelSemantics checks that the table's optimum, over
// real-valued shares with a freely chosen efficient state, is the optimum
// of the kernel's own formula over integer placements.
func TestCheapestSetsKernelSemantics(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 40 {
		m := randModel(t, rng, 1+rng.IntN(3), 2, 4, 12)
		cpuCost := int64(0)
		if i%2 == 1 {
			cpuCost = rng.Int64N(3000)
		}
		tb, err := m.CheapestSets(&energy.TableOptions{Granularity: 1, CPUCost: uint64(cpuCost)})
		if err != nil {
			t.Fatal(err)
		}
		wantE, wantCPUs := bruteKernel(m, cpuCost)
		for demand, lv := range tb.Levels {
			if lv.Energy != wantE[demand] || len(lv.CPUs) != wantCPUs[demand] {
				t.Fatalf("model %d %+v: demand %d: energy %v with %d CPUs, kernel brute force %v with %d",
					i, m.Domains, demand, lv.Energy, len(lv.CPUs), wantE[demand], wantCPUs[demand])
			}
		}
	}
}

func TestCheapestSetsFixtures(t *testing.T) {
	for _, soc := range socs {
		t.Run(soc, func(t *testing.T) {
			m, err := energy.ReadDebugfs(&energy.Options{FS: loadFixture(t, soc)})
			if err != nil {
				t.Fatal(err)
			}
			tb, err := m.CheapestSets(nil)
			if err != nil {
				t.Fatal(err)
			}
			if tb.Granularity != energy.DefaultGranularity {
				t.Errorf("granularity %d", tb.Granularity)
			}
			for i := range tb.Levels {
				checkLevel(t, m, tb, &tb.Levels[i])
				if i > 0 && tb.Levels[i].Energy < tb.Levels[i-1].Energy {
					t.Errorf("energy falls from %v to %v at demand %d", tb.Levels[i-1].Energy, tb.Levels[i].Energy, tb.Levels[i].Demand)
				}
			}
			last := tb.Levels[len(tb.Levels)-1]
			if last.Demand != tb.Capacity || len(last.CPUs) != m.CPUs().Weight() {
				t.Errorf("last level: demand %d of %d on %d CPUs", last.Demand, tb.Capacity, len(last.CPUs))
			}
			// A small demand goes to a little CPU at its lowest
			// efficient state.
			lv := tb.Lookup(50)
			if len(lv.CPUs) != 1 || lv.CPUs[0] != 0 || lv.Shares[0].State != m.Domains[0].SelectPerfState(0) {
				t.Errorf("demand 50: %+v", lv)
			}
			if tb.Lookup(0) != &tb.Levels[0] || tb.Lookup(-1) != &tb.Levels[0] || tb.Lookup(1e9) != &tb.Levels[len(tb.Levels)-1] || tb.Lookup(17) != &tb.Levels[2] {
				t.Error("Lookup returned the wrong level")
			}
		})
	}
}

func TestCheapestSetsErrors(t *testing.T) {
	m, err := energy.ReadDebugfs(&energy.Options{FS: loadFixture(t, "rk3399")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.CheapestSets(&energy.TableOptions{Granularity: -1}); err == nil {
		t.Error("negative granularity accepted")
	}
	if _, err := (&energy.Model{}).CheapestSets(nil); !errors.Is(err, energy.ErrInvalid) {
		t.Errorf("empty model: %v", err)
	}
	// One domain of 4096 CPUs: 4M capacity × options is beyond the bounds.
	big := &energy.Model{Domains: []energy.PerfDomain{m.Domains[1]}}
	big.Domains[0].CPUs = topology.Cpumask{}
	for cpu := range 4096 {
		big.Domains[0].CPUs.Set(cpu)
	}
	if _, err := big.CheapestSets(nil); !errors.Is(err, energy.ErrTooBig) {
		t.Errorf("huge model: %v", err)
	}
}

// TestCheapestSetsFixturesExact checks every integer demand of the real
// SoCs against the brute force.
func TestCheapestSetsFixturesExact(t *testing.T) {
	for _, soc := range socs {
		m, err := energy.ReadDebugfs(&energy.Options{FS: loadFixture(t, soc)})
		if err != nil {
			t.Fatal(err)
		}
		for _, cpuCost := range []int64{0, 50000} {
			tb, err := m.CheapestSets(&energy.TableOptions{Granularity: 1, CPUCost: uint64(cpuCost)})
			if err != nil {
				t.Fatal(err)
			}
			wantE, wantCPUs := bruteLP(m, cpuCost)
			for demand, lv := range tb.Levels {
				if lv.Energy != float64(wantE[demand]) || len(lv.CPUs) != wantCPUs[demand] {
					t.Fatalf("%s, CPU cost %d: demand %d: energy %v with %d CPUs, brute force %d with %d", soc, cpuCost, demand, lv.Energy, len(lv.CPUs), wantE[demand], wantCPUs[demand])
				}
			}
		}
	}
}
