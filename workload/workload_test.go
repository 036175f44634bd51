//go:build linux

package workload

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// small is a workload that finishes in well under a second natively.
var small = Config{Spinners: 2, SpinWork: 20, PingPongPairs: 2, RoundTrips: 200, Deadline: 30 * time.Second}

// huge is a workload that never finishes in a test.
var huge = Config{Spinners: 2, SpinWork: 1 << 40, PingPongPairs: 1, RoundTrips: 1 << 40}

func TestRunCompletes(t *testing.T) {
	rep, err := Run(context.Background(), small)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	t.Logf("\n%v", rep)
	if got, want := len(rep.Threads), small.Spinners+2*small.PingPongPairs; got != want {
		t.Fatalf("report has %d threads, want %d", got, want)
	}
	for i, tr := range rep.Threads {
		wantKind, wantID, wantWork := KindSpin, i, small.SpinWork
		if i >= small.Spinners {
			wantKind, wantID, wantWork = KindPingPong, i-small.Spinners, small.RoundTrips
		}
		if tr.Kind != wantKind || tr.ID != wantID || tr.Want != wantWork || tr.Done != tr.Want {
			t.Errorf("thread %d: %+v, want %s %d with Done == Want == %d", i, tr, wantKind, wantID, wantWork)
		}
		if tr.Elapsed <= 0 || tr.Elapsed > rep.Elapsed {
			t.Errorf("thread %d: Elapsed %v, want in (0, %v]", i, tr.Elapsed, rep.Elapsed)
		}
	}
}

func TestRunDefaults(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the default workload, about 200ms of every CPU")
	}
	rep, err := Run(context.Background(), Config{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	t.Logf("\n%v", rep)
	var spin, pingPong int
	for _, tr := range rep.Threads {
		switch tr.Kind {
		case KindSpin:
			spin++
			if tr.Want != DefaultSpinWork {
				t.Errorf("%s %d: Want %d, want %d", tr.Kind, tr.ID, tr.Want, DefaultSpinWork)
			}
		case KindPingPong:
			pingPong++
			if tr.Want != DefaultRoundTrips {
				t.Errorf("%s %d: Want %d, want %d", tr.Kind, tr.ID, tr.Want, DefaultRoundTrips)
			}
		}
	}
	if spin != runtime.NumCPU() || pingPong != 2*DefaultPingPongPairs {
		t.Errorf("%d spinners and %d ping-pong threads, want %d and %d", spin, pingPong, runtime.NumCPU(), 2*DefaultPingPongPairs)
	}
}

// checkIncomplete checks that err is an *IncompleteError for rep and that
// errors.Is(err, cause).
func checkIncomplete(t *testing.T, rep *Report, err, cause error) {
	t.Helper()
	var inc *IncompleteError
	if !errors.As(err, &inc) {
		t.Fatalf("Run error %v (%T), want an *IncompleteError", err, err)
	}
	if !errors.Is(err, cause) {
		t.Errorf("Run error %q does not wrap %v", err, cause)
	}
	if rep == nil {
		t.Fatal("Run returned a nil Report with its error")
	}
	t.Logf("%v\n%v", err, rep)
	if len(inc.Unfinished) != len(rep.Threads) {
		t.Errorf("%d unfinished threads, want all %d", len(inc.Unfinished), len(rep.Threads))
	}
	for i, tr := range rep.Threads {
		if tr.Finished() {
			t.Errorf("thread %d: %+v finished a huge workload", i, tr)
		}
		if i < len(inc.Unfinished) && inc.Unfinished[i] != tr {
			t.Errorf("Unfinished[%d] = %+v, want %+v", i, inc.Unfinished[i], tr)
		}
	}
	for _, s := range []string{"workload incomplete after ", ": spin 0 did ", ", spin 1 did ", ", pingpong 1 did "} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not contain %q", err, s)
		}
	}
}

func TestRunDeadline(t *testing.T) {
	cfg := huge
	cfg.Deadline = time.Millisecond
	start := time.Now()
	rep, err := Run(context.Background(), cfg)
	// The work would take hours; stopping it takes a few scheduler
	// periods to start and stop the threads, longer on a loaded host.
	// A minute still tells a Run that honours the deadline from one that
	// waits for the work, with room for a host starving the test.
	if d := time.Since(start); d > time.Minute {
		t.Errorf("Run took %v with a 1ms deadline", d)
	}
	checkIncomplete(t, rep, err, context.DeadlineExceeded)
	if want := "(deadline 1ms exceeded): "; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}
}

func TestRunCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	rep, err := Run(ctx, huge)
	checkIncomplete(t, rep, err, context.Canceled)
	// Both kinds of thread made progress before the cancel.
	for _, tr := range rep.Threads {
		if tr.Done == 0 {
			t.Errorf("%s %d did nothing in 100ms", tr.Kind, tr.ID)
		}
	}
}

func TestRunCanceledBeforeStart(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	errStop := errors.New("test stop")
	cancel(errStop)
	rep, err := Run(ctx, huge)
	checkIncomplete(t, rep, err, errStop)
}

func TestRunConcurrent(t *testing.T) {
	before := runtime.GOMAXPROCS(0)
	errs := make(chan error)
	for range 3 {
		go func() {
			_, err := Run(context.Background(), small)
			errs <- err
		}()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if after := runtime.GOMAXPROCS(0); after != before {
		t.Errorf("GOMAXPROCS is %d after the runs, was %d before", after, before)
	}
}

func TestRunGOMAXPROCS(t *testing.T) {
	before := runtime.GOMAXPROCS(0)
	cfg := small
	cfg.Spinners = before + 3
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg.SpinWork = 1 << 40
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, cfg)
	}()
	want := cfg.Spinners + 2*cfg.PingPongPairs + 1
	// A poll: the deadline only decides a failure, so it is generous.
	for deadline := time.Now().Add(30 * time.Second); runtime.GOMAXPROCS(0) < want; {
		if time.Now().After(deadline) {
			t.Fatalf("GOMAXPROCS is %d during the run, want >= %d", runtime.GOMAXPROCS(0), want)
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	if after := runtime.GOMAXPROCS(0); after != before {
		t.Errorf("GOMAXPROCS is %d after the run, was %d before", after, before)
	}
}

func TestConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Spinners: -1}, "Spinners is -1"},
		{Config{SpinWork: -2}, "SpinWork is -2"},
		{Config{PingPongPairs: -3}, "PingPongPairs is -3"},
		{Config{RoundTrips: -4}, "RoundTrips is -4"},
		{Config{Deadline: -time.Second}, "Deadline is -1s"},
		{Config{Spinners: MaxThreads + 1}, "Spinners + 2*PingPongPairs is"},
		{Config{Spinners: 1, PingPongPairs: MaxThreads / 2}, "Spinners + 2*PingPongPairs is"},
		{Config{PingPongPairs: int(^uint(0) >> 1)}, "Spinners + 2*PingPongPairs is"},
	} {
		rep, err := Run(context.Background(), tc.cfg)
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Run(%+v): error %v, want ErrInvalidConfig naming %q", tc.cfg, err, tc.want)
		}
		if rep != nil {
			t.Errorf("Run(%+v): non-nil report %v for an invalid config", tc.cfg, rep)
		}
	}
}

// openFDs returns the number of open file descriptors of the process.
func openFDs(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("count open files: %v", err)
	}
	return len(fds)
}

