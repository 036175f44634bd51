package dsqtest

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/scxkit/scxkit/dsq"
	"github.com/scxkit/scxkit/scx"
	"github.com/scxkit/scxkit/topology"
	"github.com/scxkit/scxkit/vmtest"
	"github.com/scxkit/scxkit/workload"
)

// Two sockets of two cores, one NUMA node each: two LLC domains.
func TestMain(m *testing.M) {
	vmtest.Main(m, &vmtest.Config{Topology: vmtest.Topology{Sockets: 2, Cores: 2, Threads: 1, Nodes: 2}})
}

func TestPerLLCScheduler(t *testing.T) {
	k, err := scx.Probe(nil)
	if err != nil {
		t.Fatal(err)
	}
	topo, err := topology.Discover(nil)
	if err != nil {
		t.Fatal(err)
	}
	layout, err := dsq.New(topo, &dsq.Options{Kind: dsq.PerLLC})
	if err != nil {
		t.Fatal(err)
	}
	if len(layout.DSQs) != 2 {
		t.Fatalf("%d DSQs for 2 LLCs: %+v", len(layout.DSQs), layout.DSQs)
	}
	if _, err := layout.ReadDepths(nil); !errors.Is(err, scx.ErrNotBound) {
		t.Errorf("ReadDepths before Load: %v, want ErrNotBound", err)
	}
	spec, err := scx.Open(Sched, scx.Config{Name: "sk_dsq", Timeout: 10 * time.Second, Components: []scx.Component{layout}})
	if err != nil {
		t.Fatal(err)
	}
	sched, err := spec.Load(nil) // binds the layout: ids, sk_dsq_layout
	if err != nil {
		t.Fatal(err)
	}
	defer sched.Close()
	r, _ := spec.DSQs("dsq")
	for i, d := range layout.DSQs {
		if d.ID != r.ID(i) || d.ID < scx.FirstComponentDSQ {
			t.Errorf("DSQ %d has id %#x after Load, want %#x from the allocated range", i, d.ID, r.ID(i))
		}
	}
	if err := sched.Attach(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, err := sched.Run(ctx, nil)
		done <- err
	}()
	// Sample queue depths while twice as many spinners as CPUs run.
	var maxDepth uint64
	sampled := make(chan error, 1)
	stop := make(chan struct{})
	go func() {
		var depths []uint64
		var err error
		for {
			select {
			case <-stop:
				sampled <- err
				return
			case <-time.After(10 * time.Millisecond):
			}
			if depths, err = layout.ReadDepths(depths); err != nil {
				sampled <- err
				return
			}
			for _, d := range depths {
				maxDepth = max(maxDepth, d)
			}
		}
	}()
	rep, err := workload.Run(context.Background(), workload.Config{Spinners: 8, SpinWork: 200, PingPongPairs: 2, RoundTrips: 300, Deadline: 60 * time.Second})
	close(stop)
	if serr := <-sampled; serr != nil {
		t.Fatal(serr)
	}
	if err != nil {
		t.Fatalf("workload under sk_dsq: %v\n%s", err, rep)
	}
	depths, err := layout.ReadDepths(nil)
	if err != nil {
		t.Fatal(err)
	}
	counters, err := layout.ReadCounters(nil)
	if err != nil {
		t.Fatal(err)
	}
	// The same counters as the component's stats, in the scheduler's
	// snapshot.
	var snap scx.Snapshot
	if err := sched.ReadSnapshot(&snap); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	t.Logf("%s\ndeepest queue seen %d, depths after %v, counters %+v", rep, maxDepth, depths, counters)
	if maxDepth == 0 {
		t.Errorf("no task ever waited in a DSQ with 8 spinners on 4 CPUs")
	}
	if len(depths) != 2 {
		t.Errorf("depths %v: want one per DSQ", depths)
	}
	var inserted, taken uint64
	for _, c := range counters {
		inserted += c.Inserted
		taken += c.Dispatched + c.Stolen
	}
	if inserted == 0 || taken == 0 {
		t.Errorf("counters %+v: want tasks inserted into and taken from the DSQs", counters)
	}
	if taken > inserted {
		t.Errorf("counters %+v: more tasks taken than inserted", counters)
	}
	var snapInserted float64
	for i := range layout.DSQs {
		v, ok := snap.Value("dsq", "inserted", strconv.Itoa(i))
		if _, dok := snap.Value("dsq", "depth", strconv.Itoa(i)); !ok || !dok {
			t.Errorf("snapshot lacks dsq.inserted or dsq.depth of DSQ %d: %+v", i, snap.Sets)
		}
		snapInserted += v
	}
	// Read after the counters, while tasks still come and go.
	if snapInserted < float64(inserted) {
		t.Errorf("snapshot: %v tasks inserted, fewer than the %d read before", snapInserted, inserted)
	}
	if st, err := k.Status(); err != nil || st.State != scx.StateDisabled {
		t.Errorf("after detach: %v, %v", st, err)
	}
}
