// Package examples_test checks the example schedulers as a user runs them:
// built, given bad command lines, -h and signals before any kernel work.
package examples_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/scxkit/scxkit/scx"
)

// examples are the example schedulers, built once by buildExamples.
var examples = []string{"simple", "domains", "energy", "pair", "interactive", "responsive", "nest"}

// build is the result of building the examples, once for all tests.
var build struct {
	once sync.Once
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	os.Exit(code)
}

// buildExamples builds the examples' commands into a directory, once,
// and returns it. It skips where running them could attach a scheduler:
// on a host with sched_ext, as root. On a host without sched_ext, a flag
// checked after the kernel work shows up as that work's error (the
// kernel has no sched_ext, status 1) instead of the flag's (status 2).
func buildExamples(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the examples")
	}
	if _, err := scx.Probe(nil); err == nil && os.Geteuid() == 0 {
		t.Skip("this host has sched_ext: running the examples as root could attach them")
	}
	build.once.Do(func() {
		if build.dir, build.err = os.MkdirTemp("", "scxkit-examples-"); build.err != nil {
			return
		}
		args := []string{"build", "-o", build.dir + "/"}
		for _, e := range examples {
			args = append(args, "./"+e)
		}
		cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), args...)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.dir
}

// result is how a command ended.
type result struct {
	code   int
	stderr string
}

// runExample runs example name with args and returns its exit status and
// stderr. A command still running after a minute gets a SIGTERM, and a
// SIGKILL ten seconds later; the test fails then, as one SIGTERM must end
// every example.
func runExample(t *testing.T, dir, name string, args ...string) result {
	t.Helper()
	cmd := exec.Command(filepath.Join(dir, name), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(time.Minute):
		t.Errorf("%s %q still runs after a minute: sending SIGTERM", name, args)
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err = <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Fatalf("%s %q survived SIGTERM for 10s", name, args)
		}
	}
	var exit *exec.ExitError
	switch {
	case err == nil:
		return result{0, stderr.String()}
	case errors.As(err, &exit):
		return result{exit.ExitCode(), stderr.String()}
	}
	t.Fatalf("%s %q: %v", name, args, err)
	return result{}
}

