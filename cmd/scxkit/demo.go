package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/scxkit/scxkit/internal/schedproc"
	"github.com/scxkit/scxkit/scx"
	"github.com/scxkit/scxkit/vmtest"
)

// modulePath is the module demo must run in: it builds examples/simple
// from it.
const modulePath = "github.com/scxkit/scxkit"

// examples are the example schedulers demo (--example) and bench can
// run, each examples/<name> in the module: every example that runs with
// no flags. The first is the default. TestExamplesListed checks that
// every directory of examples/ with a main package is here or in
// flaggedExamples.
var examples = []string{"simple", "domains", "energy", "interactive", "nest", "responsive"}

// flaggedExamples are the examples that cannot run without flags naming
// something in the machine, so demo and bench cannot run them as they
// are; each maps to why, and how to run it instead.
var flaggedExamples = map[string]string{
	"pair": "it isolates the existing cgroups that its required -isolate flag names, and the demo creates none; run it on a sched_ext host (go run ./examples/pair -h) or through its own VM test (go test ./examples/pair), which creates them",
}

// unknownExample is the usage error for --example name.
func unknownExample(name string) error {
	if why, ok := flaggedExamples[name]; ok {
		return usagef("--example %q: demo cannot run it: %s", name, why)
	}
	return usagef("--example %q: unknown example (known: %s)", name, strings.Join(examples, ", "))
}

// benchExample is the example whose demo is its benchmark program
// (examples/<name>/internal/bench) rather than the generic workload: it
// compares latency and throughput under the example and under the
// kernel's default scheduler and prints the ratios.
const benchExample = "interactive"

// examplePackage is the import path of example name.
func examplePackage(name string) string { return modulePath + "/examples/" + name }

// demoOptions are the flags of demo.
type demoOptions struct {
	kernel  string
	cpus    int
	example string
	fifo    bool
	seconds float64
}

// maxDemoSeconds bounds --seconds, so that the VM's timeout stays sane.
const maxDemoSeconds = 600

func demoCommand() (*flag.FlagSet, func(context.Context, io.Writer, io.Writer) error) {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	o := &demoOptions{}
	newest := vmtest.Matrix[len(vmtest.Matrix)-1].Name
	fs.StringVar(&o.kernel, "kernel", "", fmt.Sprintf("boot kernel `NAME` of the matrix in a VM: %s (default %s, or the image named by $%s); implies a VM even on a sched_ext host",
		strings.Join(kernelNames(), ", "), newest, vmtest.EnvVmlinuz))
	fs.IntVar(&o.cpus, "cpus", 4, "`N` vCPUs for the VM")
	fs.StringVar(&o.example, "example", examples[0], "the example scheduler to run: any of examples/ that runs without flags: "+strings.Join(examples, ", ")+"; not "+strings.Join(slices.Sorted(maps.Keys(flaggedExamples)), ", ")+", which needs flags naming cgroups")
	fs.BoolVar(&o.fifo, "fifo", false, "run simple in FIFO mode (simple_fifo) instead of weighted virtual time")
	fs.Float64Var(&o.seconds, "seconds", 3, "size the workload to take `S` seconds under the kernel's default scheduler (interactive: each measured phase lasts S seconds)")
	setUsage(fs, "scxkit demo [--kernel NAME] [--cpus N] [--example NAME] [--fifo] [--seconds S]", `Demo runs an example scheduler (examples/simple unless --example says
otherwise) under a bounded, self-checking workload (CPU-bound spinners and
pipe ping-pong pairs) and compares the workload's time under it with its
time under the kernel's default scheduler. For --example interactive it
runs the example's benchmark instead: wakeup latency of request/response
threads beside CPU hogs, and throughput of CPU-bound workers, under the
kernel's default scheduler and under interactive, with their ratios.

When this machine's kernel has no sched_ext, demo boots a pinned sched_ext
kernel in qemu (under TCG emulation the boot takes about 10 s) and runs
there; with sched_ext on the host, and as root, it runs on the host. It
builds the example with the go command, so run it from a scxkit
checkout: go run ./cmd/scxkit demo. scripts/demo installs what the VM
needs first.`)
	return fs, func(ctx context.Context, stdout, _ io.Writer) error {
		return demo(ctx, o, stdout)
	}
}

