package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scxkit/scxkit/bench"
	"github.com/scxkit/scxkit/internal/peers"
	"github.com/scxkit/scxkit/vmtest"
)

// TestBenchSmoke runs scxkit bench once, briefly, against simple: in a VM
// it runs every standard benchmark under the default scheduler and under
// simple (attach, benchmarks, check still attached, detach, check
// disabled: Run fails otherwise), and the host prints the table and
// writes the JSON and the chart. A smoke test: no figure is judged.
func TestBenchSmoke(t *testing.T) {
	ctx := benchSmokeContext(t, 6*time.Minute)
	dir := t.TempDir()
	o := &benchOptions{
		cpus: 2, reps: 1, duration: time.Second, benchmarks: benchmarkNames(),
		jsonPath: filepath.Join(dir, "r.json"), chartPath: filepath.Join(dir, "r.svg"),
		schedulers: []string{"simple"},
	}
	out, r := runBenchSmoke(ctx, t, o)
	for _, want := range []string{"hackbench time (s)", "cyclictest avg_latency", "switch switch_ns", "default ", "simple "} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out, "simple: 0") {
		t.Errorf("simple printed stats lines, which -stats 0 should have turned off")
	}
	if strings.Join(r.Schedulers, ",") != "default,simple" || r.VCPUs != 2 || r.Repetitions != 1 {
		t.Errorf("report: schedulers %v, %d vCPUs, %d repetitions; want default,simple, 2, 1", r.Schedulers, r.VCPUs, r.Repetitions)
	}
	for _, res := range r.Results {
		if len(res.Values) != 1 {
			t.Errorf("%s %s under %s: %d values, want 1", res.Benchmark, res.Metric.Name, res.Scheduler, len(res.Values))
		}
		if (res.Scheduler == bench.Default) != (res.Ratio == nil) {
			t.Errorf("%s %s under %s: ratio %v: want one for simple only", res.Benchmark, res.Metric.Name, res.Scheduler, res.Ratio)
		}
	}
	if n := len(r.Results); n != 2*5 {
		t.Errorf("%d results, want 5 metrics x 2 schedulers", n)
	}
	svg, err := os.ReadFile(o.chartPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(svg, []byte("<svg")) || !bytes.Contains(svg, []byte("simple")) {
		t.Errorf("the chart is no SVG naming simple (%d bytes)", len(svg))
	}
}

// benchSmokeContext skips a test that runs bench under -short and in a
// guest (bench boots its own VM), and returns its context, cancelled
// after timeout.
func benchSmokeContext(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: bench boots a VM")
	}
	if vmtest.InGuest() {
		t.Skip("bench boots its own VM from the host")
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return ctx
}

// runBenchSmoke runs bench with o, which must write its JSON, and returns
// its output and the report it wrote. It skips when the host cannot boot
// a VM, except with CI=true, where that fails.
func runBenchSmoke(ctx context.Context, t *testing.T, o *benchOptions) (string, *bench.Report) {
	t.Helper()
	var out bytes.Buffer
	err := runBench(ctx, o, &out)
	if errors.Is(err, vmtest.ErrUnavailable) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("bench cannot run with CI=true: %v", err)
		}
		t.Skipf("bench cannot run here: %v", err)
	}
	t.Logf("bench output:\n%s", out.String())
	if err != nil {
		t.Fatalf("bench: %v", err)
	}
	f, err := os.Open(o.jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := bench.ReadJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	return out.String(), r
}

