package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/scxkit/scxkit/internal/schedproc"
	"github.com/scxkit/scxkit/scx"
	"github.com/scxkit/scxkit/workload"
)

// guestCommand is the hidden subcommand that runs the demo itself: in the
// VM, where the host passes this very binary as the payload, or on a host
// with sched_ext.
const guestCommand = "demo-guest"

// guestSimple is where the host puts examples/simple in the guest.
const guestSimple = "/simple"

// Bounds of the guest half.
const (
	// attachTimeout bounds the wait for simple to attach: loading BPF
	// under TCG takes a few seconds.
	attachTimeout = 60 * time.Second
	// detachTimeout is how long simple has to exit after SIGINT before it
	// is killed.
	detachTimeout = 30 * time.Second
	// calibrationLimit bounds the calibration of the workload.
	calibrationLimit = 60 * time.Second
	// statsInterval is simple's -stats interval.
	statsInterval = time.Second
	// pingPongPairs is the number of ping-pong pairs of the workload.
	pingPongPairs = 2
	// maxSpinners keeps the workload within workload.MaxThreads.
	maxSpinners = 512
)

// workloadDeadline is the hard bound of one workload run: a hang fails the
// demo rather than blocking it.
func workloadDeadline(target time.Duration) time.Duration {
	return max(20*target, 30*time.Second)
}

// guestOptions are the flags of demo-guest.
type guestOptions struct {
	seconds float64
	example string // which example scheduler: its ops name
	fifo    bool
	simple  string // path of the example's binary
}

// args returns the command line that runs o: demo-guest and its flags.
func (o *guestOptions) args() []string {
	args := []string{guestCommand, "--seconds", strconv.FormatFloat(o.seconds, 'g', -1, 64), "--example", o.example, "--simple", o.simple}
	if o.fifo {
		args = append(args, "--fifo")
	}
	return args
}

func guestCommandFlags() (*flag.FlagSet, func(context.Context, io.Writer, io.Writer) error) {
	fs := flag.NewFlagSet(guestCommand, flag.ContinueOnError)
	o := &guestOptions{}
	fs.Float64Var(&o.seconds, "seconds", 3, "how long the workload should take under the kernel's default scheduler")
	fs.StringVar(&o.example, "example", examples[0], "the example scheduler (its ops name)")
	fs.BoolVar(&o.fifo, "fifo", false, "run simple with -fifo")
	fs.StringVar(&o.simple, "simple", guestSimple, "path of the example's binary")
	setUsage(fs, "scxkit "+guestCommand+" [flags]", "The half of scxkit demo that runs on a sched_ext kernel, usually in the VM.")
	return fs, func(ctx context.Context, stdout, _ io.Writer) error {
		if math.IsNaN(o.seconds) || o.seconds <= 0 || o.seconds > maxDemoSeconds {
			return usagef("--seconds %v: want more than 0 and at most %d", o.seconds, maxDemoSeconds)
		}
		if !slices.Contains(examples, o.example) {
			return unknownExample(o.example)
		}
		return runGuest(ctx, o, &schedproc.SyncWriter{W: stdout})
	}
}