func kernelNames() []string {
	var names []string
	for _, k := range vmtest.Matrix {
		names = append(names, k.Name)
	}
	return names
}

// validate checks the flags, returning a *usageError.
func (o *demoOptions) validate() error {
	switch {
	case o.cpus < 1 || o.cpus > 255:
		return usagef("--cpus %d: want 1 to 255 vCPUs", o.cpus)
	case math.IsNaN(o.seconds) || o.seconds <= 0 || o.seconds > maxDemoSeconds:
		return usagef("--seconds %v: want more than 0 and at most %d", o.seconds, maxDemoSeconds)
	case o.example == "":
		o.example = examples[0]
	case !slices.Contains(examples, o.example):
		return unknownExample(o.example)
	}
	if o.fifo && o.example != "simple" {
		return usagef("--fifo is a mode of simple, not of %s", o.example)
	}
	return nil
}

// vmKernel returns the kernel to boot, as pickKernel does for --kernel.
func (o *demoOptions) vmKernel() (vmtest.Kernel, error) { return pickKernel(o.kernel) }

// pickKernel returns the kernel a VM boots for --kernel name: that kernel
// of vmtest.Matrix; for "", the image of $SCXKIT_VMLINUZ if set, else the
// newest of the matrix. An unknown name is a *usageError.
func pickKernel(name string) (vmtest.Kernel, error) {
	if name == "" {
		if os.Getenv(vmtest.EnvVmlinuz) != "" {
			ks, err := vmtest.Kernels()
			if err != nil {
				return vmtest.Kernel{}, err
			}
			return ks[0], nil
		}
		return vmtest.Matrix[len(vmtest.Matrix)-1], nil
	}
	i := slices.IndexFunc(vmtest.Matrix, func(k vmtest.Kernel) bool { return k.Name == name })
	if i < 0 {
		return vmtest.Kernel{}, usagef("--kernel %q: unknown kernel (known: %s)", name, strings.Join(kernelNames(), ", "))
	}
	return vmtest.Matrix[i], nil
}

// target is the workload's intended time under the default scheduler.
func (o *demoOptions) target() time.Duration {
	return time.Duration(o.seconds * float64(time.Second))
}

// demo runs the demo: on the host if it can attach a sched_ext scheduler,
// else in a VM.
func demo(ctx context.Context, o *demoOptions, stdout io.Writer) error {
	if err := o.validate(); err != nil {
		return err
	}
	kernel, err := o.vmKernel()
	if err != nil {
		return err
	}
	out := &schedproc.SyncWriter{W: stdout}
	root, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	local, why := false, "--kernel asks for a VM"
	if o.kernel == "" {
		local, why = hostCanRun()
	}

	dir, err := os.MkdirTemp("", "scxkit-demo-")
	if err != nil {
		return fmt.Errorf("create a scratch directory: %w", err)
	}
	defer os.RemoveAll(dir)
	fmt.Fprintf(out, "demo: building %s\n", examplePackage(o.example))
	simple, err := buildExample(ctx, root, dir, o.example)
	if err != nil {
		return err
	}
	if o.example == benchExample {
		return demoBench(ctx, o, root, dir, simple, local, why, kernel, out)
	}

	g := &guestOptions{seconds: o.seconds, example: o.example, fifo: o.fifo, simple: simple}
	if local {
		fmt.Fprintf(out, "demo: %s: running the demo directly on this host, not in a VM\n", why)
		return runGuest(ctx, g, out)
	}

	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this program to run it in the VM: %w", err)
	}
	g.simple = guestSimple
	return bootVM(ctx, "demo", "demo", why, kernel, o.cpus, vmTimeout(o.target()), &vmtest.Command{
		Path:  self,
		Args:  g.args(),
		Files: []vmtest.File{{Guest: guestSimple, Host: simple, Mode: 0o755}},
	}, out)
}

