package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/schedkit/schedkit/internal/testout"
	"github.com/schedkit/schedkit/internal/workload"
	"github.com/schedkit/schedkit/scx"
	"github.com/schedkit/schedkit/vmtest"
)

// The tests run in a VM on every kernel of the matrix (see vmtest.Main).
func TestMain(m *testing.M) {
	vmtest.Main(m, &vmtest.Config{Topology: vmtest.Topology{Cores: 4}})
}

func TestSimpleUnderLoad(t *testing.T) {
	for _, mode := range []struct {
		name, ops string
		args      []string
	}{
		{"vtime", "simple", nil},
		{"fifo", "simple_fifo", []string{"-fifo"}},
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
			args := append([]string{"-stats", "500ms"}, mode.args...)
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
			time.Sleep(700 * time.Millisecond) // at least one stats line
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