// runGuest runs the demo on the running kernel, which must have sched_ext
// with no scheduler attached: the workload under the kernel's default
// scheduler, then under simple, then a comparison. simple never outlives
// it.
func runGuest(ctx context.Context, o *guestOptions, out io.Writer) error {
	st, err := requireNoScheduler()
	if err != nil {
		return err
	}
	cpus := runtime.NumCPU()
	fmt.Fprintf(out, "demo: kernel %s, %d CPUs, sched_ext %s\n", unameRelease(), cpus, st.State)

	target := o.target()
	cfg := workload.Config{
		Spinners:      min(2*cpus, maxSpinners),
		PingPongPairs: pingPongPairs,
		Deadline:      workloadDeadline(target),
	}
	fmt.Fprintf(out, "demo: calibrating the workload to take about %v under the kernel's default scheduler\n", target)
	calStart := time.Now()
	if cfg.SpinWork, cfg.RoundTrips, err = calibrate(ctx, cfg.Spinners, cfg.PingPongPairs, target); err != nil {
		return err
	}
	fmt.Fprintf(out, "demo: workload: %d spinners x %d units of work, %d ping-pong pairs x %d round trips (calibrated in %.1fs)\n",
		cfg.Spinners, cfg.SpinWork, cfg.PingPongPairs, cfg.RoundTrips, time.Since(calStart).Seconds())

	fmt.Fprintf(out, "demo: [1/2] running the workload under the kernel's default scheduler\n")
	base, err := workload.Run(ctx, cfg)
	if err != nil {
		return fmt.Errorf("workload under the kernel's default scheduler: %w", err)
	}
	fmt.Fprintf(out, "demo: done in %.1fs\n", base.Elapsed.Seconds())

	ops := o.example
	args := []string{"-stats", statsInterval.String()}
	if o.fifo {
		ops = "simple_fifo"
		args = append(args, "-fifo")
	}
	fmt.Fprintf(out, "demo: [2/2] starting %s %s\n", o.simple, strings.Join(args, " "))
	p, err := schedproc.Start(o.example, o.simple, args, out)
	if err != nil {
		return err
	}
	defer p.Stop(detachTimeout)

	if err := p.WaitAttached(ctx, ops, attachTimeout); err != nil {
		return err
	}
	attached := time.Now()
	fmt.Fprintf(out, "demo: sched_ext enabled with %s; running the workload under it\n", ops)
	under, err := workloadUnder(ctx, p, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "demo: done in %.1fs\n", under.Elapsed.Seconds())
	st, err = scx.ReadStatus(nil)
	if err != nil {
		return fmt.Errorf("read sched_ext status: %w", err)
	}
	if st.State != scx.StateEnabled || st.Ops != ops {
		return fmt.Errorf("after the workload sched_ext is %s (ops %q), want enabled with %s", st.State, st.Ops, ops)
	}
	// Let simple print at least one counters line.
	if err := sleep(ctx, time.Until(attached.Add(statsInterval+statsInterval/2))); err != nil {
		return err
	}

	fmt.Fprintf(out, "demo: stopping %s (SIGINT)\n", ops)
	if err := p.Stop(detachTimeout); err != nil {
		return err
	}
	if err := schedproc.WaitDisabled(ctx, 10*time.Second); err != nil {
		return err
	}
	fmt.Fprintf(out, "demo: sched_ext disabled: every task is back on the kernel's default scheduler\n")

	fmt.Fprintf(out, "demo: under the kernel's default scheduler: %s\n", base)
	fmt.Fprintf(out, "demo: under %s: %s\n", ops, under)
	fmt.Fprintf(out, "demo: workload took %.1fs under %s vs %.1fs under the kernel's default scheduler (ratio %.2f)\n",
		under.Elapsed.Seconds(), ops, base.Elapsed.Seconds(), under.Elapsed.Seconds()/base.Elapsed.Seconds())
	return nil
}

func (o *guestOptions) target() time.Duration {
	return time.Duration(o.seconds * float64(time.Second))
}

// errSchedulerExited stops a workload when the scheduler exits under it.
var errSchedulerExited = errors.New("the scheduler exited")

// workloadUnder runs the workload while simple runs, stopping it early if
// simple exits.
func workloadUnder(ctx context.Context, p *schedproc.Proc, cfg workload.Config) (*workload.Report, error) {
	var rep *workload.Report
	err := whileRunning(ctx, p, "simple", func(ctx context.Context) (err error) {
		rep, err = workload.Run(ctx, cfg)
		return err
	})
	if err != nil {
		return nil, err
	}
	return rep, nil
}