// bootVM boots kernel in qemu with cpus vCPUs and 1 GiB, bounded by
// timeout, runs cmd there with its output going to out, and says why
// (hostCanRun's answer) and how the VM went, each line prefixed with
// prefix (the command's name). what names the run in an error ("demo").
func bootVM(ctx context.Context, prefix, what, why string, kernel vmtest.Kernel, cpus int, timeout time.Duration, cmd *vmtest.Command, out io.Writer) error {
	topo := vmtest.Topology{Cores: cpus}
	vm := &vmtest.VM{
		Kernel:    kernel,
		Topology:  topo,
		MemoryMiB: 1024,
		Timeout:   timeout,
	}
	fmt.Fprintf(out, "%s: %s\n", prefix, why)
	fmt.Fprintf(out, "%s: booting kernel %s in qemu with %d vCPUs and 1 GiB; without KVM (TCG emulation) the boot takes about 10 s\n",
		prefix, kernel, topo.CPUs())
	cmd.Stdout = out
	res, err := vm.RunRetryingPokeRace(ctx, cmd, pokeRaceNote(prefix, kernel, out, nil))
	if err != nil {
		return vmError(ctx, what, kernel, err)
	}
	fmt.Fprintf(out, "%s: VM done (kernel %s, %s, boot %.1fs, total %.1fs)\n",
		prefix, kernel.Name, res.Accel, res.Boot.Seconds(), res.Duration.Seconds())
	return nil
}

// pokeRaceNote returns the callback of vmtest's RunRetryingPokeRace that
// says on out, after prefix, why the boot runs again; then, if not nil,
// reset drops what was collected of the first boot's output.
func pokeRaceNote(prefix string, kernel vmtest.Kernel, out io.Writer, reset func()) func(*vmtest.RunError) {
	return func(re *vmtest.RunError) {
		fmt.Fprintf(out, "%s: the guest hit qemu TCG's race with live code patching (%s), an emulator fault; running it again on kernel %s\n",
			prefix, re.Line, kernel.Name)
		if reset != nil {
			reset()
		}
	}
}

// vmError explains a failed VM run of command what ("demo", "bench").
func vmError(ctx context.Context, what string, kernel vmtest.Kernel, err error) error {
	var runErr *vmtest.RunError
	switch {
	case errors.Is(err, vmtest.ErrUnavailable):
		return err // a *vmtest.SetupError that names the fix
	case ctx.Err() != nil:
		return fmt.Errorf("interrupted: %w", err)
	case errors.As(err, &runErr) && runErr.Kind == vmtest.FailExit:
		return fmt.Errorf("%s failed in the VM (kernel %s, exit status %d): see its output above", what, kernel.Name, runErr.ExitCode)
	case errors.As(err, &runErr):
		return fmt.Errorf("VM run failed: %w\n%s", err, runErr.ConsoleTail())
	}
	return fmt.Errorf("VM run failed: %w", err)
}

// vmTimeout bounds the whole VM run: boot and power-off, calibration, two
// workloads up to their deadline, simple's attach and detach, and slack.
func vmTimeout(target time.Duration) time.Duration {
	return 2*time.Minute + calibrationLimit + 2*workloadDeadline(target) + attachTimeout + detachTimeout + time.Minute
}

// hostCanRun reports whether the demo can run on this host (its kernel has
// sched_ext, no scheduler is attached, and we are root), and why or why not.
func hostCanRun() (bool, string) {
	k, err := scx.Probe(nil)
	if err != nil {
		if errors.Is(err, scx.ErrNotSupported) {
			return false, fmt.Sprintf("this host's kernel %s has no sched_ext (see scxkit status)", unameRelease())
		}
		return false, fmt.Sprintf("cannot probe this host's kernel (%v)", err)
	}
	st, err := k.Status()
	switch {
	case errors.Is(err, scx.ErrNotSupported):
		return false, fmt.Sprintf("this host's kernel %s has no /sys/kernel/sched_ext", k.Release)
	case err != nil:
		return false, fmt.Sprintf("cannot read this host's sched_ext status (%v)", err)
	case os.Geteuid() != 0:
		return false, fmt.Sprintf("this host's kernel %s has sched_ext, but attaching a scheduler needs root", k.Release)
	case st.State != scx.StateDisabled:
		return false, fmt.Sprintf("sched_ext on this host is busy (%s)", st)
	}
	return true, fmt.Sprintf("this host's kernel %s has sched_ext", k.Release)
}

