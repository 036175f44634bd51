package attachtest

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/scxkit/scxkit/scx"
	"github.com/scxkit/scxkit/workload"
)

// gaugesSched is gauges.bpf.c: counter enqueued, gauge running summed
// over CPUs, global gauge nr_cpus.
var gaugesSched = scx.Objects{Base: loadGauges, V2: loadGaugesV2}

// statsCall is what one OnStats call got, copied.
type statsCall struct {
	sched           *scx.Scheduler
	names           []string
	kinds           []scx.StatKind
	time, prevTime  time.Time
	values, prev    []uint64
	delta           uint64
	deltaOK         bool
	interval        time.Duration
	running, nrCPUs int64
	levelsOK        bool
}

// TestStatsKindsAndDeltas runs gauges.bpf.c with an OnStats callback and
// checks what each call got: the scheduler being run, each stat's kind
// (from the BTF tags and SK_GAUGES_DEFINE), the gauges' levels, and for
// the counter a Delta equal to the difference of this call's total and
// the previous call's, over the Interval between the two calls (the
// first call's from the read Run makes before it).
func TestStatsKindsAndDeltas(t *testing.T) {
	k := probe(t)
	spec, err := scx.Open(gaugesSched, scx.Config{Name: "sk_gauges"})
	if err != nil {
		t.Fatal(err)
	}
	sched, err := spec.Load(&scx.LoadOptions{Kernel: k})
	if err != nil {
		t.Fatal(err)
	}
	defer sched.Close()
	if err := sched.Attach(); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var calls []statsCall
	called := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := sched.Run(ctx, &scx.RunOptions{StatsInterval: 20 * time.Millisecond, OnStats: func(s *scx.Scheduler, st *scx.Stats) {
			c := statsCall{sched: s, names: slices.Clone(st.Names), kinds: slices.Clone(st.Kinds),
				time: st.Time, prevTime: st.PrevTime, values: slices.Clone(st.Values), prev: slices.Clone(st.PrevValues),
				interval: st.Interval()}
			c.delta, c.deltaOK = st.Delta("enqueued")
			var ok1, ok2 bool
			c.running, ok1 = st.Level("running")
			c.nrCPUs, ok2 = st.Level("nr_cpus")
			c.levelsOK = ok1 && ok2
			mu.Lock()
			calls = append(calls, c)
			mu.Unlock()
			select {
			case called <- struct{}{}:
			default:
			}
		}})
		done <- err
	}()
	rep, err := workload.Run(context.Background(), workload.Config{Spinners: 2, SpinWork: 10, PingPongPairs: 1, RoundTrips: 200, Deadline: 60 * time.Second})
	if err != nil {
		t.Fatalf("workload: %v\n%s", err, rep)
	}
	end := time.Now()
	// Wait for two calls after the workload, the second with a delta of
	// its own: conditions, not a sleep.
	deadline := time.After(30 * time.Second)
	for waiting := true; waiting; {
		select {
		case <-called:
		case <-deadline:
			t.Fatalf("no two OnStats calls after the workload within 30s (%d calls)", len(calls))
		}
		mu.Lock()
		after := 0
		for _, c := range calls {
			if c.time.After(end) {
				after++
			}
		}
		waiting = after < 2
		mu.Unlock()
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}

	mu.Lock()
	defer mu.Unlock()
	wantNames := []string{"enqueued", "running", "nr_cpus"}
	wantKinds := []scx.StatKind{scx.Counter, scx.Gauge, scx.Gauge}
	var sum uint64
	for i, c := range calls {
		if c.sched != sched {
			t.Fatalf("call %d: OnStats got scheduler %p, want the one Run runs, %p", i, c.sched, sched)
		}
		if !slices.Equal(c.names, wantNames) || !slices.Equal(c.kinds, wantKinds) {
			t.Fatalf("call %d: names %v kinds %v; want %v %v", i, c.names, c.kinds, wantNames, wantKinds)
		}
		if !c.deltaOK || len(c.prev) != len(c.values) {
			t.Errorf("call %d: no Delta (Prev %v): Run reads a baseline before the first call", i, c.prev)
			continue
		}
		if c.delta != c.values[0]-c.prev[0] || c.interval != c.time.Sub(c.prevTime) || c.interval <= 0 {
			t.Errorf("call %d: Delta %d (%t) over %v; want totals %d - %d over %v - %v",
				i, c.delta, c.deltaOK, c.interval, c.values[0], c.prev[0], c.time, c.prevTime)
		}
		if i > 0 {
			// Each call's Prev is the call before: deltas chain.
			p := calls[i-1]
			if !c.prevTime.Equal(p.time) || !slices.Equal(c.prev, p.values) {
				t.Errorf("call %d: Prev %v at %v; want call %d's values %v at %v", i, c.prev, c.prevTime, i-1, p.values, p.time)
			}
		}
		if !c.levelsOK || c.nrCPUs != int64(runtime.NumCPU()) {
			t.Errorf("call %d: nr_cpus %d (%t); want %d, set by ops.init", i, c.nrCPUs, c.levelsOK, runtime.NumCPU())
		}
		// Each CPU's part is 0 or 1 at any time, so any read sums to
		// between 0 and the number of CPUs.
		if c.running < 0 || c.running > c.nrCPUs {
			t.Errorf("call %d: running %d; want 0..%d", i, c.running, c.nrCPUs)
		}
		sum += c.delta
	}
	last := calls[len(calls)-1]
	if t.Failed() {
		return
	}
	if sum != last.values[0]-calls[0].prev[0] || sum == 0 {
		t.Errorf("deltas sum to %d; want the growth of enqueued over the run, %d - %d, > 0", sum, last.values[0], calls[0].prev[0])
	}
	t.Logf("%d calls; last: enqueued %d (+%d in %v), running %d of %d", len(calls), last.values[0], last.delta, last.interval, last.running, last.nrCPUs)

	// The Snapshot's set of the scheduler's own stats carries the kinds.
	sets := sched.StatSets()
	if len(sets) != 1 || len(sets[0].Descs) != 3 {
		t.Fatalf("StatSets = %+v; want the scheduler's three", sets)
	}
	for i, d := range sets[0].Descs {
		if d.Name != wantNames[i] || d.Kind != wantKinds[i] {
			t.Errorf("StatSets stat %d: %s %v; want %s %v", i, d.Name, d.Kind, wantNames[i], wantKinds[i])
		}
	}
}
