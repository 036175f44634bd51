// Command bench compares the interactive example scheduler with the
// kernel's default scheduler (EEVDF: no sched_ext scheduler attached) on
// one machine, and prints what it measured and the ratios
// interactive/default next to the targets of the issue that asked for the
// scheduler: p99 wakeup latency at most 0.8x the default's, while
// throughput is at least 1.0x. A missed target is reported, not an error.
//
// Each run measures both schedulers, in turn; the order alternates
// between runs (default first in odd runs) so that drift cancels out. An
// unmeasured mixed phase of -warmup comes first, so that run 1 does not
// pay alone for cold caches.
// Under each scheduler, two phases of -duration run:
//
//   - mixed: -requesters request/response threads in the cgroup
//     scxkit-bench/lat against -hogs CPU-bound processes in
//     scxkit-bench/bg. A request sleeps until its target time
//     (clock_nanosleep, absolute, timer slack 1ns), records how late it
//     woke (its wakeup latency), spins -work of its thread's CPU time,
//     and the next target is -period later (or now, if that passed).
//     Reported: the latencies' p50, p90, p99 and maximum, requests done,
//     the kernel's view of the requester threads' waits for a CPU
//     (package latency: p50 and p99 from wakeup or preemption to
//     running; the threads move into lat/req, a threaded child of lat,
//     so that the Go runtime's threads are left out), and the hogs' work
//     units per second.
//   - throughput: -workers CPU-bound processes in scxkit-bench/batch;
//     their work units per second.
//
// Workers are the bench binary itself, re-executed and born in their
// cgroups (CLONE_INTO_CGROUP), so they never run outside their class. The
// bench creates the cgroups under -cgroup-root and removes them at the
// end; it enables no controller (with the cpu controller, the default
// scheduler would share CPU time between the cgroups by weight). For the
// interactive phases it writes the class configuration (see
// interactiveConfig), starts the -scheduler binary with it, waits until
// /sys/kernel/sched_ext reports it attached, and stops it with SIGTERM
// afterwards, expecting a clean detach.
//
// Build both binaries static and run the bench as root on a kernel with
// sched_ext:
//
//	CGO_ENABLED=0 go build -o /tmp/interactive ./examples/interactive
//	CGO_ENABLED=0 go build -o /tmp/bench ./examples/interactive/internal/bench
//	sudo /tmp/bench -scheduler /tmp/interactive -runs 5
//
// Without -scheduler it runs the default-scheduler phases only, on any
// kernel. On a machine without sched_ext, the VM test runs it on the
// pinned kernels (see package vmtest):
//
//	go test -v ./examples/interactive/internal/bench
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/scxkit/scxkit/latency"
	"github.com/scxkit/scxkit/scx"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == childArg {
		os.Exit(childMain(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
	}
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// Bounds on the number of workers: each is a process, each requester an
// OS thread.
const (
	maxRequesters = 1000
	maxProcs      = 1024
)

// options are the command line flags.
type options struct {
	scheduler  string
	runs       int
	duration   time.Duration
	requesters int
	hogs       int
	workers    int
	period     time.Duration
	work       time.Duration
	warmup     time.Duration
	json       bool
	cgroupRoot string
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := runtime.NumCPU()
	o := &options{}
	fs.StringVar(&o.scheduler, "scheduler", "", "the interactive binary (empty: measure the default scheduler only)")
	fs.IntVar(&o.runs, "runs", 3, "runs, each measuring both schedulers")
	fs.DurationVar(&o.duration, "duration", 4*time.Second, "length of each phase")
	fs.IntVar(&o.requesters, "requesters", n, "request/response threads in the mixed phase")
	fs.IntVar(&o.hogs, "hogs", n, "CPU-bound background processes in the mixed phase")
	fs.IntVar(&o.workers, "workers", 2*n, "CPU-bound processes in the throughput phase")
	fs.DurationVar(&o.period, "period", 5*time.Millisecond, "time between a requester's requests")
	fs.DurationVar(&o.work, "work", 200*time.Microsecond, "CPU time of one request")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "length of an unmeasured mixed phase before the first run (0: none)")
	fs.BoolVar(&o.json, "json", false, "print a JSON summary line at the end")
	fs.StringVar(&o.cgroupRoot, "cgroup-root", "/sys/fs/cgroup", "where cgroup v2 is mounted")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return o, o.validate()
}

// validate checks the flags' values against each other; errors name the
// flag and a value that works.
func (o *options) validate() error {
	switch {
	case o.runs < 1:
		return fmt.Errorf("-runs %d: must be at least 1, e.g. -runs 3", o.runs)
	case o.period < 100*time.Microsecond:
		return fmt.Errorf("-period %v: must be at least 100µs, e.g. -period 5ms", o.period)
	case o.work <= 0 || o.work >= o.period:
		return fmt.Errorf("-work %v: must be positive and shorter than -period %v, e.g. -work 200µs", o.work, o.period)
	case o.duration < 20*o.period:
		return fmt.Errorf("-duration %v: must be at least 20 periods (%v) for a requester to make 20 requests, e.g. -duration 4s", o.duration, 20*o.period)
	case o.requesters < 1 || o.requesters > maxRequesters:
		return fmt.Errorf("-requesters %d: must be from 1 to %d, e.g. -requesters %d", o.requesters, maxRequesters, runtime.NumCPU())
	case o.hogs < 1 || o.hogs > maxProcs:
		return fmt.Errorf("-hogs %d: must be from 1 to %d, e.g. -hogs %d", o.hogs, maxProcs, runtime.NumCPU())
	case o.workers < 1 || o.workers > maxProcs:
		return fmt.Errorf("-workers %d: must be from 1 to %d, e.g. -workers %d", o.workers, maxProcs, 2*runtime.NumCPU())
	case o.warmup < 0:
		return fmt.Errorf("-warmup %v: must not be negative, e.g. -warmup 1s", o.warmup)
	case o.cgroupRoot == "":
		return errors.New("-cgroup-root: name where cgroup v2 is mounted, e.g. -cgroup-root /sys/fs/cgroup")
	}
	if o.scheduler != "" {
		st, err := os.Stat(o.scheduler)
		if err != nil {
			return fmt.Errorf("-scheduler: %w (build it with: CGO_ENABLED=0 go build -o %s ./examples/interactive)", err, o.scheduler)
		}
		if !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
			return fmt.Errorf("-scheduler %s: not an executable file", o.scheduler)
		}
	}
	return nil
}

