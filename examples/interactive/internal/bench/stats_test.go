package main

import (
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		v    []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		in := slices.Clone(c.v)
		if got := median(in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.v, got, c.want)
		}
		if !slices.Equal(in, c.v) {
			t.Errorf("median(%v) modified its argument to %v", c.v, in)
		}
	}
}

func TestRatio(t *testing.T) {
	if q, ok := ratio(1, 4); !ok || q != 0.25 {
		t.Errorf("ratio(1, 4) = %v, %v", q, ok)
	}
	for _, b := range []float64{0, -1, math.NaN()} {
		if _, ok := ratio(1, b); ok {
			t.Errorf("ratio(1, %v) is ok", b)
		}
	}
}

func TestKernelBounds(t *testing.T) {
	b := kernelBounds()
	if len(b) == 0 || len(b) > 64 || b[0] != time.Microsecond || b[len(b)-1] < time.Second {
		t.Fatalf("%d bounds from %v to %v: want at most 64 from 1µs to at least 1s", len(b), b[0], b[len(b)-1])
	}
	for i := 1; i < len(b); i++ {
		if r := float64(b[i]) / float64(b[i-1]); !(r > 1 && r < 1.3) {
			t.Errorf("bounds %v and %v: ratio %.3f, want 1 to 1.3", b[i-1], b[i], r)
		}
	}
}

// TestFlagErrors checks that every invalid flag is refused with a message
// naming the flag.
func TestFlagErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		flag string
	}{
		{[]string{"-runs", "0"}, "-runs"},
		{[]string{"-period", "10us"}, "-period"},
		{[]string{"-work", "0"}, "-work"},
		{[]string{"-work", "5ms"}, "-work"},
		{[]string{"-duration", "50ms"}, "-duration"},
		{[]string{"-requesters", "0"}, "-requesters"},
		{[]string{"-hogs", "0"}, "-hogs"},
		{[]string{"-workers", "2000"}, "-workers"},
		{[]string{"-cgroup-root", ""}, "-cgroup-root"},
		{[]string{"-scheduler", "/nonexistent/interactive"}, "-scheduler"},
		{[]string{"-scheduler", "/"}, "-scheduler"},
		{[]string{"extra"}, "extra"},
	} {
		_, err := parseFlags(c.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.flag) {
			t.Errorf("parseFlags(%q) = %v, want an error naming %s", c.args, err, c.flag)
		}
	}
	o, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if o.runs != 3 || o.duration != 4*time.Second || o.period != 5*time.Millisecond || o.work != 200*time.Microsecond {
		t.Errorf("defaults: %+v", o)
	}
}

// TestChildArgs checks that a worker's command line parses back into its
// parameters.
func TestChildArgs(t *testing.T) {
	p := childParams{role: roleRequesters, threads: 3, duration: 2 * time.Second,
		period: 5 * time.Millisecond, work: 200 * time.Microsecond, threadCgroup: "/sys/fs/cgroup/x/req"}
	args := p.args()
	if args[0] != childArg {
		t.Fatalf("args %q do not start with %s", args, childArg)
	}
	got, err := parseChildFlags(args[1:])
	if err != nil || got != p {
		t.Errorf("parseChildFlags(%q) = %+v, %v; want %+v", args[1:], got, err, p)
	}
}

func TestSummarize(t *testing.T) {
	res := func(name string, p99 time.Duration, rate float64) *SchedResult {
		return &SchedResult{Scheduler: name,
			Mixed:      &Mixed{Requests: 100, P99: p99, HogUnitsPerSec: rate},
			Throughput: &Throughput{UnitsPerSec: rate}}
	}
	s := &Summary{Params: Params{Scheduler: "/x/interactive"}, Runs: []*Run{
		{Default: res(schedDefault, 1000*time.Microsecond, 100), Interactive: res(schedInteractive, 500*time.Microsecond, 110)},
		{Default: res(schedDefault, 3000*time.Microsecond, 100), Interactive: res(schedInteractive, 900*time.Microsecond, 90)},
		{Default: res(schedDefault, 2000*time.Microsecond, 100), Interactive: res(schedInteractive, 700*time.Microsecond, 100)},
	}}
	s.summarize()
	if got := s.Median[schedDefault]["lat_p99_us"]; got != 2000 {
		t.Errorf("default p99 median %v, want 2000", got)
	}
	if got := s.Ratio["lat_p99_us"]; got != 0.35 {
		t.Errorf("p99 ratio %v, want 0.35", got)
	}
	if _, ok := s.Ratio["kernel_p99_us"]; ok {
		t.Errorf("a kernel ratio without kernel figures")
	}
	met := map[string]bool{}
	for _, tr := range s.Targets {
		met[tr.Metric] = tr.Met
	}
	if want := map[string]bool{"lat_p99_us": true, "worker_units_per_s": true}; !maps.Equal(met, want) {
		t.Errorf("targets met %v, want %v", met, want)
	}
	var sb strings.Builder
	printSummary(&sb, s)
	if !strings.Contains(sb.String(), "target ≤ 0.80x: met") {
		t.Errorf("summary does not state the p99 target:\n%s", sb.String())
	}
}

// TestLastClassStats: the per-class counters come from the preempt
// component's fields of the scheduler's last stats line, grouped by class.
func TestLastClassStats(t *testing.T) {
	out := "time=... level=INFO msg=attached\n" +
		"12:00:01 enqueued=1 preempt.generation=1 preempt.kicks{class=lat}=1 preempt.kicks{class=bg}=0\n" +
		"12:00:02 enqueued=2 preempt.generation=1 preempt.kicks{class=lat}=3 preempt.preempted{class=lat}=1 preempt.kept{class=lat}=2 " +
		"preempt.run_ons{class=lat}=4 preempt.starved{class=lat}=5 preempt.runtime_ns{class=lat}=463024503 preempt.wakeups{class=lat}=3124 " +
		"preempt.wait_ns{class=lat}=340865570 preempt.wait_p50_ns{class=lat}=98074 preempt.wait_p99_ns{class=lat}=487327 " +
		"preempt.kicks{class=bg}=0 preempt.runtime_ns{class=bg}=9000000\n" +
		"time=... level=INFO msg=detached\n"
	want := "lat: run=463ms wakeups=3124 wait_p50=98us wait_p99=487us kicks=3 preempted=1 kept=2 run_ons=4 starved=5" +
		" | bg: run=9ms wakeups=0 wait_p50=0us wait_p99=0us kicks=0 preempted=0 kept=0 run_ons=0 starved=0"
	if got := lastClassStats(out); got != want {
		t.Errorf("lastClassStats = %q, want %q", got, want)
	}
	if got := lastClassStats("12:00:01 enqueued=1\n"); got != "" {
		t.Errorf("lastClassStats without preempt stats = %q, want \"\"", got)
	}
}