// TestBenchFlags: bad flags and operands are usage errors that name the
// fix, before anything is built or booted.
func TestBenchFlags(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"bench"}, "name at least one SCHEDULER"},
		{[]string{"bench", "--reps", "0", "simple"}, "--reps 0"},
		{[]string{"bench", "--duration", "10ms", "simple"}, "--duration 10ms"},
		{[]string{"bench", "--benchmarks", "hackbench,nope", "simple"}, `no benchmark "nope"`},
		{[]string{"bench", "--chart", "x.gif", "simple"}, "want a .svg or .png"},
		{[]string{"bench", "--cpus", "0", "simple"}, "--cpus 0"},
		{[]string{"bench", "/no/such/scheduler"}, "neither an example"},
		{[]string{"bench", "--peer", "scx_nope"}, `unknown peer "scx_nope": want one of scx_cpu0, `},
		{[]string{"bench", "--peer", "scx_simple,simple"}, `unknown peer "simple"`},
		{[]string{"bench", "--peer", "scx_simple", "--peer", "scx_flatcg,scx_simple"}, "peer scx_simple named twice"},
		{[]string{"bench", "--peer", "scx_simple", "--reps", "0"}, "--reps 0"},
		{[]string{"bench", "--peer", "scx_simple", peerNamedProgram(t)}, "--peer scx_simple: a SCHEDULER has that name too"},
	} {
		code, _, stderr := runArgs(t, tt.args...)
		if code != exitUsage || !strings.Contains(stderr, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tt.args, code, stderr, exitUsage, tt.want)
		}
	}
}

// peerNamedProgram returns an executable file named like a peer.
func peerNamedProgram(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "scx_simple")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestBenchPeerFlags: --peer is repeatable and takes lists, keeps the
// order given, is enough without a SCHEDULER, and the help tells of it.
func TestBenchPeerFlags(t *testing.T) {
	o := &benchOptions{cpus: 2, reps: 1, duration: time.Second, benchmarks: "hackbench"}
	for _, v := range []string{"scx_flatcg, scx_simple", "scx_cpu0"} {
		if err := o.addPeers(v); err != nil {
			t.Fatalf("--peer %q: %v", v, err)
		}
	}
	if got := strings.Join(o.peers, ","); got != "scx_flatcg,scx_simple,scx_cpu0" {
		t.Errorf("peers %s, want scx_flatcg,scx_simple,scx_cpu0", got)
	}
	if _, err := o.validate(); err != nil {
		t.Errorf("--peer without a SCHEDULER: %v", err)
	}
	code, stdout, _ := runArgs(t, "help", "bench")
	for _, want := range []string{"[--peer NAME]...", "-peer NAME", "scx_simple", "linux-source-7.3"} {
		if code != exitOK || !strings.Contains(stdout, want) {
			t.Errorf("help bench (exit %d) lacks %q:\n%s", code, want, stdout)
		}
	}
}

// TestBenchPeerSmoke builds the kernel's scx_simple from
// linux-source-7.3 into an empty cache (so the build itself is tested
// each time, and its time logged), runs scxkit bench --peer scx_simple
// once, briefly, with hackbench only, in a VM on 7.3, and checks that the
// report has a scx_simple row with a value and a ratio; then asks for
// the peer again and checks that it comes from the cache, at once and
// silently. It skips when the source package is missing, except with
// CI=true, where that fails.
func TestBenchPeerSmoke(t *testing.T) {
	ctx := benchSmokeContext(t, 10*time.Minute)
	if _, err := peers.DefaultSource(ctx); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true: %v", err)
		}
		t.Skip(err)
	}
	dir, cache := t.TempDir(), t.TempDir()
	o := &benchOptions{
		cpus: 2, reps: 1, duration: time.Second, benchmarks: "hackbench",
		jsonPath: filepath.Join(dir, "r.json"), peers: []string{"scx_simple"}, peerCache: cache,
	}
	out, r := runBenchSmoke(ctx, t, o)
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "peers: built") {
			t.Logf("build from a clean cache: %s", line)
		}
	}
	if !regexp.MustCompile(`(?m)^scx_simple +1 +[0-9.]+ +\[`).MatchString(out) {
		t.Errorf("the table has no scx_simple row with a value")
	}
	if strings.Join(r.Schedulers, ",") != "default,scx_simple" {
		t.Errorf("report schedulers %v, want default,scx_simple", r.Schedulers)
	}
	found := false
	for _, res := range r.Results {
		if res.Scheduler != "scx_simple" {
			continue
		}
		found = true
		if len(res.Values) != 1 || res.Values[0] <= 0 || res.Ratio == nil || !res.Ratio.Valid {
			t.Errorf("scx_simple %s %s: values %v, ratio %+v; want one positive value and a ratio", res.Benchmark, res.Metric.Name, res.Values, res.Ratio)
		}
	}
	if !found {
		t.Errorf("the report has no scx_simple result")
	}

	var log bytes.Buffer
	start := time.Now()
	again, err := peers.Build(ctx, []string{"scx_simple"}, &peers.Options{CacheDir: cache, Log: &log})
	if err != nil || len(again) != 1 || !strings.HasPrefix(again[0].Path, cache) {
		t.Fatalf("peers.Build again: %+v, %v; want scx_simple from %s", again, err, cache)
	}
	if d := time.Since(start); d > 10*time.Second || log.Len() > 0 {
		t.Errorf("cache hit took %v and logged %q: want quick and silent", d, log.String())
	}
}