func TestNoLeaks(t *testing.T) {
	// Warm up whatever the runtime and the test framework open once.
	Run(context.Background(), small)
	fds, goroutines := openFDs(t), runtime.NumGoroutine()

	if _, err := Run(context.Background(), small); err != nil {
		t.Fatalf("Run: %v", err)
	}
	cfg := huge
	cfg.PingPongPairs = 3
	cfg.Deadline = 20 * time.Millisecond
	if _, err := Run(context.Background(), cfg); err == nil {
		t.Fatal("Run of a huge workload did not fail")
	}

	if got := openFDs(t); got != fds {
		t.Errorf("%d open file descriptors after Run, %d before", got, fds)
	}
	// A workload goroutine exits just after it tells Run it is done. A
	// poll: the deadline only decides a failure, so it is generous.
	for deadline := time.Now().Add(30 * time.Second); runtime.NumGoroutine() > goroutines; {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after Run, %d before", runtime.NumGoroutine(), goroutines)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestIncompleteErrorMessage(t *testing.T) {
	err := &IncompleteError{
		Elapsed: 60*time.Second + 123456*time.Nanosecond,
		Cause:   deadlineError{60 * time.Second},
		Unfinished: []ThreadReport{
			{Kind: KindSpin, ID: 3, Done: 120, Want: 1000},
			{Kind: KindPingPong, ID: 0, Done: 5, Want: 2000},
		},
	}
	const want = "workload incomplete after 1m0s (deadline 1m0s exceeded): spin 3 did 120/1000, pingpong 0 did 5/2000"
	if err.Error() != want {
		t.Errorf("Error() = %q, want %q", err, want)
	}
}

func TestReportString(t *testing.T) {
	ms := time.Millisecond
	rep := &Report{Elapsed: 412 * ms, Threads: []ThreadReport{
		{KindSpin, 0, 10, 10, 400 * ms},
		{KindSpin, 1, 10, 10, 410 * ms},
		{KindSpin, 2, 9, 10, 300 * ms},
		{KindPingPong, 0, 20, 20, 100 * ms},
		{KindPingPong, 1, 20, 20, 102 * ms},
	}}
	const want = "workload: 5 threads in 412ms, slowest spin 1 (410ms)\n" +
		"  spin x3 (10 units): min 300ms, median 400ms, max 410ms, 1 unfinished\n" +
		"  pingpong x2 (20 round trips): min 100ms, median 101ms, max 102ms"
	if got := rep.String(); got != want {
		t.Errorf("String() =\n%s\nwant\n%s", got, want)
	}
	if got := (*Report)(nil).String(); got != "workload: no report" {
		t.Errorf("nil String() = %q", got)
	}
}

// BenchmarkPingPong measures a round trip of one ping-pong pair: two pipe
// writes and two blocking reads, so two sleeps and two wakeups.
func BenchmarkPingPong(b *testing.B) {
	cfg := Config{PingPongPairs: 1, RoundTrips: b.N, Deadline: time.Hour}
	rep, err := run(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	// The slower side's time, without the setup of threads and pipes.
	elapsed := max(rep.Threads[0].Elapsed, rep.Threads[1].Elapsed)
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(b.N), "ns/roundtrip")
}

// BenchmarkSpinUnit measures one unit of spin work, on which DefaultSpinWork
// is based.
func BenchmarkSpinUnit(b *testing.B) {
	x := uint64(1)
	for b.Loop() {
		x = spinUnit(x)
	}
	if x == 0 {
		b.Fatal("xorshift reached 0")
	}
}

func TestRequests(t *testing.T) {
	cfg := RequestConfig{Threads: 2, Period: 2 * time.Millisecond, Work: 100 * time.Microsecond, Duration: 300 * time.Millisecond}
	rep, err := Requests(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	// At most 2 threads × 300ms / 2ms, exactly that on an idle host. A
	// loaded host makes a thread miss periods, as many as it likes (the
	// loop drops them by design), so the lower bound is what holds
	// whatever the load: every thread serves its first request, due
	// before the end, and keeps going until a due time reaches the end,
	// so the load lasts at least Duration less a Period.
	if most := cfg.Threads * int(cfg.Duration/cfg.Period); rep.Requests < cfg.Threads || rep.Requests > most {
		t.Errorf("%d requests, want %d to %d", rep.Requests, cfg.Threads, most)
	}
	if rep.Elapsed < cfg.Duration-cfg.Period {
		t.Errorf("the load ran %v, want at least Duration - Period = %v: a thread stopped early", rep.Elapsed, cfg.Duration-cfg.Period)
	}
	if !slices.IsSorted(rep.Latencies) || rep.Percentile(50) > rep.Percentile(99) || rep.Percentile(100) != rep.Latencies[len(rep.Latencies)-1] {
		t.Errorf("latencies not sorted or percentiles inconsistent: p50 %v p99 %v", rep.Percentile(50), rep.Percentile(99))
	}
	if rep.Latencies[0] < 0 {
		t.Errorf("negative latency %v: woke before the timer", rep.Latencies[0])
	}
	t.Logf("%d requests in %v: p50 %v p99 %v max %v", rep.Requests, rep.Elapsed, rep.Percentile(50), rep.Percentile(99), rep.Percentile(100))
}

func TestRequestsInvalid(t *testing.T) {
	for _, c := range []RequestConfig{{Threads: -1}, {Period: time.Millisecond, Work: time.Millisecond}, {Duration: -1}} {
		if _, err := Requests(context.Background(), c); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("Requests(%+v) = %v, want ErrInvalidConfig", c, err)
		}
	}
}

// requestsCfg is a short request load for the tests of the hooks.
var requestsCfg = RequestConfig{Threads: 4, Period: 2 * time.Millisecond, Work: 50 * time.Microsecond, Duration: 60 * time.Millisecond}

// countingCtx counts the calls to its Err method, which a request thread
// makes before each request: none may come before Ready returns.
type countingCtx struct {
	context.Context
	errs atomic.Int64
}

func (c *countingCtx) Err() error {
	c.errs.Add(1)
	return c.Context.Err()
}

var errBoom = errors.New("boom")

// TestRequestsThreadSetup checks that ThreadSetup runs once per thread,
// each on its own OS thread already set up by Requests, and that these OS
// threads are retired afterwards rather than reused.
func TestRequestsThreadSetup(t *testing.T) {
	var (
		mu   sync.Mutex
		tids = map[int]int{} // thread number → tid
	)
	cfg := requestsCfg
	cfg.ThreadSetup = func(thread int) error {
		// Requests set the slack of the thread's OS thread: ThreadSetup
		// runs on that OS thread.
		if slack, err := unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0); err != nil || slack != 1 {
			return fmt.Errorf("timer slack %d (%v), want 1", slack, err)
		}
		mu.Lock()
		defer mu.Unlock()
		if _, ok := tids[thread]; ok {
			return fmt.Errorf("thread %d set up twice", thread)
		}
		tids[thread] = unix.Gettid()
		return nil
	}
	rep, err := Requests(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Requests == 0 {
		t.Errorf("no request served")
	}
	distinct := map[int]bool{}
	for i := range cfg.Threads {
		tid, ok := tids[i]
		if !ok {
			t.Errorf("thread %d was not set up", i)
		}
		distinct[tid] = true
	}
	if len(tids) != cfg.Threads || len(distinct) != cfg.Threads {
		t.Fatalf("set up threads %v (thread number → tid), want %d on distinct OS threads", tids, cfg.Threads)
	}
	// Each OS thread exits with its request thread (the runtime parks the
	// process's main thread instead: it cannot exit).
	deadline := time.Now().Add(10 * time.Second)
	for i, tid := range tids {
		if tid == os.Getpid() {
			continue
		}
		task := fmt.Sprintf("/proc/self/task/%d", tid)
		for {
			_, err := os.Stat(task)
			if errors.Is(err, os.ErrNotExist) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the OS thread of request thread %d (%s: %v) is still there: it was unlocked and reused", i, task, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func TestRequestsThreadSetupError(t *testing.T) {
	var setups atomic.Int32
	readies := 0
	cfg := requestsCfg
	cfg.ThreadSetup = func(thread int) error {
		setups.Add(1)
		if thread == 1 {
			return errBoom
		}
		return nil
	}
	cfg.Ready = func() error { readies++; return nil }
	ctx := &countingCtx{Context: context.Background()}
	rep, err := Requests(ctx, cfg)
	if !errors.Is(err, errBoom) || !strings.Contains(err.Error(), "thread 1") {
		t.Errorf("Requests = %v, want %v for thread 1", err, errBoom)
	}
	if rep != nil {
		t.Errorf("a report of %d requests after a failed setup", rep.Requests)
	}
	if n := setups.Load(); n != int32(cfg.Threads) {
		t.Errorf("ThreadSetup called %d times, want %d", n, cfg.Threads)
	}
	if readies != 0 {
		t.Errorf("Ready called after a failed setup")
	}
	if n := ctx.errs.Load(); n != 0 {
		t.Errorf("requests started after a failed setup (%d checks of ctx)", n)
	}
}

func TestRequestsReady(t *testing.T) {
	var setups atomic.Int32
	readies, setupsAtReady, errsAtReady := 0, int32(0), int64(0)
	ctx := &countingCtx{Context: context.Background()}
	cfg := requestsCfg
	cfg.ThreadSetup = func(int) error { setups.Add(1); return nil }
	cfg.Ready = func() error {
		readies++
		setupsAtReady, errsAtReady = setups.Load(), ctx.errs.Load()
		return nil
	}
	rep, err := Requests(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if readies != 1 {
		t.Errorf("Ready called %d times, want once", readies)
	}
	if setupsAtReady != int32(cfg.Threads) {
		t.Errorf("Ready called after %d of %d thread setups", setupsAtReady, cfg.Threads)
	}
	if errsAtReady != 0 {
		t.Errorf("requests started before Ready (%d checks of ctx)", errsAtReady)
	}
	if ctx.errs.Load() == 0 {
		t.Errorf("the request threads never checked ctx: the test cannot tell when they started")
	}
	if rep.Requests == 0 {
		t.Errorf("no request served")
	}
}

func TestRequestsReadyError(t *testing.T) {
	ctx := &countingCtx{Context: context.Background()}
	cfg := requestsCfg
	cfg.Ready = func() error { return errBoom }
	rep, err := Requests(ctx, cfg)
	if !errors.Is(err, errBoom) {
		t.Errorf("Requests = %v, want %v", err, errBoom)
	}
	if rep != nil {
		t.Errorf("a report of %d requests after Ready failed", rep.Requests)
	}
	if n := ctx.errs.Load(); n != 0 {
		t.Errorf("requests started after Ready failed (%d checks of ctx)", n)
	}
}

// TestStaggered checks the offsets of the threads' first requests: spread
// evenly over the period, even a period whose multiples overflow.
func TestStaggered(t *testing.T) {
	for _, period := range []time.Duration{5 * time.Millisecond, 7, math.MaxInt64} {
		for _, n := range []int{1, 2, 3, 7, MaxThreads} {
			prev := int64(-1)
			for i := range n {
				got := staggered(period, i, n)
				want := new(big.Int).Mul(big.NewInt(int64(period)), big.NewInt(int64(i)))
				want.Quo(want, big.NewInt(int64(n)))
				if got != want.Int64() {
					t.Fatalf("staggered(%d, %d, %d) = %d, want %v", period, i, n, got, want)
				}
				if (i == 0 && got != 0) || got < prev || got >= int64(period) || (got == prev && int64(period) >= int64(n)) {
					t.Fatalf("staggered(%d, %d, %d) = %d after %d: want 0 for thread 0, then increasing below the period", period, i, n, got, prev)
				}
				prev = got
			}
		}
	}
}

// TestRequestConfigJSON: a RequestConfig with hooks still goes through
// JSON (examples/interactive hands one to a helper process).
func TestRequestConfigJSON(t *testing.T) {
	cfg := requestsCfg
	cfg.ThreadSetup = func(int) error { return nil }
	cfg.Ready = func() error { return nil }
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var got RequestConfig
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Threads != cfg.Threads || got.Period != cfg.Period || got.Work != cfg.Work || got.Duration != cfg.Duration {
		t.Errorf("%s decodes to %+v, want %+v", b, got, requestsCfg)
	}
}

func TestPercentile(t *testing.T) {
	rep := &RequestReport{Latencies: []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{1, 1}, {10, 1}, {50, 5}, {55, 6}, {90, 9}, {99, 10}, {100, 10}} {
		if got := rep.Percentile(c.p); got != c.want {
			t.Errorf("Percentile(%v) of 1..10 = %v, want %v", c.p, got, c.want)
		}
	}
	if got := (&RequestReport{}).Percentile(50); got != 0 {
		t.Errorf("Percentile(50) of nothing = %v, want 0", got)
	}
	one := &RequestReport{Latencies: []time.Duration{7}}
	for _, p := range []float64{1, 50, 100} {
		if got := one.Percentile(p); got != 7 {
			t.Errorf("Percentile(%v) of 7 = %v, want 7", p, got)
		}
	}
}

// TestRequestLoopAllocs checks that a request thread allocates nothing
// while the load runs.
func TestRequestLoopAllocs(t *testing.T) {
	cfg := RequestConfig{Period: time.Millisecond, Work: 10 * time.Microsecond}
	lat := make([]time.Duration, 0, 20)
	var err error
	allocs := testing.AllocsPerRun(1, func() {
		start := monoNow()
		lat, err = requestLoop(context.Background(), cfg, start, start+int64(10*cfg.Period), lat[:0])
	})
	if err != nil || len(lat) == 0 {
		t.Fatalf("requestLoop: %d requests, %v", len(lat), err)
	}
	if allocs != 0 {
		t.Errorf("%v allocations in %d requests, want none", allocs, len(lat))
	}
}