// TestUsageErrors runs every example with bad flags: each must exit with
// status 2 before any kernel work, with a message naming the flag and
// the value.
func TestUsageErrors(t *testing.T) {
	dir := buildExamples(t)
	tmp := t.TempDir()
	fifo := filepath.Join(tmp, "classes.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(tmp, "big.conf")
	if err := os.WriteFile(big, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, 64<<30); err != nil { // sparse
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
		want string // in stderr
	}{
		// Every example: the flag package's own errors, arguments.
		{"simple", []string{"-nope"}, "flag provided but not defined: -nope"},
		{"simple", []string{"extra"}, `unexpected argument "extra"`},
		{"domains", []string{"-steal", "-1"}, `invalid value "-1" for flag -steal`},
		{"energy", []string{"-interval"}, "flag needs an argument: -interval"},
		{"pair", []string{"-isolate", "/a", "x"}, `unexpected argument "x"`},
		{"interactive", []string{"-slice", "9999999h"}, `invalid value "9999999h" for flag -slice`},

		{"simple", []string{"-slice", "0"}, "-slice 0s: must be positive"},
		{"simple", []string{"-slice", "100ns"}, "-slice 100ns: shorter than 1µs"},
		{"simple", []string{"-slice", "1h"}, "-slice 1h0m0s: longer than 30s"},
		{"simple", []string{"-stats", "-1s"}, "-stats -1s: must not be negative"},
		{"simple", []string{"-stats", "1ns"}, "-stats 1ns: shorter than 1ms"},
		{"simple", []string{"-timeout", "31s"}, "-timeout 31s: the kernel allows at most 30s"},
		{"simple", []string{"-timeout", "1500us"}, "-timeout 1.5ms: must be whole milliseconds"},
		{"simple", []string{"-timeout", "-1s"}, "-timeout -1s: must not be negative"},

		{"domains", []string{"-push", "NaN"}, "-push NaN: must be a number in (0, +Inf)"},
		{"domains", []string{"-push", "Inf"}, "-push +Inf: must be a number in (0, +Inf)"},
		{"domains", []string{"-push", "0"}, "-push 0: must be a number"},
		{"domains", []string{"-pull", "Inf"}, "-pull +Inf: must be a number in (0, 1)"},
		{"domains", []string{"-pull", "1"}, "-pull 1: must be a number in (0, 1)"},
		{"domains", []string{"-pull", "NaN"}, "-pull NaN"},
		{"domains", []string{"-min-load", "NaN"}, "-min-load NaN: must be a number in (0, 1]"},
		{"domains", []string{"-steal", "4294967296"}, "-steal 4294967296: must be at most 4294967295"},
		{"domains", []string{"-interval", "0"}, "-interval 0s: must be positive"},
		{"domains", []string{"-interval", "-1s"}, "-interval -1s: must be positive"},
		{"domains", []string{"-domains", "0-1:x"}, `-domains "0-1:x"`},
		{"domains", []string{"-domains", "0-1::2"}, `-domains "0-1::2"`},

		{"energy", []string{"-spill", "4294967296"}, "-spill 4294967296: must be at most 4294967295"},
		{"energy", []string{"-headroom", "NaN"}, "-headroom NaN: must be a number in [1, 10]"},
		{"energy", []string{"-headroom", "Inf"}, "-headroom +Inf"},
		{"energy", []string{"-shrink-after", "0"}, "-shrink-after 0: must be at least 1"},
		{"energy", []string{"-cpu-cost", "18446744073709551615"}, "-cpu-cost 18446744073709551615: must be at most"},
		{"energy", []string{"-governor", "../../x"}, `-governor: energy: governor "../../x": invalid input: not a cpufreq governor name`},
		{"energy", []string{"-epp", "a/b"}, `-epp: energy: energy performance preference "a/b": invalid input`},
		{"energy", []string{"-epp", "256"}, "-epp: energy: energy performance preference 256: invalid input: out of range 0-255"},
		{"energy", []string{"-model", filepath.Join(tmp, "none")}, "-model " + filepath.Join(tmp, "none") + ": not a directory"},
		{"energy", []string{"-model", tmp}, "-model " + tmp + ": "},
		{"energy", []string{"-interval", "-1s"}, "-interval -1s: must be positive"},
		{"energy", []string{"-stats", "-1s"}, "-stats -1s: must not be negative"},

		{"pair", nil, "-isolate: name at least one cgroup"},
		{"pair", []string{"-isolate", "../../etc"}, `-isolate: smt: isolate "../../etc": ".." is not allowed`},
		{"pair", []string{"-isolate", "/a,/b/../../../x"}, `".." is not allowed`},
		{"pair", []string{"-isolate", "/a", "-cgroup-root", "cg"}, `-cgroup-root "cg": give the absolute path`},
		{"pair", []string{"-isolate", "/a", "-hold", "0"}, "-hold 0s: must be positive"},
		{"pair", []string{"-isolate", "/a", "-hold", "1h"}, "-hold 1h0m0s: longer than 30s"},
		{"pair", []string{"-isolate", "/a", "-timeout", "1m"}, "-timeout 1m0s: the kernel allows at most 30s"},

		{"interactive", []string{"-config", "/dev/zero"}, "-config /dev/zero: preempt: config file: /dev/zero: not a regular file (a character device)"},
		{"interactive", []string{"-config", fifo}, "-config " + fifo + ": preempt: config file: " + fifo + ": not a regular file (a FIFO"},
		{"interactive", []string{"-config", big}, big + ": 68719476736 bytes: too big: at most 1048576"},
		{"interactive", []string{"-config", tmp}, "not a regular file (a directory)"},
		{"interactive", []string{"-watch", "0"}, "-watch 0s: must be positive"},
		{"interactive", []string{"-class", "web cgroup=../x"}, `cgroup "../x": ".." is not allowed: give the path from the cgroup2 root, as /proc/PID/cgroup shows it, e.g. /x`},
		{"interactive", []string{"-class", "web cgroup=/web slice=9999999h"}, "slice=9999999h: too large"},
		{"interactive", []string{"-class", "web cgroup=/scxkit-no-such-cgroup"}, "-class: " + `preempt config: class "web": cgroup /scxkit-no-such-cgroup does not exist`},
		{"interactive", []string{"-config", "/c", "-class", "a cgroup=/a"}, "-config and -class"},

		{"responsive", []string{"-short-burst", "0"}, "-short-burst 0s: give a duration above 0 and at most 1s, e.g. -short-burst 500us"},
		{"responsive", []string{"-victim-min-run", "2s"}, "-victim-min-run 2s: give a duration above 0 and at most 1s"},
		{"responsive", []string{"-steal", "4294967296"}, "-steal 4294967296: must be at most 4294967295"},
		{"responsive", []string{"-pull", "1"}, "-pull 1: must be a number in (0, 1)"},
		{"responsive", []string{"-interval", "0"}, "-interval 0s: must be positive"},
		{"responsive", []string{"-min-slice", "-1ms"}, "-min-slice -1ms: give 0 (whole slices) or a duration up to 1s"},

		{"nest", []string{"-shrink-after", "0"}, "-shrink-after 0s: want a positive duration"},
		{"nest", []string{"-sweep", "1ns"}, "-sweep 1ns: want 100µs to 1s"},
		{"nest", []string{"-min-nest", "0"}, "-min-nest 0: want 1 or more"},
		{"nest", []string{"-impatience", "0"}, "-impatience 0: want 1 or more"},
	} {
		r := runExample(t, dir, c.name, c.args...)
		if r.code != 2 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%s %q: status %d, stderr:\n%s\nwant status 2 and %q", c.name, c.args, r.code, r.stderr, c.want)
		}
	}
}

