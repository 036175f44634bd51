package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/scxkit/scxkit/internal/schedproc"
	"github.com/scxkit/scxkit/scx"
	"github.com/scxkit/scxkit/scxtest"
	"github.com/scxkit/scxkit/vmtest"
	"github.com/scxkit/scxkit/workload"
)

// vmGuestCommand is the hidden subcommand that runs the guest half of vm:
// in the VM, where the host passes this very binary as the payload, or on
// a host with sched_ext.
const vmGuestCommand = "vm-guest"

// guestScheduler is where the host puts the author's scheduler in the
// guest.
const guestScheduler = "/vmtest/scheduler"

// Workload kinds of vm (--workload), each from package workload.
const (
	loadMixed    = "mixed"    // workload.Run: spinners and ping-pong pairs, as demo runs
	loadSpin     = "spin"     // workload.Run, nearly all spinners
	loadPingPong = "pingpong" // workload.Run, nearly all ping-pong pairs
	loadRequests = "requests" // workload.Requests: periodic request threads
	loadNone     = "none"     // nothing: the scheduler runs the idle machine
)

// workloadKinds lists the kinds in the order the help shows them.
var workloadKinds = []string{loadMixed, loadSpin, loadPingPong, loadRequests, loadNone}

// errNotMainPackage is wrapped by the error for a PACKAGE that is not a
// command.
var errNotMainPackage = errors.New("not a main package")

// vmOptions are the flags and operands of vm.
type vmOptions struct {
	kernel   string
	cpus     int
	workload string
	seconds  float64
	ops      string
	pkg      string   // PACKAGE
	args     []string // ARGS, after --

	// self is the scxkit program that runs the guest half in the VM;
	// "" means this one (os.Executable). Tests set it.
	self string
}

func vmCommand() (*flag.FlagSet, func(context.Context, io.Writer, io.Writer) error) {
	fs := flag.NewFlagSet("vm", flag.ContinueOnError)
	o := &vmOptions{}
	newest := vmtest.Matrix[len(vmtest.Matrix)-1].Name
	fs.StringVar(&o.kernel, "kernel", "", fmt.Sprintf("boot kernel `NAME` of the matrix in a VM: %s (default %s, or the image named by $%s); implies a VM even on a sched_ext host",
		strings.Join(kernelNames(), ", "), newest, vmtest.EnvVmlinuz))
	fs.IntVar(&o.cpus, "cpus", 4, "`N` vCPUs for the VM")
	fs.StringVar(&o.workload, "workload", loadMixed, "the `KIND` of load to run under the scheduler: "+strings.Join(workloadKinds, ", "))
	fs.Float64Var(&o.seconds, "seconds", 3, "run the workload for about `S` seconds (sized under the kernel's default scheduler)")
	fs.StringVar(&o.ops, "ops", "", "wait until sched_ext runs the scheduler whose ops name (/sys/kernel/sched_ext/root/ops) is `NAME`; default: any scheduler")
	setUsage(fs, "scxkit vm [--kernel NAME] [--cpus N] [--workload KIND] [--seconds S] [--ops NAME] PACKAGE [-- ARGS...]", `Vm runs your own sched_ext scheduler on a sched_ext kernel, in a VM when
this machine's kernel has none. PACKAGE is the scheduler's main package
in the Go module of the current directory, as a package path or a
directory (./cmd/mysched); vm builds it with the go command there
(CGO_ENABLED=0), so the module's go.mod and its replace directives apply.

In the VM (a pinned sched_ext kernel booted in qemu, about 10 s under
TCG emulation) vm starts the scheduler with ARGS, waits until sched_ext
reports it enabled, runs the workload for about S seconds, and prints the
scheduler's output (each line prefixed with its name), the kernel's view
(/sys/kernel/sched_ext: state, root/ops, enable_seq, and its sched_ext
log lines, which give the exit reason), and how busy each CPU was over
the workload (/proc/stat). It then stops the scheduler with SIGINT and
checks that sched_ext is disabled again, every task back on the kernel's
default scheduler. The exit status is 1 if the scheduler did not attach,
exited early, or did not detach, or the workload did not complete.
With sched_ext on the host, and as root, vm runs on the host instead,
unless --kernel asks for a VM.

Workloads (package workload): mixed is demo's, CPU-bound spinners (two per
CPU) and ping-pong pairs; spin is the spinners (with one token ping-pong
round trip); pingpong is a ping-pong pair per CPU (with one token
spinner); requests is a request thread per CPU waking every 5ms for 200µs
of work; none runs nothing for S seconds. mixed, spin and pingpong are
sized under the kernel's default scheduler before the scheduler starts.

Example, for an out-of-tree module whose scheduler is ./cmd/mysched: its
go.mod requires github.com/scxkit/scxkit, perhaps with a replace
directive pointing at a local checkout, and go run builds scxkit from
that same version:

	cd ~/src/mysched
	go run github.com/scxkit/scxkit/cmd/scxkit vm --workload spin ./cmd/mysched -- -stats 1s

vm needs what demo needs (qemu, a static busybox, a kernel): on Debian,
a scxkit checkout's scripts/setup installs it.`)
	return fs, func(ctx context.Context, stdout, _ io.Writer) error {
		if err := o.setOperands(fs.Args()); err != nil {
			return err
		}
		return runVM(ctx, o, stdout)
	}
}