// bench is what the phases of all runs share.
type bench struct {
	o      *options
	self   string // the bench binary, re-executed as workers
	cg     *cgroups
	config string // the scheduler's config file; "" without -scheduler
	log    io.Writer

	// prof is the kernel's view of the lat cgroup's waits; nil, with
	// profErr saying why, when package latency cannot run here.
	prof    *latency.Profiler
	profErr error
	snap    []latency.CgroupStats
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	o, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if os.Geteuid() != 0 {
		return errors.New("needs root: it creates cgroups, attaches a scheduler and loads BPF tracing programs")
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the bench binary for its workers: %w", err)
	}
	if o.scheduler != "" {
		if _, err := scx.ReadStatus(nil); err != nil {
			return fmt.Errorf("-scheduler %s: this kernel cannot run a sched_ext scheduler: %w", o.scheduler, err)
		}
	}
	if err := checkDisabled(); err != nil {
		return err
	}
	cg, err := makeCgroups(o.cgroupRoot)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, cg.remove()) }()
	b := &bench{o: o, self: self, cg: cg, log: stderr}
	s := &Summary{
		Kernel:        kernelRelease(),
		CPUs:          runtime.NumCPU(),
		CPUController: cg.cpuController,
		Params: Params{
			Scheduler: o.scheduler, Runs: o.runs, Duration: o.duration,
			Requesters: o.requesters, Hogs: o.hogs, Workers: o.workers,
			Period: o.period, Work: o.work, Warmup: o.warmup,
		},
	}
	if o.scheduler != "" {
		if b.config, s.Params.Config, err = writeConfig(cg); err != nil {
			return err
		}
		defer os.Remove(b.config)
	}
	b.startKernel(ctx)
	if b.profErr != nil {
		s.KernelLatencyError = b.profErr.Error()
		fmt.Fprintf(stderr, "bench: warning: no kernel latency figures: %v\n", b.profErr)
	} else {
		defer b.prof.Close()
	}
	if err := b.warmUp(ctx); err != nil {
		return err
	}
	for i := range o.runs {
		r, err := b.runOnce(ctx, i)
		if err != nil {
			return fmt.Errorf("run %d: %w", i+1, err)
		}
		s.Runs = append(s.Runs, r)
		printRun(stdout, r)
	}
	s.summarize()
	printSummary(stdout, s)
	if o.json {
		line, err := json.Marshal(s)
		if err != nil {
			return fmt.Errorf("encode summary: %w", err)
		}
		fmt.Fprintf(stdout, "%s\n", line)
	}
	return nil
}

// kernelRelease returns uname -r.
func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Release[:])
}

// warmUp runs an unmeasured mixed phase of -warmup under the default
// scheduler, so that the first measured phase does not pay alone for
// what a first run costs (page faults, cold caches; under qemu TCG,
// translating the code).
func (b *bench) warmUp(ctx context.Context) error {
	if b.o.warmup == 0 {
		return nil
	}
	b.logf("warm-up: default: mixed phase (%v)", b.o.warmup)
	if _, err := b.mixed(ctx, b.o.warmup); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	return nil
}

