package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"time"

	"golang.org/x/sys/unix"

	"github.com/scxkit/scxkit/workload"
)

// childArg, as the first argument, makes the bench binary a worker
// process of a phase instead of the bench itself. The bench starts its
// workers this way (re-executing itself), directly in their cgroups.
const childArg = "-bench-child"

// Worker roles.
const (
	// roleRequesters runs request/response threads and reports their
	// wakeup latencies (requesterReport).
	roleRequesters = "requesters"
	// roleSpin spins integer work units until the end of the window and
	// reports how many it did (spinReport).
	roleSpin = "spin"
)

// readyLine is what a worker writes on stdout once it is set up; it then
// waits for EOF on stdin, which starts its measurement window.
const readyLine = "ready"

// childParams are a worker's arguments.
type childParams struct {
	role     string
	threads  int
	duration time.Duration
	period   time.Duration
	work     time.Duration
	// threadCgroup is the directory of a threaded cgroup each requester
	// thread moves itself into ("": none).
	threadCgroup string
}

// args returns the command line that starts a worker with p.
func (p childParams) args() []string {
	return []string{childArg,
		"-role", p.role,
		"-threads", fmt.Sprint(p.threads),
		"-duration", p.duration.String(),
		"-period", p.period.String(),
		"-work", p.work.String(),
		"-thread-cgroup", p.threadCgroup,
	}
}

// requesterReport is what a requesters worker prints: the wakeup
// latencies of all its threads' requests in its window.
type requesterReport struct {
	Threads  int           `json:"threads"`
	Window   time.Duration `json:"window_ns"`
	Requests int64         `json:"requests"`
	// Expected is the number of requests the threads would do if every
	// wakeup and every request's work were instant.
	Expected int64         `json:"expected"`
	P50      time.Duration `json:"p50_ns"`
	P90      time.Duration `json:"p90_ns"`
	P99      time.Duration `json:"p99_ns"`
	Max      time.Duration `json:"max_ns"`
}

// spinReport is what a spin worker prints.
type spinReport struct {
	Window time.Duration `json:"window_ns"`
	Units  int64         `json:"units"`
}

// childMain runs a worker with the arguments after childArg and returns
// its exit status. Its report goes to stdout, errors to stderr.
func childMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	p, err := parseChildFlags(args)
	if err == nil {
		err = runChild(p, stdin, stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "bench %s: %v\n", p.role, err)
		return 1
	}
	return 0
}

func parseChildFlags(args []string) (childParams, error) {
	fs := flag.NewFlagSet("bench child", flag.ContinueOnError)
	var p childParams
	fs.StringVar(&p.role, "role", "", "worker role")
	fs.IntVar(&p.threads, "threads", 1, "requester threads")
	fs.DurationVar(&p.duration, "duration", 0, "measurement window")
	fs.DurationVar(&p.period, "period", 0, "request period")
	fs.DurationVar(&p.work, "work", 0, "CPU time per request")
	fs.StringVar(&p.threadCgroup, "thread-cgroup", "", "threaded cgroup for the requester threads")
	if err := fs.Parse(args); err != nil {
		return p, err
	}
	switch {
	case p.role != roleRequesters && p.role != roleSpin:
		return p, fmt.Errorf("unknown role %q", p.role)
	case p.threads < 1 || p.duration <= 0:
		return p, errors.New("-threads and -duration must be positive")
	case p.role == roleRequesters && (p.period <= 0 || p.work <= 0):
		return p, errors.New("-period and -work must be positive")
	}
	return p, nil
}

func runChild(p childParams, stdin io.Reader, stdout io.Writer) error {
	// Workers allocate nothing while they measure; no collection may
	// wake up meanwhile either.
	debug.SetGCPercent(-1)
	if err := checkClocks(); err != nil {
		return err
	}
	var report any
	var err error
	switch p.role {
	case roleRequesters:
		report, err = runRequesters(p, stdin, stdout)
	default:
		report, err = runSpin(p, stdin, stdout)
	}
	if err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(report)
}