// setOperands takes PACKAGE and the ARGS after "--" from the arguments
// left after the flags (the flag package drops a "--" that comes before
// PACKAGE). It returns a *usageError.
func (o *vmOptions) setOperands(args []string) error {
	if len(args) == 0 || args[0] == "" {
		return usagef("name the scheduler's main PACKAGE, e.g. scxkit vm ./cmd/mysched")
	}
	o.pkg, args = args[0], args[1:]
	if strings.HasPrefix(o.pkg, "-") {
		return usagef("PACKAGE %q looks like a flag: put vm's flags before PACKAGE and the scheduler's after --, e.g. scxkit vm --cpus 2 ./cmd/mysched -- -stats 1s", o.pkg)
	}
	if len(args) > 0 && args[0] != "--" {
		return usagef("unexpected argument %q after PACKAGE: put vm's flags before PACKAGE and the scheduler's arguments after --, e.g. scxkit vm --cpus 2 %s -- %s", args[0], o.pkg, strings.Join(args, " "))
	}
	if len(args) > 0 {
		o.args = args[1:]
	}
	return nil
}

// validate checks the flags, returning a *usageError.
func (o *vmOptions) validate() error {
	switch {
	case o.cpus < 1 || o.cpus > 255:
		return usagef("--cpus %d: want 1 to 255 vCPUs", o.cpus)
	case math.IsNaN(o.seconds) || o.seconds <= 0 || o.seconds > maxDemoSeconds:
		return usagef("--seconds %v: want more than 0 and at most %d", o.seconds, maxDemoSeconds)
	case !slices.Contains(workloadKinds, o.workload):
		return usagef("--workload %q: unknown kind (known: %s)", o.workload, strings.Join(workloadKinds, ", "))
	case strings.ContainsAny(o.ops, " \t\n/"):
		return usagef("--ops %q: an ops name has no spaces or slashes; see /sys/kernel/sched_ext/root/ops while it runs", o.ops)
	}
	return nil
}

// target is how long the workload should run.
func (o *vmOptions) target() time.Duration {
	return time.Duration(o.seconds * float64(time.Second))
}

// runVM builds the scheduler and runs it with the workload: on this host
// if it can attach a sched_ext scheduler, else in a VM.
func runVM(ctx context.Context, o *vmOptions, stdout io.Writer) error {
	if err := o.validate(); err != nil {
		return err
	}
	kernel, err := pickKernel(o.kernel)
	if err != nil {
		return err
	}
	out := &schedproc.SyncWriter{W: stdout}
	name, err := mainPackage(ctx, o.pkg)
	if err != nil {
		return err
	}
	local, why := false, "--kernel asks for a VM"
	if o.kernel == "" {
		local, why = hostCanRun()
	}

	dir, err := os.MkdirTemp("", "scxkit-vm-")
	if err != nil {
		return fmt.Errorf("create a scratch directory: %w", err)
	}
	defer os.RemoveAll(dir)
	fmt.Fprintf(out, "vm: building %s\n", o.pkg)
	// "" builds in the current directory, in the author's module.
	bin, err := buildPackage(ctx, "", filepath.Join(dir, name), o.pkg)
	if err != nil {
		return err
	}

	g := &vmGuestOptions{seconds: o.seconds, workload: o.workload, ops: o.ops, name: name, scheduler: bin, schedArgs: o.args}
	if local {
		fmt.Fprintf(out, "vm: %s: running the scheduler directly on this host, not in a VM\n", why)
		return runVMGuest(ctx, g, out)
	}
	self := o.self
	if self == "" {
		if self, err = os.Executable(); err != nil {
			return fmt.Errorf("find this program to run it in the VM: %w", err)
		}
	}
	g.scheduler = guestScheduler
	return bootVM(ctx, "vm", "the scheduler's run", why, kernel, o.cpus, vmGuestTimeout(o.target()), &vmtest.Command{
		Path:  self,
		Args:  g.args(),
		Files: []vmtest.File{{Guest: guestScheduler, Host: bin, Mode: 0o755}},
	}, out)
}

