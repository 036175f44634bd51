package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/scxkit/scxkit/internal/testout"
	"github.com/scxkit/scxkit/internal/workload"
	"github.com/scxkit/scxkit/scx"
	"github.com/scxkit/scxkit/vmtest"
)

// The tests run in a VM on every kernel of the matrix (see vmtest.Main).
func TestMain(m *testing.M) {
	vmtest.Main(m, &vmtest.Config{Topology: vmtest.Topology{Cores: 4}})
}

func TestSimpleUnderLoad(t *testing.T) {
	for _, mode := range []struct {
		name, ops string
		args      []string
		fifo      bool
	}{
		{"vtime", "simple", nil, false},
		{"fifo", "simple_fifo", []string{"-fifo"}, true},
	} {
		t.Run(mode.name, func(t *testing.T) {
			k, err := scx.Probe(nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var stdout, stderr testout.Buffer
			done := make(chan error, 1)
			// A 50ms slice (the default is 20ms) for the share check
			// below: see there.
			args := append([]string{"-stats", "500ms", "-slice", "50ms"}, mode.args...)
			go func() { done <- run(ctx, args, &stdout, &stderr) }()

			waitState(t, k, scx.StateEnabled, mode.ops, done, &stderr)

			rep, err := workload.Run(context.Background(), workload.Config{
				Spinners:      6,
				SpinWork:      40,
				PingPongPairs: 2,
				RoundTrips:    300,
				Deadline:      90 * time.Second,
			})
			if err != nil {
				t.Fatalf("workload under %s: %v\n%s", mode.ops, err, rep)
			}
			t.Logf("workload under %s: %s", mode.ops, rep)

			// What tells the modes apart: three threads spinning on one
			// CPU, two at nice 0 and one at nice 10 (weights 100 and 11
			// in sched_ext's scale, about 9:1). Under vtime the CPU is
			// shared by weight, each nice 0 thread getting about 9 times
			// the nice 10 one's time; under FIFO each runs a slice in
			// turn, 1:1. It takes three: the kernel calls ops.dispatch
			// at a slice's end before it queues the task whose slice
			// ended, so with two threads the one waiting is always
			// alone in the queue and runs next whatever its vtime, and
			// vtime ordering only shows from two waiting threads on
			// (measured on 7.3 with two threads: 1.03 under vtime).
			//
			// The ratio is taken between threads on the same vCPU over
			// the same window, so a slow or loaded host stretches them
			// alike, but for one effect of the scheduler's design: a
			// task is queued no further than a slice behind vtime_now,
			// the vtime of the last task started on any CPU. A task on
			// another CPU that is charged more than a slice in one run
			// pushes vtime_now ahead of the spinners, and each of them
			// is then queued at vtime_now less a slice, tied with the
			// others: the order starts over, and the nice 10 thread gets
			// a turn early. A loaded host charges guest tasks for the
			// time their vCPU waits for a host CPU, so short runs get
			// charged more than 20ms: with the default slice and two
			// host CPU hogs (like stress-ng --cpu 2) the ratio fell to
			// 2.5. With 50ms slices such runs stay within the slice of
			// credit: the ratio holds.
			//
			// The bounds sit far from both expected values: at least 3
			// for vtime (a third of 9:1, room for the odd restart of
			// the order), within [1/2, 2] for FIFO (with about 200
			// slices in the window, a host that lengthens some slices
			// by stealing the vCPU cannot skew it by 2x). The vtime
			// bound, 3, is the geometric middle of 1 and 9.
			ran := niceShares(t, runtime.NumCPU()-1, []int{0, 0, 10}, 10*time.Second)
			n0, n10 := (ran[0]+ran[1])/2, ran[2]
			ratio := float64(n0) / float64(max(n10, time.Microsecond))
			t.Logf("under %s on one CPU: the nice 0 threads ran %v and %v, the nice 10 one %v; ratio %.2f", mode.ops, ran[0], ran[1], n10, ratio)
			if mode.fifo && (ratio < 0.5 || ratio > 2) {
				t.Errorf("under %s a nice 0 spinner ran %v on average and the nice 10 one %v (ratio %.2f), want about 1:1 (within [0.5, 2]): FIFO ignores weights; is -fifo ignored?",
					mode.ops, n0, n10, ratio)
			}
			if !mode.fifo && ratio < 3 {
				t.Errorf("under %s a nice 0 spinner ran %v on average and the nice 10 one %v (ratio %.2f), want at least 3 (about 9:1 by weight): weighted vtime ordering is broken",
					mode.ops, n0, n10, ratio)
			}

			waitStatsLine(t, &stdout, strings.Count(stdout.String(), "enqueued="))
			st, err := k.Status()
			if err != nil || st.State != scx.StateEnabled || st.Ops != mode.ops {
				t.Fatalf("after the workload: status %+v, %v; want enabled %s", st, err, mode.ops)
			}

			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("simple: %v\nstderr:\n%s", err, stderr.String())
				}
			case <-time.After(30 * time.Second):
				t.Fatal("simple did not return 30s after cancel")
			}
			if st, err := k.Status(); err != nil || st.State != scx.StateDisabled {
				t.Fatalf("after detach: status %+v, %v; want disabled", st, err)
			}
			out := stdout.String()
			t.Logf("stdout:\n%s", out)
			last := lastStats(t, out)
			for _, c := range []string{"enqueued", "dispatched"} {
				if !strings.Contains(last, c+"=") || strings.Contains(last, c+"=0 ") || strings.HasSuffix(last, c+"=0") {
					t.Errorf("counter %s missing or zero in %q", c, last)
				}
			}
		})
	}
}

