package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scxkit/scxkit/bench"
	"github.com/scxkit/scxkit/vmtest"
)

// TestBenchSmoke runs scxkit bench once, briefly, against simple: in a VM
// it runs every standard benchmark under the default scheduler and under
// simple (attach, benchmarks, check still attached, detach, check
// disabled: Run fails otherwise), and the host prints the table and
// writes the JSON and the chart. A smoke test: no figure is judged.
func TestBenchSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: bench boots a VM")
	}
	if vmtest.InGuest() {
		t.Skip("bench boots its own VM from the host")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	dir := t.TempDir()
	o := &benchOptions{
		cpus: 2, reps: 1, duration: time.Second, benchmarks: benchmarkNames(),
		jsonPath: filepath.Join(dir, "r.json"), chartPath: filepath.Join(dir, "r.svg"),
		schedulers: []string{"simple"},
	}
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
	for _, want := range []string{"hackbench time (s)", "cyclictest avg_latency", "switch switch_ns", "default ", "simple "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out.String(), "simple: 0") {
		t.Errorf("simple printed stats lines, which -stats 0 should have turned off")
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
	} {
		code, _, stderr := runArgs(t, tt.args...)
		if code != exitUsage || !strings.Contains(stderr, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tt.args, code, stderr, exitUsage, tt.want)
		}
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