// vmGuestTimeout bounds the whole VM run: boot and power-off, calibration,
// the workload up to its deadline, attach, detach, and slack.
func vmGuestTimeout(target time.Duration) time.Duration {
	return 2*time.Minute + calibrationLimit + workloadDeadline(target) + attachTimeout + detachTimeout + time.Minute
}

// mainPackage checks with go list, in the current directory, that pkg is
// a main package, and returns the name its binary gets (the last element
// of its import path).
func mainPackage(ctx context.Context, pkg string) (string, error) {
	if _, err := exec.LookPath("go"); err != nil {
		return "", fmt.Errorf("the go command is not on PATH: vm builds PACKAGE %s with it in the current module; install Go (https://go.dev/dl) or add it to PATH: %w", pkg, err)
	}
	cmd := exec.CommandContext(ctx, "go", "list", "-f", "{{.Name}} {{.ImportPath}}", pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go list %s: %w\n%s", pkg, err, strings.TrimSpace(stderr.String()))
	}
	fields := strings.Fields(string(b))
	switch {
	case len(fields) != 2:
		return "", fmt.Errorf("go list %s: want one package, got %q: name one main package", pkg, strings.TrimSpace(string(b)))
	case fields[0] != "main":
		return "", fmt.Errorf("PACKAGE %s is package %s (%s), %w: name the scheduler's command, the package main whose main function loads and attaches it", pkg, fields[0], fields[1], errNotMainPackage)
	}
	return path.Base(fields[1]), nil
}

// vmGuestOptions are the flags of vm-guest.
type vmGuestOptions struct {
	seconds   float64
	workload  string
	ops       string   // the ops name to wait for, "" for any
	name      string   // the scheduler's name, its output's prefix
	scheduler string   // path of its binary
	schedArgs []string // ARGS: the scheduler's command line
}

// args returns the command line that runs o: vm-guest, its flags, "--"
// and the scheduler's arguments.
func (o *vmGuestOptions) args() []string {
	args := []string{vmGuestCommand,
		"--seconds", strconv.FormatFloat(o.seconds, 'g', -1, 64),
		"--workload", o.workload,
		"--ops", o.ops,
		"--name", o.name,
		"--scheduler", o.scheduler,
		"--"}
	return append(args, o.schedArgs...)
}

func vmGuestCommandFlags() (*flag.FlagSet, func(context.Context, io.Writer, io.Writer) error) {
	fs := flag.NewFlagSet(vmGuestCommand, flag.ContinueOnError)
	o := &vmGuestOptions{}
	fs.Float64Var(&o.seconds, "seconds", 3, "how long the workload should run")
	fs.StringVar(&o.workload, "workload", loadMixed, "the kind of workload")
	fs.StringVar(&o.ops, "ops", "", "the ops name to wait for (default any)")
	fs.StringVar(&o.name, "name", "scheduler", "the scheduler's name, the prefix of its output")
	fs.StringVar(&o.scheduler, "scheduler", guestScheduler, "path of the scheduler's binary")
	setUsage(fs, "scxkit "+vmGuestCommand+" [flags] [-- ARGS...]", "The half of scxkit vm that runs on a sched_ext kernel, usually in the VM.")
	return fs, func(ctx context.Context, stdout, _ io.Writer) error {
		v := &vmOptions{cpus: 1, seconds: o.seconds, workload: o.workload, ops: o.ops}
		if err := v.validate(); err != nil {
			return err
		}
		o.schedArgs = fs.Args()
		return runVMGuest(ctx, o, &schedproc.SyncWriter{W: stdout})
	}
}

