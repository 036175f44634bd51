//go:build linux

package workload

import (
	"context"
	"errors"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
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
	if d := time.Since(start); d > 5*time.Second {
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
	for deadline := time.Now().Add(5 * time.Second); runtime.GOMAXPROCS(0) < want; {
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
	// A workload goroutine exits just after it tells Run it is done.
	for deadline := time.Now().Add(2 * time.Second); runtime.NumGoroutine() > goroutines; {
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
	rep, err := Requests(context.Background(), RequestConfig{Threads: 2, Period: 2 * time.Millisecond, Work: 100 * time.Microsecond, Duration: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// 2 threads × 300ms / 2ms; a loaded host may miss some periods.
	if rep.Requests < 100 || rep.Requests > 300 {
		t.Errorf("%d requests, want 100 to 300", rep.Requests)
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
