package lb

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// gridDomains returns nodes × perNode domains of cpus CPUs each, domain
// k*perNode+j being domain j of node k.
func gridDomains(nodes, perNode, cpus int) []Domain {
	var ds []Domain
	for k := range nodes {
		for j := range perNode {
			ds = append(ds, Domain{ID: k*perNode + j, Node: k, CPUs: cpus})
		}
	}
	return ds
}

// applied returns the per-CPU load of each domain after plan, computed
// from scratch: adjusted weights times duty cycles.
func applied(t *testing.T, domains []Domain, tasks []Task, plan []Migration) (perCPU []float64, total float64) {
	t.Helper()
	w := make([]float64, len(tasks))
	dc := make([]float64, len(tasks))
	cpus := 0
	for _, d := range domains {
		cpus += d.CPUs
	}
	for i, tk := range tasks {
		w[i], dc[i] = tk.Weight, tk.DutyCycle
	}
	adj, err := AdjustWeights(nil, w, dc, cpus)
	if err != nil {
		t.Fatal(err)
	}
	dom := make([]int, len(tasks))
	for i, tk := range tasks {
		dom[i] = tk.Domain
	}
	for _, m := range plan {
		dom[m.Index] = m.To
	}
	load := make([]float64, len(domains))
	for i := range tasks {
		load[dom[i]] += adj[i] * dc[i]
		total += adj[i] * dc[i]
	}
	perCPU = make([]float64, len(domains))
	for _, d := range domains {
		perCPU[d.ID] = load[d.ID] / float64(d.CPUs)
	}
	return perCPU, total
}

func spreadOf(v []float64) float64 {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, x := range v {
		lo, hi = min(lo, x), max(hi, x)
	}
	return hi - lo
}

// eager balances any imbalance, without a migration limit.
var eager = Options{PushThreshold: 1e-9, PullThreshold: 1e-9, MaxMigrationsPerDomain: math.MaxInt}

func mustBalance(t *testing.T, domains []Domain, opts Options, tasks []Task) ([]Migration, RoundStats) {
	t.Helper()
	b, err := New(domains, &opts)
	if err != nil {
		t.Fatal(err)
	}
	plan, st, err := b.Balance(nil, tasks)
	if err != nil {
		t.Fatal(err)
	}
	checkRound(t, domains, b.Options(), tasks, plan, st)
	return plan, st
}

// checkRound checks the invariants every round must keep.
func checkRound(t *testing.T, domains []Domain, opts Options, tasks []Task, plan []Migration, st RoundStats) {
	t.Helper()
	before, total := applied(t, domains, tasks, nil)
	after, totalAfter := applied(t, domains, tasks, plan)
	const eps = 1e-9
	tol := eps * max(1, total)
	if math.Abs(total-totalAfter) > tol || math.Abs(st.TotalLoad-total) > tol {
		t.Errorf("total load %v before, %v after, stats say %v", total, totalAfter, st.TotalLoad)
	}
	if math.Abs(st.ImbalanceBefore-spreadOf(before)) > tol || math.Abs(st.ImbalanceAfter-spreadOf(after)) > tol {
		t.Errorf("stats say imbalance %v -> %v, recomputed %v -> %v",
			st.ImbalanceBefore, st.ImbalanceAfter, spreadOf(before), spreadOf(after))
	}
	if spreadOf(after) > spreadOf(before)+tol {
		t.Errorf("imbalance grew from %v to %v", spreadOf(before), spreadOf(after))
	}
	nodeOf := map[int]int{}
	for _, d := range domains {
		nodeOf[d.ID] = d.Node
	}
	seen := map[int]bool{}
	perDomain := map[int]int{}
	var loadMoved float64
	cross := 0
	for _, m := range plan {
		tk := tasks[m.Index]
		switch {
		case seen[m.Index]:
			t.Errorf("task %d moved twice", m.Task)
		case tk.ID != m.Task || tk.Domain != m.From:
			t.Errorf("migration %+v does not match tasks[%d] = %+v", m, m.Index, tk)
		case tk.Pinned:
			t.Errorf("pinned task %d moved", m.Task)
		case !tk.Allows(m.To):
			t.Errorf("task %d moved to domain %d outside its affinity %b", m.Task, m.To, tk.Affinity)
		case m.From == m.To:
			t.Errorf("task %d moved to its own domain", m.Task)
		case !(m.Load > 0):
			t.Errorf("task %d moved with load %v", m.Task, m.Load)
		}
		seen[m.Index] = true
		perDomain[m.From]++
		perDomain[m.To]++
		loadMoved += m.Load
		if nodeOf[m.From] != nodeOf[m.To] {
			cross++
		}
	}
	for d, c := range perDomain {
		if c > opts.MaxMigrationsPerDomain {
			t.Errorf("domain %d takes part in %d migrations, limit %d", d, c, opts.MaxMigrationsPerDomain)
		}
	}
	if st.Moved != len(plan) || st.CrossNode != cross || math.Abs(st.LoadMoved-loadMoved) > tol {
		t.Errorf("stats say %d moved (%d cross-node, load %v), plan has %d (%d, %v)",
			st.Moved, st.CrossNode, st.LoadMoved, len(plan), cross, loadMoved)
	}
}