// whileRunning calls run with a context that ends, with the cause
// errSchedulerExited, if the scheduler p (called name) exits meanwhile.
// run's error is wrapped in an error that says which it was: the
// scheduler exiting under it, or the load failing on its own.
func whileRunning(ctx context.Context, p *schedproc.Proc, name string, run func(context.Context) error) error {
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-p.Done():
			cancel(errSchedulerExited)
		case <-wctx.Done():
		}
	}()
	err := run(wctx)
	if err != nil && context.Cause(wctx) == errSchedulerExited {
		// The load may have failed some other way as it was stopped:
		// what matters is that the scheduler is gone.
		<-p.Done()
		return fmt.Errorf("%s exited during the workload (%s): %w", name, p.Err(), errSchedulerExited)
	}
	if err != nil {
		return fmt.Errorf("workload under %s: %w", name, err)
	}
	return nil
}

// calibrate finds the spin work and round trips for which the workload
// takes about target on this machine under the current scheduler. It runs
// short workloads of the same shape, resizing each kind of thread until
// both take between probe and twice that, so that they overlap as in the
// real run, and then scales to target.
func calibrate(ctx context.Context, spinners, pairs int, target time.Duration) (spinWork, roundTrips int, err error) {
	ctx, cancel := context.WithTimeoutCause(ctx, calibrationLimit, fmt.Errorf("calibration took more than %v", calibrationLimit))
	defer cancel()
	probe := min(max(target/10, 150*time.Millisecond), 500*time.Millisecond)
	sw, rt := 1, 4
	for range 20 {
		rep, err := workload.Run(ctx, workload.Config{
			Spinners: spinners, SpinWork: sw, PingPongPairs: pairs, RoundTrips: rt,
			Deadline: calibrationLimit,
		})
		if err != nil {
			return 0, 0, fmt.Errorf("calibrate the workload: %w", err)
		}
		spin, pp := slowest(rep, workload.KindSpin), slowest(rep, workload.KindPingPong)
		if inWindow(spin, probe) && inWindow(pp, probe) {
			return scaleWork(sw, spin, target), scaleWork(rt, pp, target), nil
		}
		sw = resize(sw, spin, probe)
		rt = resize(rt, pp, probe)
	}
	return 0, 0, errors.New("calibrate the workload: its time did not settle in 20 rounds")
}

// inWindow reports whether a calibration run's time d is long enough to
// measure and short enough to be cheap.
func inWindow(d, probe time.Duration) bool { return d >= probe && d <= 2*probe }

// resize returns the work to try next, given that n units took took: n if
// that is in the window, else n scaled towards 1.5 probe, by at most 16x.
func resize(n int, took, probe time.Duration) int {
	switch {
	case inWindow(took, probe):
		return n
	case took < probe/64:
		return n * 8
	}
	f := 1.5 * float64(probe) / float64(took)
	return max(1, int(math.Round(float64(n)*min(max(f, 1.0/16), 16))))
}

// scaleWork scales n, which took took, to target.
func scaleWork(n int, took, target time.Duration) int {
	return max(1, int(math.Round(float64(n)*float64(target)/float64(took))))
}

// slowest returns the time of the slowest thread of kind: the workload's
// time is its slowest thread's.
func slowest(rep *workload.Report, kind string) time.Duration {
	var d time.Duration
	for _, t := range rep.Threads {
		if t.Kind == kind {
			d = max(d, t.Elapsed)
		}
	}
	return d
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// requireNoScheduler returns sched_ext's status, or an error unless it is
// disabled: a guest command runs its scheduler on a kernel where no other
// one is attached.
func requireNoScheduler() (scx.Status, error) {
	st, err := scx.ReadStatus(nil)
	if err != nil {
		return st, fmt.Errorf("read sched_ext status: %w", err)
	}
	if st.State != scx.StateDisabled {
		return st, fmt.Errorf("sched_ext is %s (ops %q), want disabled: another scheduler is attached", st.State, st.Ops)
	}
	return st, nil
}