// TestHelp: -h prints the flags and exits with status 0.
func TestHelp(t *testing.T) {
	dir := buildExamples(t)
	for _, e := range examples {
		r := runExample(t, dir, e, "-h")
		if r.code != 0 || !strings.Contains(r.stderr, "-slice") {
			t.Errorf("%s -h: status %d, stderr:\n%s", e, r.code, r.stderr)
		}
	}
}

// TestEnergyKnobsAfterProbe: the energy example must not touch cpufreq
// knobs before it knows that the kernel can run it. On a host without
// sched_ext it fails at the probe, saying nothing was changed, and never
// reaches the knobs (which would log that this host has none, or change
// them).
func TestEnergyKnobsAfterProbe(t *testing.T) {
	dir := buildExamples(t)
	if _, err := scx.Probe(nil); err == nil {
		t.Skip("this host has sched_ext")
	}
	r := runExample(t, dir, "energy", "-governor", "performance", "-epp", "power")
	if r.code != 1 || !strings.Contains(r.stderr, "no sched_ext") || !strings.Contains(r.stderr, "no cpufreq knob was changed") {
		t.Errorf("energy without sched_ext: status %d, stderr:\n%s\nwant status 1, the probe's error and that no knob was changed", r.code, r.stderr)
	}
	if strings.Contains(r.stderr, "cpufreq knob") && !strings.Contains(r.stderr, "no cpufreq knob was changed") || strings.Contains(r.stderr, "knob=") {
		t.Errorf("energy reached the cpufreq knobs before the probe:\n%s", r.stderr)
	}
}

// TestEnergyModelSignal: a -model copy that blocks its reader (a FIFO in
// place of proc/mounts) must not make the energy example deaf to
// SIGTERM: one signal ends it cleanly, with status 0.
func TestEnergyModelSignal(t *testing.T) {
	dir := buildExamples(t)
	model := t.TempDir()
	if err := os.MkdirAll(filepath.Join(model, "proc"), 0o755); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(model, "proc", "mounts")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(dir, "energy"), "-model", model)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-done
		}
	}()

	// Wait until the example opens the FIFO: then a writer's
	// non-blocking open succeeds. Holding the writer open keeps the
	// example blocked in read(2).
	var w *os.File
	for deadline := time.Now().Add(time.Minute); w == nil; {
		f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0)
		switch {
		case err == nil:
			w = f
		case !errors.Is(err, syscall.ENXIO):
			t.Fatal(err)
		case time.Now().After(deadline):
			t.Fatalf("energy did not open %s within a minute; stderr:\n%s", fifo, stderr.String())
		default:
			select {
			case err := <-done:
				t.Fatalf("energy exited before reading the model: %v\n%s", err, stderr.String())
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	defer w.Close()

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("energy stopped by SIGTERM: %v, want status 0; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("energy survived SIGTERM for 30s while reading a FIFO; stderr:\n%s", stderr.String())
	}
}