// moduleRoot returns the root directory of the scxkit module that the
// current directory is in.
func moduleRoot(ctx context.Context) (string, error) {
	const hint = "the example schedulers are built from the " + modulePath + " module: run from a scxkit checkout, e.g. `go run ./cmd/scxkit demo` or `go run ./cmd/scxkit bench responsive` there"
	if _, err := exec.LookPath("go"); err != nil {
		return "", fmt.Errorf("the go command is not on PATH: %s", hint)
	}
	cmd := exec.CommandContext(ctx, "go", "env", "GOMOD")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	gomod := strings.TrimSpace(string(b))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("the current directory is not inside a Go module: %s", hint)
	}
	data, err := os.ReadFile(gomod)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", gomod, err)
	}
	if got := goModPath(string(data)); got != modulePath {
		return "", fmt.Errorf("the current directory is in module %q (%s), not %s: %s", got, gomod, modulePath, hint)
	}
	return filepath.Dir(gomod), nil
}

// goModPath returns the module path that a go.mod file declares.
func goModPath(gomod string) string {
	for _, line := range strings.Split(gomod, "\n") {
		line, _, _ = strings.Cut(line, "//")
		fields := strings.Fields(line)
		if len(fields) == 2 && fields[0] == "module" {
			if p, err := strconv.Unquote(fields[1]); err == nil {
				return p
			}
			return fields[1]
		}
	}
	return ""
}

// buildExample builds examples/<name>, statically, into dir.
func buildExample(ctx context.Context, root, dir, name string) (string, error) {
	return buildPackage(ctx, root, filepath.Join(dir, name), examplePackage(name))
}

// buildPackage builds the command pkg, statically, as bin.
func buildPackage(ctx context.Context, root, bin, pkg string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s: %w\n%s", pkg, err, strings.TrimSpace(string(out)))
	}
	return bin, nil
}

// guestBenchScheduler is where the host puts the example for its
// benchmark in the guest.
const guestBenchScheduler = "/vmtest/scheduler"

// demoBench runs the benchmark program of benchExample against the
// example built at sched: on this host when it can attach schedulers,
// else in a VM. --seconds sets the length of each measured phase.
func demoBench(ctx context.Context, o *demoOptions, root, dir, sched string, local bool, why string, kernel vmtest.Kernel, out io.Writer) error {
	pkg := examplePackage(o.example) + "/internal/bench"
	fmt.Fprintf(out, "demo: building %s\n", pkg)
	bench, err := buildPackage(ctx, root, filepath.Join(dir, "bench"), pkg)
	if err != nil {
		return err
	}
	phase := max(o.target(), time.Second)
	args := []string{"-runs", "1", "-duration", phase.String()}
	if local {
		fmt.Fprintf(out, "demo: %s: running the benchmark directly on this host, not in a VM\n", why)
		cmd := exec.CommandContext(ctx, bench, append(args, "-scheduler", sched)...)
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s: %w", pkg, err)
		}
		return nil
	}
	// Boot, a warm-up, two phases under each scheduler, attach and
	// detach, and slack.
	timeout := 3*time.Minute + 6*phase
	return bootVM(ctx, "demo", "demo", why, kernel, o.cpus, timeout, &vmtest.Command{
		Path:  bench,
		Args:  append(args, "-scheduler", guestBenchScheduler),
		Files: []vmtest.File{{Guest: guestBenchScheduler, Host: sched, Mode: 0o755}},
	}, out)
}