// runOnce measures run i (from 0): both schedulers, the default first in
// even runs.
func (b *bench) runOnce(ctx context.Context, i int) (*Run, error) {
	r := &Run{Index: i + 1, Order: []string{schedDefault}}
	if b.o.scheduler != "" {
		r.Order = []string{schedDefault, schedInteractive}
		if i%2 == 1 {
			r.Order = []string{schedInteractive, schedDefault}
		}
	}
	for _, name := range r.Order {
		var err error
		if name == schedDefault {
			r.Default, err = b.underDefault(ctx, i)
		} else {
			r.Interactive, err = b.underInteractive(ctx, i)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	return r, nil
}

// logf reports progress on stderr.
func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "bench: "+format+"\n", args...)
}

// phases runs the mixed and the throughput phase; check, called after
// each, makes sure the scheduler under test still runs.
func (b *bench) phases(ctx context.Context, i int, res *SchedResult, check func() error) error {
	var err error
	b.logf("run %d/%d: %s: mixed phase (%v)", i+1, b.o.runs, res.Scheduler, b.o.duration)
	if res.Mixed, err = b.mixed(ctx, b.o.duration); err != nil {
		return fmt.Errorf("mixed phase: %w", err)
	}
	if err := check(); err != nil {
		return fmt.Errorf("after the mixed phase: %w", err)
	}
	b.logf("run %d/%d: %s: throughput phase (%v)", i+1, b.o.runs, res.Scheduler, b.o.duration)
	if res.Throughput, err = b.throughput(ctx); err != nil {
		return fmt.Errorf("throughput phase: %w", err)
	}
	if err := check(); err != nil {
		return fmt.Errorf("after the throughput phase: %w", err)
	}
	return nil
}

// underDefault runs the phases with no sched_ext scheduler attached.
func (b *bench) underDefault(ctx context.Context, i int) (*SchedResult, error) {
	if err := checkDisabled(); err != nil {
		return nil, err
	}
	res := &SchedResult{Scheduler: schedDefault}
	return res, b.phases(ctx, i, res, checkDisabled)
}

// underInteractive attaches the interactive scheduler, runs the phases
// and detaches it.
func (b *bench) underInteractive(ctx context.Context, i int) (*SchedResult, error) {
	b.logf("run %d/%d: attaching %s", i+1, b.o.runs, b.o.scheduler)
	s, took, err := startScheduler(ctx, b.o.scheduler, b.config)
	if err != nil {
		return nil, err
	}
	defer s.kill()
	res := &SchedResult{Scheduler: schedInteractive, Attached: true, AttachTime: took}
	if err := b.phases(ctx, i, res, s.check); err != nil {
		return nil, err
	}
	if res.DetachTime, err = s.stop(ctx); err != nil {
		return nil, err
	}
	res.Detached = true
	res.Classes = lastClassStats(s.stderr.String())
	return res, nil
}

// lastClassStats returns the per-class counters of the scheduler's last
// stats line, "" if it printed none: the preempt component's stats
// (preempt.NAME{class=CLASS}=VALUE, see runner.AppendStatsLine), one
// summary per class as preempt.ClassStats.String gives it,
// "lat: run=463ms wakeups=3124 wait_p50=98us ... | bg: run=...".
func lastClassStats(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if !strings.Contains(lines[i], " preempt.") {
			continue
		}
		var order []string
		stats := map[string]map[string]float64{}
		for _, f := range strings.Fields(lines[i]) {
			name, ok := strings.CutPrefix(f, "preempt.")
			if !ok {
				continue
			}
			name, rest, ok := strings.Cut(name, "{class=")
			if !ok {
				continue
			}
			class, value, ok := strings.Cut(rest, "}=")
			if !ok {
				continue
			}
			v, err := strconv.ParseFloat(value, 64)
			if err != nil {
				continue
			}
			if stats[class] == nil {
				stats[class] = map[string]float64{}
				order = append(order, class)
			}
			stats[class][name] = v
		}
		var classes []string
		for _, c := range order {
			s := stats[c]
			classes = append(classes, fmt.Sprintf("%s: run=%.0fms wakeups=%.0f wait_p50=%.0fus wait_p99=%.0fus kicks=%.0f preempted=%.0f kept=%.0f run_ons=%.0f starved=%.0f",
				c, s["runtime_ns"]/1e6, s["wakeups"], s["wait_p50_ns"]/1e3, s["wait_p99_ns"]/1e3, s["kicks"], s["preempted"], s["kept"], s["run_ons"], s["starved"]))
		}
		return strings.Join(classes, " | ")
	}
	return ""
}