// runVMGuest runs the scheduler under the workload on the running kernel,
// which must have sched_ext with no scheduler attached, and checks that it
// attaches, survives the workload and detaches on SIGINT. The scheduler
// never outlives it.
func runVMGuest(ctx context.Context, o *vmGuestOptions, out io.Writer) error {
	st, err := requireNoScheduler()
	if err != nil {
		return err
	}
	cpus := runtime.NumCPU()
	fmt.Fprintf(out, "vm: kernel %s, %d CPUs, sched_ext %s\n", unameRelease(), cpus, st)
	klog, err := openKernelLog()
	if err != nil {
		fmt.Fprintf(out, "vm: not showing the kernel's sched_ext messages: %v\n", err)
	}
	defer klog.Close()
	// kernelView prints what the kernel says now: the sysfs state and
	// its sched_ext log lines since the last call.
	kernelView := func(when string) {
		if st, err := scx.ReadStatus(nil); err != nil {
			fmt.Fprintf(out, "vm: %s: read sched_ext status: %v\n", when, err)
		} else {
			fmt.Fprintf(out, "vm: %s: sched_ext %s\n", when, st)
		}
		for _, l := range klog.Lines("sched_ext") {
			fmt.Fprintf(out, "vm: kernel: %s\n", l)
		}
	}

	load, err := planLoad(ctx, o.workload, o.target(), cpus, out)
	if err != nil {
		return err
	}

	fmt.Fprintf(out, "vm: starting %s: %s\n", o.name, strings.Join(append([]string{o.scheduler}, o.schedArgs...), " "))
	p, err := schedproc.Start(o.name, o.scheduler, o.schedArgs, out)
	if err != nil {
		return err
	}
	defer p.Stop(detachTimeout)
	if err := p.WaitAttached(ctx, o.ops, attachTimeout); err != nil {
		kernelView("not attached")
		return fmt.Errorf("%s did not attach: %w", o.name, err)
	}
	attached, err := scx.ReadStatus(nil)
	if err != nil {
		return fmt.Errorf("read sched_ext status: %w", err)
	}
	kernelView("attached")

	fmt.Fprintf(out, "vm: running workload %s under %s: %s\n", o.workload, attached.Ops, load)
	before, err := scxtest.ReadCPUTimes()
	if err != nil {
		return err
	}
	start := time.Now()
	var summary string
	err = whileRunning(ctx, p, o.name, func(ctx context.Context) (err error) {
		summary, err = load.run(ctx)
		return err
	})
	after, cerr := scxtest.ReadCPUTimes()
	if cerr == nil {
		fmt.Fprintf(out, "vm: CPUs busy over the workload (/proc/stat): %s\n", formatBusy(scxtest.BusyFraction(before, after)))
	}
	if err != nil {
		kernelView("workload failed")
		return err
	}
	fmt.Fprintf(out, "vm: workload %s completed in %.1fs: %s\n", o.workload, time.Since(start).Seconds(), summary)
	now, err := scx.ReadStatus(nil)
	if err != nil {
		return fmt.Errorf("read sched_ext status: %w", err)
	}
	if now.State != scx.StateEnabled || now.Ops != attached.Ops || now.EnableSeq != attached.EnableSeq {
		kernelView("after the workload")
		return fmt.Errorf("after the workload sched_ext is %s, want still enabled with %s (enable_seq %d): the scheduler was replaced or restarted", now, attached.Ops, attached.EnableSeq)
	}
	kernelView("after the workload")

	fmt.Fprintf(out, "vm: stopping %s (SIGINT)\n", o.name)
	if err := p.Stop(detachTimeout); err != nil {
		kernelView("stopped")
		return err
	}
	fmt.Fprintf(out, "vm: %s exited (%s)\n", o.name, p.Err())
	if err := schedproc.WaitDisabled(ctx, 10*time.Second); err != nil {
		kernelView("stopped")
		return fmt.Errorf("%s did not detach: %w", o.name, err)
	}
	kernelView("detached")
	fmt.Fprintf(out, "vm: sched_ext disabled: every task is back on the kernel's default scheduler\n")
	return nil
}

func (o *vmGuestOptions) target() time.Duration {
	return time.Duration(o.seconds * float64(time.Second))
}

// formatBusy formats per-CPU busy fractions: "cpu0 0.97 cpu1 0.95".
func formatBusy(fs []float64) string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = fmt.Sprintf("cpu%d %.2f", i, f)
	}
	return strings.Join(parts, " ")
}

// vmLoad is a workload of vm, sized.
type vmLoad struct {
	kind string
	cfg  workload.Config        // mixed, spin, pingpong
	req  workload.RequestConfig // requests
	d    time.Duration          // none
}