func TestBalanceTwoDomains(t *testing.T) {
	// Everything in domain 0; loads 50 to 150. Tolerance: the domains end
	// within one task's load per CPU of each other (150/4 = 37.5), from a
	// spread of about 1000.
	r := rand.New(rand.NewPCG(7, 8))
	domains := gridDomains(1, 2, 4)
	var tasks []Task
	for i := range 40 {
		tasks = append(tasks, Task{ID: uint64(100 + i), Domain: 0, Weight: float64(50 + r.IntN(101)), DutyCycle: 1})
	}
	plan, st := mustBalance(t, domains, eager, tasks)
	after, _ := applied(t, domains, tasks, plan)
	if d := math.Abs(after[0] - after[1]); d > 150.0/4 {
		t.Errorf("domains end at %v and %v per CPU, want within 37.5", after[0], after[1])
	}
	if st.ImbalanceBefore < 900 || st.Moved < 15 {
		t.Errorf("stats %+v: want a spread of about 1000 before and about 20 moves", st)
	}
	t.Logf("spread %.1f -> %.1f with %d moves", st.ImbalanceBefore, st.ImbalanceAfter, st.Moved)
}

func TestBalanceUnevenCapacity(t *testing.T) {
	// 8 CPUs against 2: balanced when domain 0 holds 4/5 of the load.
	domains := []Domain{{ID: 0, CPUs: 8}, {ID: 1, CPUs: 2}}
	var tasks []Task
	for i := range 50 {
		tasks = append(tasks, Task{ID: uint64(i), Domain: 1, Weight: 100, DutyCycle: 1})
	}
	plan, _ := mustBalance(t, domains, eager, tasks)
	after, _ := applied(t, domains, tasks, plan)
	if len(plan) != 40 || after[0] != after[1] {
		t.Errorf("%d moves, per-CPU loads %v: want 40 moves and equal loads", len(plan), after)
	}
}

func TestBalanceNUMAFirst(t *testing.T) {
	// Two nodes of two 1-CPU domains; 8 equal tasks in domain 0. Node
	// balancing moves 4 to node 1, one at a time to its lightest domain,
	// before domain 0 gives 2 to domain 1 within node 0.
	domains := gridDomains(2, 2, 1)
	var tasks []Task
	for i := range 8 {
		tasks = append(tasks, Task{ID: uint64(i), Domain: 0, Weight: 100, DutyCycle: 1})
	}
	plan, st := mustBalance(t, domains, eager, tasks)
	var route []int
	for _, m := range plan {
		route = append(route, m.To)
	}
	if diff := cmp.Diff([]int{2, 3, 2, 3, 1, 1}, route); diff != "" {
		t.Errorf("destinations in plan order (-want +got):\n%s", diff)
	}
	if st.CrossNode != 4 || st.ImbalanceAfter != 0 {
		t.Errorf("stats %+v: want 4 cross-node moves and no imbalance left", st)
	}
}

func TestBalanceAffinityAndPinned(t *testing.T) {
	domains := gridDomains(1, 4, 2)
	var tasks []Task
	for i := range 12 {
		tk := Task{ID: uint64(i), Domain: 0, Weight: 100, DutyCycle: 1}
		switch i % 3 {
		case 0:
			tk.Pinned = true
		case 1:
			tk.Affinity = []uint64{1<<0 | 1<<3} // domains 0 and 3
		}
		tasks = append(tasks, tk)
	}
	plan, st := mustBalance(t, domains, eager, tasks)
	for _, m := range plan {
		if m.Index%3 == 0 {
			t.Errorf("pinned task %d moved", m.Task)
		}
		if m.Index%3 == 1 && m.To != 3 {
			t.Errorf("task %d, allowed in domains 0 and 3, moved to %d", m.Task, m.To)
		}
	}
	if st.RejectedPinned == 0 || st.RejectedAffinity == 0 {
		t.Errorf("stats %+v: want pinned and affinity rejections", st)
	}
	// 4 pinned tasks stay in domain 0, so it keeps at least 400.
	after, _ := applied(t, domains, tasks, plan)
	if after[0] < 200 || spreadOf(after) >= st.ImbalanceBefore {
		t.Errorf("per-CPU loads after %v", after)
	}
}