// awaitStart tells the bench the worker is ready and blocks until the
// bench closes its stdin: the start of the measurement window, common to
// every worker of a phase.
func awaitStart(stdin io.Reader, stdout io.Writer) error {
	if _, err := fmt.Fprintln(stdout, readyLine); err != nil {
		return fmt.Errorf("report ready: %w", err)
	}
	if _, err := io.Copy(io.Discard, stdin); err != nil {
		return fmt.Errorf("wait for the start: %w", err)
	}
	return nil
}

// checkClocks makes sure the clocks the workers read in their loops
// (runSpin's and workload.Requests') work, so that the loops can ignore
// errors that then cannot happen.
func checkClocks() error {
	var ts unix.Timespec
	for _, id := range []int32{unix.CLOCK_MONOTONIC, unix.CLOCK_THREAD_CPUTIME_ID} {
		if err := unix.ClockGettime(id, &ts); err != nil {
			return fmt.Errorf("clock_gettime(%d): %w", id, err)
		}
	}
	return nil
}

// clockNs reads clock id in nanoseconds. checkClocks made sure it works.
func clockNs(id int32) int64 {
	var ts unix.Timespec
	unix.ClockGettime(id, &ts)
	return ts.Nano()
}

// runRequesters runs p.threads requester threads over one window
// (workload.Requests) and returns their latencies' percentiles. Each
// thread moves itself into p.threadCgroup, if set, before the bench's
// start.
func runRequesters(p childParams, stdin io.Reader, stdout io.Writer) (*requesterReport, error) {
	cfg := workload.RequestConfig{
		Threads:  p.threads,
		Period:   p.period,
		Work:     p.work,
		Duration: p.duration,
		Ready:    func() error { return awaitStart(stdin, stdout) },
	}
	if p.threadCgroup != "" {
		cfg.ThreadSetup = func(int) error { return joinCgroup(p.threadCgroup) }
	}
	rep, err := workload.Requests(context.Background(), cfg)
	if err != nil {
		return nil, err
	}
	return &requesterReport{
		Threads:  p.threads,
		Window:   p.duration,
		Requests: int64(rep.Requests),
		Expected: int64(p.threads) * int64(p.duration/p.period),
		P50:      rep.Percentile(50),
		P90:      rep.Percentile(90),
		P99:      rep.Percentile(99),
		Max:      rep.Percentile(100),
	}, nil
}

// joinCgroup moves the calling thread, alone, into the threaded cgroup
// dir. The thread must stay locked to its goroutine.
func joinCgroup(dir string) error {
	tid := []byte(fmt.Sprint(unix.Gettid()))
	if err := os.WriteFile(filepath.Join(dir, "cgroup.threads"), tid, 0); err != nil {
		return fmt.Errorf("move thread into its cgroup: %w", err)
	}
	return nil
}

// spinUnitIters is one unit of hog and worker throughput, in xorshift
// steps of about 1ns each natively (about 20-50 times that under qemu
// TCG): about 10µs natively, so that a worker notices the end of its
// window at once.
const spinUnitIters = 1 << 13

// spin does iters steps of Marsaglia's xorshift64 generator from x, whose
// result depends on every step.
//
//go:noinline
func spin(x uint64, iters int) uint64 {
	for range iters {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
	}
	return x
}

// sink keeps spin results alive.
var sink uint64

// runSpin does work units on one locked thread from the start to the end
// of the window.
func runSpin(p childParams, stdin io.Reader, stdout io.Writer) (*spinReport, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := awaitStart(stdin, stdout); err != nil {
		return nil, err
	}
	start := clockNs(unix.CLOCK_MONOTONIC)
	end := start + int64(p.duration)
	x := uint64(start) | 1
	var units int64
	for clockNs(unix.CLOCK_MONOTONIC) < end {
		x = spin(x, spinUnitIters)
		units++
	}
	sink = x
	return &spinReport{Window: p.duration, Units: units}, nil
}