func lastStats(t *testing.T, out string) string {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], "enqueued=") {
			return lines[i]
		}
	}
	t.Fatalf("no stats line in output:\n%s", out)
	return ""
}

// waitState waits until sched_ext reaches state with ops attached, failing
// early if the scheduler returned.
func waitState(t *testing.T, k *scx.Kernel, state scx.State, ops string, done <-chan error, stderr *testout.Buffer) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("simple returned before attaching: %v\nstderr:\n%s", err, stderr.String())
		default:
		}
		st, err := k.Status()
		if err != nil {
			t.Fatal(err)
		}
		if st.State == state && st.Ops == ops {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("sched_ext did not reach %s with %s within 60s\nstderr:\n%s", state, ops, stderr.String())
}

// waitStatsLine waits until out holds more than before stats lines, so the
// last one was printed after the caller's work; a fixed sleep would race a
// slow or loaded VM.
func waitStatsLine(t *testing.T, out *testout.Buffer, before int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(out.String(), "enqueued=") <= before {
		if time.Now().After(deadline) {
			t.Fatalf("no new stats line within 30s (had %d):\n%s", before, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// niceShares runs a thread spinning on cpu for each of nices, at that nice
// value, until together they have run for total CPU time, and returns how
// long each ran from the moment all were spinning. It polls the threads'
// CPU time rather than sleeping a fixed time, so a slow VM only takes
// longer; it fails after 120s.
func niceShares(t *testing.T, cpu int, nices []int, total time.Duration) []time.Duration {
	t.Helper()
	type ready struct{ i, tid int }
	var (
		stop  atomic.Bool
		wg    sync.WaitGroup
		ch    = make(chan ready, len(nices))
		errCh = make(chan error, len(nices))
	)
	defer func() { stop.Store(true); wg.Wait() }()
	for i, nice := range nices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Never unlocked: the runtime retires the thread when this
			// goroutine returns, so its affinity and nice value go too.
			runtime.LockOSThread()
			var set unix.CPUSet
			set.Set(cpu)
			if err := unix.SchedSetaffinity(0, &set); err != nil {
				errCh <- fmt.Errorf("pin to CPU %d: %w", cpu, err)
				return
			}
			tid := unix.Gettid()
			if err := unix.Setpriority(unix.PRIO_PROCESS, tid, nice); err != nil {
				errCh <- fmt.Errorf("nice %d: %w", nice, err)
				return
			}
			ch <- ready{i, tid}
			x := uint64(tid)
			for !stop.Load() {
				for range 1 << 12 {
					x ^= x << 13
					x ^= x >> 7
					x ^= x << 17
				}
			}
			spinSink.Add(x)
		}()
	}
	tids := make([]int, len(nices))
	for range nices {
		select {
		case r := <-ch:
			tids[r.i] = r.tid
		case err := <-errCh:
			t.Fatal(err)
		}
	}
	read := func() []time.Duration {
		ran := make([]time.Duration, len(tids))
		for i, tid := range tids {
			ran[i] = threadRuntime(t, tid)
		}
		return ran
	}
	start := read()
	deadline := time.Now().Add(120 * time.Second)
	for {
		time.Sleep(100 * time.Millisecond)
		ran := read()
		var sum time.Duration
		for i := range ran {
			ran[i] -= start[i]
			sum += ran[i]
		}
		if sum >= total {
			return ran
		}
		if time.Now().After(deadline) {
			t.Fatalf("the spinners on CPU %d ran %v in 120s, want %v together", cpu, ran, total)
		}
	}
}

var spinSink atomic.Uint64

// threadRuntime returns how long thread tid of this process has run, from
// /proc/self/task/TID/schedstat.
func threadRuntime(t *testing.T, tid int) time.Duration {
	t.Helper()
	name := fmt.Sprintf("/proc/self/task/%d/schedstat", tid)
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var run uint64
	if _, err := fmt.Sscan(string(b), &run); err != nil {
		t.Fatalf("%s %q: %v", name, b, err)
	}
	return time.Duration(run)
}