func TestBalanceAlreadyMoved(t *testing.T) {
	// Node stage fills domain 2 from domain 0; domain 2 then pushes within
	// node 1 to domain 3 and must pass over the tasks it received.
	domains := []Domain{{ID: 0, Node: 0, CPUs: 1}, {ID: 1, Node: 1, CPUs: 1}, {ID: 2, Node: 1, CPUs: 1}}
	var tasks []Task
	for i := range 6 {
		tasks = append(tasks, Task{ID: uint64(i), Domain: 0, Weight: 100, DutyCycle: 1, Affinity: []uint64{0b101}})
	}
	tasks = append(tasks, Task{ID: 99, Domain: 2, Weight: 50, DutyCycle: 1})
	_, st := mustBalance(t, domains, eager, tasks)
	if st.RejectedAlreadyMoved == 0 {
		t.Errorf("stats %+v: want already-moved rejections", st)
	}
}

func TestBalanceThresholds(t *testing.T) {
	// Loads 105 and 95 per CPU around an average of 100.
	domains := gridDomains(1, 2, 1)
	var tasks []Task
	for i := range 20 {
		tasks = append(tasks, Task{ID: uint64(i), Domain: 0, Weight: 10.5, DutyCycle: 1})
		tasks = append(tasks, Task{ID: uint64(100 + i), Domain: 1, Weight: 9.5, DutyCycle: 1})
	}
	for _, tc := range []struct {
		threshold float64
		wantMoves bool
	}{{0.10, false}, {0.04, true}} {
		plan, _ := mustBalance(t, domains, Options{PushThreshold: tc.threshold, PullThreshold: tc.threshold}, tasks)
		if (len(plan) > 0) != tc.wantMoves {
			t.Errorf("thresholds %v: %d moves, want moves: %v", tc.threshold, len(plan), tc.wantMoves)
		}
	}
}

func TestBalanceMigrationLimit(t *testing.T) {
	domains := gridDomains(2, 4, 2)
	var tasks []Task
	for i := range 200 {
		tasks = append(tasks, Task{ID: uint64(i), Domain: 0, Weight: 100, DutyCycle: 0.5})
	}
	plan, _ := mustBalance(t, domains, Options{MaxMigrationsPerDomain: 3}, tasks)
	if len(plan) != 3 {
		t.Errorf("%d moves out of the one loaded domain, want 3", len(plan))
	}
	plan, _ = mustBalance(t, domains, Options{}, tasks)
	if len(plan) != DefaultMaxMigrationsPerDomain {
		t.Errorf("%d moves with the default limit, want %d", len(plan), DefaultMaxMigrationsPerDomain)
	}
}

func TestBalanceMinTaskLoad(t *testing.T) {
	// Domain 0 holds one task at average load and 50 with 1% of it; the
	// light ones stay unless MinTaskLoad lets them go.
	domains := gridDomains(1, 2, 1)
	tasks := []Task{{ID: 0, Domain: 0, Weight: 100, DutyCycle: 1}}
	for i := range 50 {
		tasks = append(tasks, Task{ID: uint64(1 + i), Domain: 0, Weight: 100, DutyCycle: 0.03})
	}
	// Average load per CPU: (100 + 50*3) / 2 = 125; 5% of it is 6.25.
	plan, st := mustBalance(t, domains, Options{}, tasks)
	if len(plan) != 1 || plan[0].Task != 0 {
		t.Errorf("default MinTaskLoad: plan %+v, want only task 0 moved", plan)
	}
	if st.RejectedNoGain < 50 {
		t.Errorf("RejectedNoGain %d, want the 50 light tasks counted", st.RejectedNoGain)
	}
	plan, _ = mustBalance(t, domains, Options{MinTaskLoad: 1e-9}, tasks)
	light := 0
	for _, m := range plan {
		if m.Task != 0 {
			light++
		}
	}
	if light == 0 {
		t.Errorf("MinTaskLoad 1e-9: plan %+v, want light tasks moved too", plan)
	}
	// A task heavier than the threshold moves even when every other
	// is lighter.
	plan, _ = mustBalance(t, domains, Options{MinTaskLoad: 0.5}, tasks)
	if len(plan) != 1 || plan[0].Task != 0 {
		t.Errorf("MinTaskLoad 0.5: plan %+v, want only task 0 moved", plan)
	}
}

