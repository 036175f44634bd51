package main

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scxkit/scxkit/scx"
	"github.com/scxkit/scxkit/vmtest"
)

var (
	statsLine      = regexp.MustCompile(`(?m)^simple: \d\d:\d\d:\d\d .*\benqueued=\d+`)
	domainsLine    = regexp.MustCompile(`(?m)^domains: \d\d:\d\d:\d\d .*\benqueued=\d+ .*\blb\.moved_tasks=\d+ .*\blb\.runtime_ns\{domain=0\}=\d+`)
	energyLine     = regexp.MustCompile(`(?m)^energy: \d\d:\d\d:\d\d .*\bqueued=\d+ .*\benergy\.demand=[\d.]+ .*\benergy\.warm_cpus=\d+`)
	comparisonLine = regexp.MustCompile(`(?m)^demo: workload took \d+\.\ds under (simple|domains|energy) vs \d+\.\ds under the kernel's default scheduler \(ratio \d+\.\d\d\)$`)
)

// TestDemo runs the real demo: on this host if it has sched_ext and we are
// root, else in a VM with the test binary as payload (see TestMain). It
// skips when qemu or the kernel is missing, unless CI=true.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the demo boots a VM")
	}
	if vmtest.InGuest() {
		t.Skip("the demo boots its own VM from the host")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var out bytes.Buffer
	start := time.Now()
	err := demo(ctx, &demoOptions{cpus: 2, seconds: 1}, &out)
	took := time.Since(start)
	if errors.Is(err, vmtest.ErrUnavailable) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("demo cannot run with CI=true: %v", err)
		}
		t.Skipf("demo cannot run here: %v", err)
	}
	t.Logf("demo output (%.1fs):\n%s", took.Seconds(), out.String())
	if err != nil {
		t.Fatalf("demo: %v", err)
	}
	got := out.String()
	if !statsLine.MatchString(got) {
		t.Errorf("no stats line of simple (%s) in the output", statsLine)
	}
	if !comparisonLine.MatchString(got) {
		t.Errorf("no comparison line (%s) in the output", comparisonLine)
	}
	for _, want := range []string{
		"demo: sched_ext enabled with simple",
		"demo: sched_ext disabled: every task is back on the kernel's default scheduler",
		"demo: under the kernel's default scheduler: workload: ",
		"demo: under simple: workload: ",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// TestDemoExamples runs the demo with --example domains and energy: each
// attaches in the VM and prints its counters (per-domain run times, or
// demand and warm CPUs).
func TestDemoExamples(t *testing.T) {
	for _, tc := range []struct {
		example string
		line    *regexp.Regexp
	}{{"domains", domainsLine}, {"energy", energyLine}} {
		t.Run(tc.example, func(t *testing.T) { testDemoExample(t, tc.example, tc.line) })
	}
}

func testDemoExample(t *testing.T, example string, line *regexp.Regexp) {
	if testing.Short() {
		t.Skip("-short: the demo boots a VM")
	}
	if vmtest.InGuest() {
		t.Skip("the demo boots its own VM from the host")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var out bytes.Buffer
	err := demo(ctx, &demoOptions{cpus: 2, seconds: 1, example: example}, &out)
	if errors.Is(err, vmtest.ErrUnavailable) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("demo cannot run with CI=true: %v", err)
		}
		t.Skipf("demo cannot run here: %v", err)
	}
	t.Logf("demo output:\n%s", out.String())
	if err != nil {
		t.Fatalf("demo --example %s: %v", example, err)
	}
	for _, re := range []*regexp.Regexp{line, comparisonLine} {
		if !re.MatchString(out.String()) {
			t.Errorf("output lacks a line matching %s", re)
		}
	}
	if !strings.Contains(out.String(), "demo: sched_ext enabled with "+example) {
		t.Errorf("output does not say %s was enabled", example)
	}
}

