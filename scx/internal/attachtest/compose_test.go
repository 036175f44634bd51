package attachtest

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/scxkit/scxkit/scx"
	"github.com/scxkit/scxkit/workload"
)

// TestComponents runs compose.bpf.c with its stand-in component Tally
// through the whole contract: Open allocates Tally's DSQs and writes their
// base, Load binds it (tasks go to Tally's queues only once Bind turned
// it on), Run runs its periodic work, and a Snapshot reports its stats
// next to the scheduler's own counters.
func TestComponents(t *testing.T) {
	k := probe(t)
	tally := &Tally{Queues: 3}
	follower := &Follower{}
	spec, err := scx.Open(Compose, scx.Config{Name: "sk_compose", Components: []scx.Component{tally, follower}})
	if err != nil {
		t.Fatal(err)
	}
	sched, err := spec.Load(&scx.LoadOptions{Kernel: k})
	if err != nil {
		t.Fatal(err)
	}
	defer sched.Close()
	if follower.Found != tally {
		t.Errorf("follower's Bind found %p through Binding.Required, want tally %p", follower.Found, tally)
	}
	if err := sched.Attach(); err != nil {
		t.Fatal(err)
	}

	snaps := make(chan scx.Snapshot, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := sched.Run(ctx, &scx.RunOptions{StatsInterval: 20 * time.Millisecond, OnSnapshot: func(s *scx.Snapshot) {
			select {
			case snaps <- cloneSnapshot(s):
			default:
			}
		}})
		done <- err
	}()
	rep, err := workload.Run(context.Background(), workload.Config{Spinners: 3, SpinWork: 10, PingPongPairs: 1, RoundTrips: 200, Deadline: 60 * time.Second})
	if err != nil {
		t.Fatalf("workload: %v\n%s", err, rep)
	}
	end := time.Now()
	// Wait for a snapshot taken after the workload and at least one
	// round of periodic work: conditions, not a sleep.
	var snap scx.Snapshot
	deadline := time.After(30 * time.Second)
	for {
		select {
		case snap = <-snaps:
		case <-deadline:
			t.Fatalf("no snapshot with a round of periodic work within 30s; last: %+v", snap)
		}
		if r, _ := snap.Value("tally", "rounds", ""); r > 0 && snap.Time.After(end) {
			break
		}
	}
	if st := status(t, k); st.State != scx.StateEnabled || st.Ops != "sk_compose" {
		t.Fatalf("while running: %v; want sk_compose enabled", st)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	// Read again once detached: the counters no longer move, so the
	// scheduler's and tally's can be compared exactly.
	if err := sched.ReadSnapshot(&snap); err != nil {
		t.Fatalf("ReadSnapshot after Run: %v", err)
	}

	if first, _ := snap.Value("tally", "first_dsq", ""); uint64(first) != scx.FirstComponentDSQ {
		t.Errorf("first_dsq = %v, want %d (the first component's range starts at FirstComponentDSQ)", first, scx.FirstComponentDSQ)
	}
	enq, ok := snap.Value("", "enqueued", "")
	if !ok || enq == 0 {
		t.Fatalf("scheduler counter enqueued = %v (%v); want > 0", enq, ok)
	}
	var queued float64
	for i := range tally.Queues {
		v, ok := snap.Value("tally", "queued", strconv.Itoa(i))
		if !ok {
			t.Fatalf("no queued{dsq=%d} in %+v", i, snap)
		}
		if v == 0 {
			t.Errorf("queued{dsq=%d} = 0: the workload's tasks should spread over all %d queues by pid", i, tally.Queues)
		}
		queued += v
	}
	// Every enqueue after Bind went to a tally queue; Bind ran before
	// Attach, so all of them did.
	if queued != enq {
		t.Errorf("tally queued %v tasks, the scheduler enqueued %v: every enqueue after Bind goes to a tally queue", queued, enq)
	}
	sets := sched.StatSets()
	if len(sets) != 2 || sets[0].Component != "" || sets[1].Component != "tally" || len(sets[1].Descs) != 3 {
		t.Errorf("StatSets = %+v; want the scheduler's own and tally's", sets)
	} else if d := sets[0].Descs[0]; d.Name != "enqueued" || d.Help != "Tasks the scheduler queued." || d.Kind != scx.Counter {
		t.Errorf("the scheduler's counter: %+v; want enqueued, a Counter with SK_STAT_HELP's text", d)
	}
	// Steady state: a kept Snapshot is refilled without allocating (the
	// per-CPU reads go through internal/percpu).
	if n := testing.AllocsPerRun(20, func() { sched.ReadSnapshot(&snap) }); n != 0 {
		t.Errorf("ReadSnapshot with a kept Snapshot allocates %v times, want 0", n)
	}
	sched.Close()
	if err := sched.ReadSnapshot(&snap); !errors.Is(err, scx.ErrClosed) {
		t.Errorf("ReadSnapshot after Close = %v; want ErrClosed", err)
	}
}

// TestComponentStatsErrorDetaches checks that Run detaches and returns
// the error when a component's stats cannot be read.
func TestComponentStatsErrorDetaches(t *testing.T) {
	k := probe(t)
	tally := &Tally{Queues: 1}
	sched := load(t, Compose, scx.Config{Name: "sk_compose", Components: []scx.Component{tally}})
	if err := sched.Attach(); err != nil {
		t.Fatal(err)
	}
	tally.FailStats.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	info, err := sched.Run(ctx, &scx.RunOptions{StatsInterval: 10 * time.Millisecond, OnSnapshot: func(*scx.Snapshot) {}})
	if !errors.Is(err, errFailStats) {
		t.Fatalf("Run = %v, %v; want the stats error", info, err)
	}
	if ctx.Err() != nil {
		t.Fatal("Run returned only after its context ended")
	}
	if st, ok := waitStatus(t, k, disableWait, func(st scx.Status) bool { return st.State == scx.StateDisabled }); !ok {
		t.Fatalf("after a stats error: %v; want disabled (Run detaches before returning)", st)
	}
}

func cloneSnapshot(s *scx.Snapshot) scx.Snapshot {
	c := *s
	c.Sets = nil
	for _, set := range s.Sets {
		set.Samples = append([]scx.Sample(nil), set.Samples...)
		c.Sets = append(c.Sets, set)
	}
	return c
}