func TestBalanceInfeasible(t *testing.T) {
	// One task asks for 10000/10007 of 4 CPUs. Clamped to one CPU's share
	// (7/3), it weighs as much as 2.3 light tasks, and the domains end
	// within one light task per CPU (1/2) of each other; unclamped, nothing
	// could balance it.
	domains := gridDomains(1, 2, 2)
	tasks := []Task{{ID: 1, Domain: 0, Weight: 10000, DutyCycle: 1}}
	for i := range 7 {
		tasks = append(tasks, Task{ID: uint64(10 + i), Domain: 0, Weight: 1, DutyCycle: 1})
	}
	plan, st := mustBalance(t, domains, eager, tasks)
	if st.Clamped != 1 || math.Abs(st.TotalLoad-28.0/3) > 1e-12 {
		t.Errorf("stats %+v: want 1 clamped task and total load 28/3", st)
	}
	for _, m := range plan {
		if m.Task == 1 && math.Abs(m.Load-7.0/3) > 1e-12 {
			t.Errorf("the heavy task moved with load %v, want 7/3", m.Load)
		}
	}
	if st.ImbalanceAfter > 0.5 {
		t.Errorf("spread after %v, want at most 0.5", st.ImbalanceAfter)
	}
}

func TestBalanceErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		domains []Domain
		opts    Options
		want    string
	}{
		{"no domains", nil, Options{}, "no domains"},
		{"id out of range", []Domain{{ID: 1, CPUs: 1}}, Options{}, "domains[0].ID is 1"},
		{"duplicate id", []Domain{{ID: 0, CPUs: 1}, {ID: 0, CPUs: 1}}, Options{}, "used twice"},
		{"no CPUs", []Domain{{ID: 0}}, Options{}, "domains[0].CPUs is 0"},
		{"negative node", []Domain{{ID: 0, Node: -1, CPUs: 1}}, Options{}, "domains[0].Node is -1"},
		{"negative push", gridDomains(1, 1, 1), Options{PushThreshold: -1}, "PushThreshold is -1"},
		{"NaN push", gridDomains(1, 1, 1), Options{PushThreshold: math.NaN()}, "PushThreshold is NaN"},
		{"pull of 1", gridDomains(1, 1, 1), Options{PullThreshold: 1}, "PullThreshold is 1"},
		{"min task load of 2", gridDomains(1, 1, 1), Options{MinTaskLoad: 2}, "MinTaskLoad is 2"},
		{"negative limit", gridDomains(1, 1, 1), Options{MaxMigrationsPerDomain: -1}, "MaxMigrationsPerDomain is -1"},
		{"negative interval", gridDomains(1, 1, 1), Options{Interval: -time.Second}, "Interval is -1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.domains, &tc.opts)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want ErrInvalid mentioning %q", err, tc.want)
			}
		})
	}
	b, err := New(gridDomains(1, 2, 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		task Task
		want string
	}{
		{"unknown domain", Task{ID: 7, Domain: 2, Weight: 100, DutyCycle: 1}, "tasks[1] (id 7) is in domain 2"},
		{"negative weight", Task{ID: 7, Weight: -5, DutyCycle: 1}, "weight -5"},
		{"NaN duty cycle", Task{ID: 7, Weight: 100, DutyCycle: math.NaN()}, "duty cycle NaN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := b.Balance(nil, []Task{{ID: 1, Weight: 100, DutyCycle: 1}, tc.task})
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want ErrInvalid mentioning %q", err, tc.want)
			}
		})
	}
}