// TestDemoInteractive runs the demo of examples/interactive, which is its
// benchmark against the kernel's default scheduler.
func TestDemoInteractive(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the demo boots a VM")
	}
	if vmtest.InGuest() {
		t.Skip("the demo boots its own VM from the host")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var out bytes.Buffer
	err := demo(ctx, &demoOptions{cpus: 2, seconds: 1, example: "interactive"}, &out)
	if errors.Is(err, vmtest.ErrUnavailable) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("demo cannot run with CI=true: %v", err)
		}
		t.Skipf("demo cannot run here: %v", err)
	}
	t.Logf("demo output:\n%s", out.String())
	if err != nil {
		t.Fatalf("demo --example interactive: %v", err)
	}
	for _, re := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^\s*lat p99 \(user\)\s+\d+µs\s+\d+µs\s+\d+\.\d\dx\s+target`),
		regexp.MustCompile(`(?m)^\s*worker units/s \(throughput\)\s+\d+\s+\d+\s+\d+\.\d\dx\s+target`),
		regexp.MustCompile(`(?m)^\s*interactive class lat: run=\d+ms`),
	} {
		if !re.MatchString(out.String()) {
			t.Errorf("output lacks a line matching %s", re)
		}
	}
}

func TestDemoFlags(t *testing.T) {
	for _, tt := range []struct {
		o    demoOptions
		want string
	}{
		{demoOptions{cpus: 2, seconds: 1, example: "nope"}, "unknown example (known: " + strings.Join(examples, ", ") + ")"},
		{demoOptions{cpus: 2, seconds: 1, example: "domains", fifo: true}, "--fifo is a mode of simple"},
		{demoOptions{cpus: 2, seconds: 1, example: "pair"}, "-isolate"},
	} {
		var usage *usageError
		if err := tt.o.validate(); !errors.As(err, &usage) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v; want a usage error with %q", tt.o, err, tt.want)
		}
	}
}

// TestExamplesListed checks that demo knows every example of the
// checkout: each directory of examples/ with a main package is one that
// demo and bench run or one that flaggedExamples explains, and each of
// those is a directory.
func TestExamplesListed(t *testing.T) {
	const dir = "../../examples"
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, e := range entries {
		src, err := os.ReadFile(filepath.Join(dir, e.Name(), "main.go"))
		if err != nil || !regexp.MustCompile(`(?m)^package main$`).Match(src) {
			continue
		}
		found = append(found, e.Name())
		if _, flagged := flaggedExamples[e.Name()]; !slices.Contains(examples, e.Name()) && !flagged {
			t.Errorf("examples/%s is a command that demo neither runs nor explains: add it to examples or flaggedExamples", e.Name())
		}
	}
	for _, name := range append(slices.Clone(examples), slices.Collect(maps.Keys(flaggedExamples))...) {
		if !slices.Contains(found, name) {
			t.Errorf("demo lists %s, but examples/%s has no main package", name, name)
		}
	}
	if len(found) < 6 {
		t.Errorf("found only %q in %s", found, dir)
	}
}

// TestDemoOutsideCheckout checks that demo says where to run it from.
func TestDemoOutsideCheckout(t *testing.T) {
	t.Chdir(t.TempDir())
	var out bytes.Buffer
	err := demo(context.Background(), &demoOptions{cpus: 2, seconds: 1}, &out)
	if err == nil {
		t.Fatalf("demo outside a checkout succeeded:\n%s", out.String())
	}
	for _, want := range []string{"scxkit checkout", "go run ./cmd/scxkit demo"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// TestGuestWithoutSchedExt runs the guest half where there is no sched_ext
// (this host, normally): it must fail at once, naming the problem.
func TestGuestWithoutSchedExt(t *testing.T) {
	if _, err := scx.ReadStatus(nil); err == nil {
		t.Skip("this machine has sched_ext")
	}
	code, stdout, stderr := runArgs(t, guestCommand, "--seconds", "1", "--simple", "/nonexistent/simple")
	if code != 1 || !strings.Contains(stderr, "scxkit demo-guest: read sched_ext status:") || !strings.Contains(stderr, "no /sys/kernel/sched_ext") {
		t.Errorf("exit status %d, stderr %q, stdout %q; want 1 and the missing sysfs directory", code, stderr, stdout)
	}
}

func TestGoModPath(t *testing.T) {
	for gomod, want := range map[string]string{
		"module github.com/scxkit/scxkit\n\ngo 1.25.0\n":     "github.com/scxkit/scxkit",
		"// comment\nmodule \"example.com/x\" // trailing\n": "example.com/x",
		"go 1.25\n": "",
		"module\tgithub.com/scxkit/scxkit\r\nrequire x v1\n": "github.com/scxkit/scxkit",
	} {
		if got := goModPath(gomod); got != want {
			t.Errorf("goModPath(%q) = %q, want %q", gomod, got, want)
		}
	}
}

func TestGuestArgs(t *testing.T) {
	o := &guestOptions{seconds: 1.5, example: "simple", fifo: true, simple: "/simple"}
	want := []string{guestCommand, "--seconds", "1.5", "--example", "simple", "--simple", "/simple", "--fifo"}
	if got := o.args(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("args() = %q, want %q", got, want)
	}
	// The arguments parse back to the same options.
	fs, _ := guestCommandFlags()
	if code, ok := parse(fs, o.args()[1:], new(bytes.Buffer), new(bytes.Buffer)); !ok {
		t.Fatalf("parse %q: exit status %d", o.args(), code)
	}
	for name, want := range map[string]string{"seconds": "1.5", "example": "simple", "fifo": "true", "simple": "/simple"} {
		if got := fs.Lookup(name).Value.String(); got != want {
			t.Errorf("--%s = %s, want %s", name, got, want)
		}
	}
}

func TestResize(t *testing.T) {
	const probe = 200 * time.Millisecond
	tests := []struct {
		n    int
		took time.Duration
		want int
	}{
		{10, 250 * time.Millisecond, 10},     // in the window
		{10, time.Millisecond, 80},           // too short to measure
		{10, 100 * time.Millisecond, 30},     // scaled towards 300ms
		{10, 10 * time.Millisecond, 160},     // at most 16x
		{100, 2 * time.Second, 15},           // shrunk
		{100, 100 * time.Second, 6},          // at most 1/16
		{1, 100 * time.Second, 1},            // never zero
		{3, 1000 * time.Millisecond, 1},      // rounds, at least 1
		{7, 150 * time.Millisecond, 14},      // 7 * 2 = 14
		{1000, 400 * time.Millisecond, 1000}, // upper edge of the window
	}
	for _, tt := range tests {
		if got := resize(tt.n, tt.took, probe); got != tt.want {
			t.Errorf("resize(%d, %v) = %d, want %d", tt.n, tt.took, got, tt.want)
		}
	}
	if got := scaleWork(100, 250*time.Millisecond, 3*time.Second); got != 1200 {
		t.Errorf("scaleWork(100, 250ms, 3s) = %d, want 1200", got)
	}
}

// TestPokeRaceNote: the retry callback says why the boot runs again, on
// which kernel, and drops what the first boot's output left.
func TestPokeRaceNote(t *testing.T) {
	var out bytes.Buffer
	reset := 0
	note := pokeRaceNote("bench", vmtest.Kernel{Name: "7.3"}, &out, func() { reset++ })
	note(&vmtest.RunError{Kind: vmtest.FailOops, Line: "[ 10.1] Oops: int3: 0000 [#1] SMP NOPTI"})
	if reset != 1 || !strings.Contains(out.String(), "bench: the guest hit qemu TCG's race with live code patching ([ 10.1] Oops: int3") ||
		!strings.Contains(out.String(), "running it again on kernel 7.3") {
		t.Errorf("reset %d times, output %q", reset, out.String())
	}
}