// planLoad sizes the workload kind to take about target on cpus CPUs:
// mixed, spin and pingpong are calibrated under the running (default)
// scheduler, as demo does.
func planLoad(ctx context.Context, kind string, target time.Duration, cpus int, out io.Writer) (*vmLoad, error) {
	l := &vmLoad{kind: kind}
	switch kind {
	case loadNone:
		l.d = target
		return l, nil
	case loadRequests:
		l.req = workload.RequestConfig{Threads: min(cpus, workload.MaxThreads), Duration: target}
		return l, nil
	}
	// workload.Run always has a spinner and a ping-pong pair (a zero
	// count means the default): spin and pingpong keep the other kind
	// down to one token thread or pair with one unit of work.
	spinners, pairs := min(2*cpus, maxSpinners), pingPongPairs
	switch kind {
	case loadSpin:
		pairs = 1
	case loadPingPong:
		spinners, pairs = 1, min(cpus, workload.MaxThreads/2-1)
	}
	fmt.Fprintf(out, "vm: sizing workload %s to take about %v under the kernel's default scheduler\n", kind, target)
	sw, rt, err := calibrate(ctx, spinners, pairs, target)
	if err != nil {
		return nil, err
	}
	switch kind {
	case loadSpin:
		rt = 1
	case loadPingPong:
		sw = 1
	}
	l.cfg = workload.Config{Spinners: spinners, SpinWork: sw, PingPongPairs: pairs, RoundTrips: rt, Deadline: workloadDeadline(target)}
	return l, nil
}

// String describes the load.
func (l *vmLoad) String() string {
	switch l.kind {
	case loadNone:
		return fmt.Sprintf("nothing for %v", l.d)
	case loadRequests:
		return fmt.Sprintf("%d request threads for %v", l.req.Threads, l.req.Duration)
	}
	return fmt.Sprintf("%d spinners x %d units of work, %d ping-pong pairs x %d round trips",
		l.cfg.Spinners, l.cfg.SpinWork, l.cfg.PingPongPairs, l.cfg.RoundTrips)
}

// run runs the load and summarizes how it went; an error means it did
// not complete.
func (l *vmLoad) run(ctx context.Context) (string, error) {
	switch l.kind {
	case loadNone:
		return "idle", sleep(ctx, l.d)
	case loadRequests:
		rep, err := workload.Requests(ctx, l.req)
		if err != nil {
			return "", err
		}
		if ctx.Err() != nil {
			return "", context.Cause(ctx)
		}
		if rep.Requests == 0 {
			return "", errors.New("requests: no request was served")
		}
		return fmt.Sprintf("%d requests, wakeup latency p50 %v p99 %v max %v", rep.Requests,
			rep.Percentile(50), rep.Percentile(99), rep.Latencies[len(rep.Latencies)-1]), nil
	}
	rep, err := workload.Run(ctx, l.cfg)
	if err != nil {
		return "", err
	}
	return strings.ReplaceAll(rep.String(), "\n", "\n   "), nil
}

// kernelLog reads the kernel's log records (/dev/kmsg) written since it
// was opened. A nil *kernelLog has no lines.
type kernelLog struct{ fd int }

// openKernelLog opens /dev/kmsg at its end, non-blocking.
func openKernelLog() (*kernelLog, error) {
	fd, err := unix.Open("/dev/kmsg", unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/kmsg: %w", err)
	}
	if _, err := unix.Seek(fd, 0, io.SeekEnd); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("seek /dev/kmsg: %w", err)
	}
	return &kernelLog{fd: fd}, nil
}

// maxKernelLines bounds the lines Lines returns: a scheduler's error
// exit comes with a debug dump of hundreds of lines.
const maxKernelLines = 40

// Lines returns the messages logged since the last call that contain
// substr, at most maxKernelLines of them.
func (k *kernelLog) Lines(substr string) []string {
	if k == nil {
		return nil
	}
	var lines []string
	buf := make([]byte, 8192)
	for {
		n, err := unix.Read(k.fd, buf)
		if errors.Is(err, unix.EPIPE) {
			continue // records were overwritten before we read them
		}
		if err != nil || n <= 0 {
			return lines // EAGAIN: no more
		}
		// "prio,seq,usec,flags;message\n" and continuation lines.
		_, msg, ok := strings.Cut(string(buf[:n]), ";")
		msg, _, _ = strings.Cut(msg, "\n")
		if ok && strings.Contains(msg, substr) && len(lines) < maxKernelLines {
			lines = append(lines, msg)
		}
	}
}

// Close closes the log.
func (k *kernelLog) Close() error {
	if k == nil {
		return nil
	}
	return unix.Close(k.fd)
}