// randomRound draws a machine and tasks for the property test.
func randomRound(r *rand.Rand) ([]Domain, Options, []Task) {
	nodes, perNode := 1+r.IntN(4), 1+r.IntN(5)
	var domains []Domain
	for k := range nodes {
		for range perNode {
			domains = append(domains, Domain{Node: 3 * k, CPUs: 1 + r.IntN(8)})
		}
	}
	r.Shuffle(len(domains), func(i, j int) { domains[i], domains[j] = domains[j], domains[i] })
	for i := range domains {
		domains[i].ID = i
	}
	nd := len(domains)
	opts := Options{
		PushThreshold:          []float64{1e-9, 0.05, 0.1, 0.3}[r.IntN(4)],
		PullThreshold:          []float64{1e-9, 0.05, 0.1, 0.3}[r.IntN(4)],
		MaxMigrationsPerDomain: []int{0, 1, 4, math.MaxInt}[r.IntN(4)],
	}
	skew := 1 + 3*r.Float64()
	tasks := make([]Task, r.IntN(300))
	for i := range tasks {
		tk := Task{
			ID:        uint64(1000 + i),
			Domain:    int(float64(nd) * math.Pow(r.Float64(), skew)),
			Weight:    float64(1 + r.IntN(10000)),
			DutyCycle: r.Float64(),
			Pinned:    r.IntN(10) == 0,
		}
		if r.IntN(20) == 0 {
			tk.Weight = 0
		}
		if r.IntN(8) == 0 {
			tk.DutyCycle = 1
		}
		if r.IntN(3) == 0 {
			tk.Affinity = []uint64{r.Uint64() | 1<<tk.Domain}
		}
		tasks[i] = tk
	}
	return domains, opts, tasks
}

func TestBalanceProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	var plan, again []Migration
	moved := 0
	for iter := range 2000 {
		domains, opts, tasks := randomRound(r)
		b, err := New(domains, &opts)
		if err != nil {
			t.Fatal(err)
		}
		var st, st2 RoundStats
		if plan, st, err = b.Balance(plan, tasks); err != nil {
			t.Fatal(err)
		}
		moved += len(plan)
		t.Run("", func(t *testing.T) {
			checkRound(t, domains, b.Options(), tasks, plan, st)
		})
		// A second round on the same input reuses the scratch space and
		// must plan the same.
		if again, st2, err = b.Balance(again, tasks); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(plan, again); diff != "" || st != st2 {
			t.Fatalf("iteration %d: second round differs (-first +second):\n%s\n%+v\n%+v", iter, diff, st, st2)
		}
		if t.Failed() {
			t.Fatalf("iteration %d failed: domains %+v, options %+v", iter, domains, opts)
		}
	}
	if moved < 2000 {
		t.Errorf("only %d migrations in 2000 random rounds: the generator is too gentle", moved)
	}
}

// benchRound is the benchmark's workload: 8 nodes of 8 domains of 8 CPUs
// and 10,000 tasks with random weights and duty cycles, crowded into the
// low-numbered domains (the domain is 64·u³ for uniform u, so domain 0
// holds about 40% of them).
func benchRound() ([]Domain, []Task) {
	r := rand.New(rand.NewPCG(11, 12))
	domains := gridDomains(8, 8, 8)
	tasks := make([]Task, 10000)
	for i := range tasks {
		u := r.Float64()
		tasks[i] = Task{
			ID:        uint64(i + 1),
			Domain:    int(64 * u * u * u),
			Weight:    float64(1 + r.IntN(10000)),
			DutyCycle: r.Float64(),
			Pinned:    r.IntN(50) == 0,
		}
	}
	return domains, tasks
}

func TestBalanceAllocs(t *testing.T) {
	domains, tasks := benchRound()
	b, err := New(domains, nil)
	if err != nil {
		t.Fatal(err)
	}
	plan, st, err := b.Balance(nil, tasks)
	if err != nil {
		t.Fatal(err)
	}
	checkRound(t, domains, b.Options(), tasks, plan, st)
	t.Logf("benchmark round: %+v", st)
	if a := testing.AllocsPerRun(20, func() {
		plan, _, _ = b.Balance(plan, tasks)
	}); a != 0 {
		t.Errorf("%v allocations per round, want 0", a)
	}
}

func BenchmarkBalance(b *testing.B) {
	domains, tasks := benchRound()
	bal, err := New(domains, nil)
	if err != nil {
		b.Fatal(err)
	}
	// A first round grows the scratch space; the loop measures the steady
	// state.
	plan, st, err := bal.Balance(nil, tasks)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		plan, st, _ = bal.Balance(plan, tasks)
	}
	b.ReportMetric(float64(st.Moved), "moves/op")
	b.ReportMetric(st.ImbalanceBefore, "spread-before")
	b.ReportMetric(st.ImbalanceAfter, "spread-after")
}