// TestReportCapture: the guest's progress lines pass through whole and in
// order, split however the writes come; the report between the markers
// is kept, not passed on, and counts only once its end marker came.
func TestReportCapture(t *testing.T) {
	var out bytes.Buffer
	c := newReportCapture(&out)
	in := "bench: one\n" + reportBegin + "\n{\"a\": 1,\n \"b\": 2}\n" + reportEnd + "\nlast"
	for i := 0; i < len(in); i += 3 {
		c.Write([]byte(in[i:min(i+3, len(in))]))
	}
	c.Flush()
	if got, want := out.String(), "bench: one\nlast\n"; got != want {
		t.Errorf("passed on %q, want %q", got, want)
	}
	if !c.complete || c.report.String() != "{\"a\": 1,\n \"b\": 2}\n" {
		t.Errorf("report %q (complete %v)", c.report.String(), c.complete)
	}
	cut := newReportCapture(io.Discard)
	cut.Write([]byte(reportBegin + "\n{\n"))
	cut.Flush()
	if cut.complete {
		t.Error("a report without its end marker counted as complete")
	}
}

// TestBenchGuestArgs: the command line the host gives bench-guest sets
// the guest's options to the host's, --profile included.
func TestBenchGuestArgs(t *testing.T) {
	for _, profile := range []bool{false, true} {
		g := &benchGuestOptions{reps: 4, duration: 3 * time.Second, benchmarks: "switch,hackbench", tools: guestToolDir, profile: profile}
		g.addScheduler(schedulerOperand{name: "responsive", example: true}, "/vmtest/sched/responsive")
		g.addScheduler(schedulerOperand{name: "scx_simple"}, "/vmtest/sched/scx_simple")
		args := g.args()
		if args[0] != benchGuestCommand {
			t.Fatalf("args %q do not start with %s", args, benchGuestCommand)
		}
		back := &benchGuestOptions{}
		if err := back.flagSet().Parse(args[1:]); err != nil {
			t.Fatalf("bench-guest %q: %v", args[1:], err)
		}
		if !reflect.DeepEqual(back, g) {
			t.Errorf("bench-guest %q parsed to\n%+v\nwant\n%+v", args[1:], back, g)
		}
		if got := slices.Contains(args, "--profile"); got != profile {
			t.Errorf("profile %v: --profile in %q is %v", profile, args, got)
		}
	}
}

// TestBenchProfileFlag: --profile parses, and the help says what it does.
func TestBenchProfileFlag(t *testing.T) {
	fs, _ := benchCommand()
	fs.SetOutput(io.Discard)
	if err := fs.Parse([]string{"--profile", "simple"}); err != nil || fs.Lookup("profile").Value.String() != "true" || fs.Arg(0) != "simple" {
		t.Errorf("bench --profile simple: %v, profile %v, operands %q", err, fs.Lookup("profile").Value, fs.Args())
	}
	code, stdout, _ := runArgs(t, "help", "bench")
	for _, want := range []string{"-profile", "BPF time of each scheduler's callbacks (kernel BPF stats)", "With --profile"} {
		if code != exitOK || !strings.Contains(stdout, want) {
			t.Errorf("help bench (exit %d) lacks %q:\n%s", code, want, stdout)
		}
	}
}
