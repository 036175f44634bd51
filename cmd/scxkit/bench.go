package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/scxkit/scxkit/bench"
	"github.com/scxkit/scxkit/internal/peers"
	"github.com/scxkit/scxkit/internal/schedproc"
	"github.com/scxkit/scxkit/vmtest"
)

// benchGuestCommand is the hidden subcommand that runs the benchmarks: in
// the VM, where the host passes this very binary as the payload, or on a
// host with sched_ext.
const benchGuestCommand = "bench-guest"

// Guest paths of what bench puts in the VM.
const (
	guestToolDir  = "/vmtest/tools"
	guestSchedDir = "/vmtest/sched"
)

// The lines around the report the guest writes to its stdout, for the host
// to pick out of the progress lines.
const (
	reportBegin = "scxkit-bench: report begins"
	reportEnd   = "scxkit-bench: report ends"
)

// benchOptions are the flags of bench.
type benchOptions struct {
	kernel     string
	cpus       int
	reps       int
	duration   time.Duration
	benchmarks string
	jsonPath   string
	chartPath  string
	schedulers []string // operands: example names or programs
	peers      []string // --peer: the kernel's tools/sched_ext schedulers
	peerCache  string   // where peers are cached; "" for the default (tests set it)
	profile    bool     // --profile: the BPF time of each scheduler's callbacks
}

func benchCommand() (*flag.FlagSet, func(context.Context, io.Writer, io.Writer) error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	o := &benchOptions{}
	newest := vmtest.Matrix[len(vmtest.Matrix)-1].Name
	fs.StringVar(&o.kernel, "kernel", "", fmt.Sprintf("boot kernel `NAME` of the matrix in a VM: %s (default %s); implies a VM even on a sched_ext host",
		strings.Join(kernelNames(), ", "), newest))
	fs.IntVar(&o.cpus, "cpus", 2, "`N` vCPUs for the VM")
	fs.IntVar(&o.reps, "reps", 3, "run each benchmark `N` times under each scheduler")
	fs.DurationVar(&o.duration, "duration", bench.DefaultDuration, "how long cyclictest and stress-ng run each time")
	fs.StringVar(&o.benchmarks, "benchmarks", benchmarkNames(), "comma-separated `LIST` of benchmarks")
	fs.StringVar(&o.jsonPath, "json", "scxkit-bench.json", "write the results to `FILE` (JSON; empty: do not)")
	fs.StringVar(&o.chartPath, "chart", "scxkit-bench.svg", "draw the results to `FILE` (.svg or .png; empty: do not)")
	fs.Func("peer", "also run the kernel's own sched_ext scheduler `NAME` ("+strings.Join(peers.Names, ", ")+
		"), built from linux-source-7.3; repeatable, or comma-separated", o.addPeers)
	fs.BoolVar(&o.profile, "profile", false, "measure the BPF time of each scheduler's callbacks (kernel BPF stats) and print it per benchmark")
	setUsage(fs, "scxkit bench [flags] [--peer NAME]... [SCHEDULER...]", `Bench runs standard benchmark tools (hackbench, cyclictest under CPU
hogs, stress-ng's context-switch test) under the kernel's default
scheduler and under each SCHEDULER and peer, in one VM (or on this host
when its kernel has sched_ext and you are root), alternating their order
over the repetitions, and prints each metric's median with its
confidence interval and the ratio to the default scheduler. A SCHEDULER
is the name of an example of this module (`+strings.Join(examples, ", ")+`),
built from the checkout, or the path of a scheduler program (one that
attaches while it runs and detaches on SIGINT). A peer (--peer
scx_simple) is one of the kernel's own schedulers of tools/sched_ext,
run with its default flags and reported under its name: bench builds
them on first use from Debian's linux-source-7.3 (about a minute; then
cached). The tools and the source come from the host: scripts/setup
installs them (rt-tests, stress-ng, linux-source-7.3 and its toolchain).

With --profile, the kernel's BPF run-time statistics are on for the
session, and for each benchmark a second table shows how often each
callback of each sched_ext scheduler (its BPF programs: select_cpu,
enqueue, running, ...) ran per run, how long a call took, and its share
of the scheduler's BPF time; the JSON file keeps them under "profiles".
The statistics add two clock reads to every call, which the schedulers'
figures then include.`)
	return fs, func(ctx context.Context, stdout, _ io.Writer) error {
		o.schedulers = fs.Args()
		return runBench(ctx, o, stdout)
	}
}

// addPeers adds the comma-separated peers of one --peer flag.
func (o *benchOptions) addPeers(list string) error {
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if err := peers.ValidateName(name); err != nil {
			return err
		}
		if slices.Contains(o.peers, name) {
			return fmt.Errorf("peer %s named twice", name)
		}
		o.peers = append(o.peers, name)
	}
	return nil
}

// benchmarkNames lists the standard benchmarks, comma-separated.
func benchmarkNames() string {
	var names []string
	for _, b := range bench.Standard() {
		names = append(names, b.Name)
	}
	return strings.Join(names, ",")
}

// validate checks the flags, returning a *usageError.
func (o *benchOptions) validate() ([]bench.Benchmark, error) {
	switch {
	case o.cpus < 1 || o.cpus > 255:
		return nil, usagef("--cpus %d: want 1 to 255 vCPUs", o.cpus)
	case o.reps < 1 || o.reps > 1000:
		return nil, usagef("--reps %d: want 1 to 1000", o.reps)
	case o.duration < time.Second || o.duration > time.Hour:
		return nil, usagef("--duration %v: want 1s to 1h", o.duration)
	case len(o.schedulers) == 0 && len(o.peers) == 0:
		return nil, usagef("name at least one SCHEDULER (an example: %s; or a scheduler program) or --peer NAME", strings.Join(examples, ", "))
	}
	if ext := strings.ToLower(filepath.Ext(o.chartPath)); o.chartPath != "" && ext != ".svg" && ext != ".png" {
		return nil, usagef("--chart %q: want a .svg or .png file", o.chartPath)
	}
	var bs []bench.Benchmark
	for _, name := range strings.Split(o.benchmarks, ",") {
		b, err := bench.Lookup(strings.TrimSpace(name))
		if err != nil {
			return nil, usagef("--benchmarks %q: %v", o.benchmarks, err)
		}
		bs = append(bs, b)
	}
	return bs, nil
}

// schedulerOperand is a SCHEDULER operand resolved on the host.
type schedulerOperand struct {
	name    string // in the report
	host    string // the program on the host
	example bool   // built from this module: takes package runner's flags
}

// resolveSchedulers builds the examples named and finds the programs
// given, into dir, then adds o's peers, built or taken from the cache.
func resolveSchedulers(ctx context.Context, o *benchOptions, dir string, out io.Writer) ([]schedulerOperand, error) {
	res, err := resolveOperands(ctx, o.schedulers, dir, out)
	if err != nil || len(o.peers) == 0 {
		return res, err
	}
	for _, name := range o.peers {
		if slices.ContainsFunc(res, func(s schedulerOperand) bool { return s.name == name }) {
			return nil, usagef("--peer %s: a SCHEDULER has that name too", name)
		}
	}
	built, err := peers.Build(ctx, o.peers, &peers.Options{CacheDir: o.peerCache, Log: out})
	if err != nil {
		return nil, err
	}
	for _, p := range built {
		res = append(res, schedulerOperand{name: p.Name, host: p.Path})
	}
	return res, nil
}

// resolveOperands builds the examples named and finds the programs
// given, into dir.
func resolveOperands(ctx context.Context, operands []string, dir string, out io.Writer) ([]schedulerOperand, error) {
	var root string
	var res []schedulerOperand
	for _, op := range operands {
		if slices.Contains(examples, op) {
			if root == "" {
				var err error
				if root, err = moduleRoot(ctx); err != nil {
					return nil, err
				}
			}
			fmt.Fprintf(out, "bench: building %s\n", examplePackage(op))
			bin, err := buildExample(ctx, root, dir, op)
			if err != nil {
				return nil, err
			}
			res = append(res, schedulerOperand{name: op, host: bin, example: true})
			continue
		}
		fi, err := os.Stat(op)
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return nil, usagef("SCHEDULER %q: neither an example (%s) nor an executable file", op, strings.Join(examples, ", "))
		}
		name := filepath.Base(op)
		if slices.ContainsFunc(res, func(s schedulerOperand) bool { return s.name == name }) || name == bench.Default {
			return nil, usagef("SCHEDULER %q: a second scheduler named %q", op, name)
		}
		res = append(res, schedulerOperand{name: name, host: op})
	}
	return res, nil
}

// runBench runs the benchmarks: on this host if it can attach schedulers,
// else in a VM; then prints the table and writes the files.
func runBench(ctx context.Context, o *benchOptions, stdout io.Writer) error {
	bs, err := o.validate()
	if err != nil {
		return err
	}
	kernel, err := (&demoOptions{kernel: o.kernel}).vmKernel()
	if err != nil {
		return err
	}
	out := &schedproc.SyncWriter{W: stdout}
	dir, err := os.MkdirTemp("", "scxkit-bench-")
	if err != nil {
		return fmt.Errorf("create a scratch directory: %w", err)
	}
	defer os.RemoveAll(dir)
	scheds, err := resolveSchedulers(ctx, o, dir, out)
	if err != nil {
		return err
	}
	local, why := false, "--kernel asks for a VM"
	if o.kernel == "" {
		local, why = hostCanRun()
	}
	g := &benchGuestOptions{reps: o.reps, duration: o.duration, benchmarks: o.benchmarks, cpus: o.cpus, profile: o.profile}
	var report *bench.Report
	if local {
		fmt.Fprintf(out, "bench: %s: running on this host, not in a VM\n", why)
		g.cpus = 0 // this machine's
		for _, s := range scheds {
			g.addScheduler(s, s.host)
		}
		if report, err = g.run(ctx, out); err != nil {
			return err
		}
	} else {
		if report, err = benchInVM(ctx, o, bs, scheds, g, kernel, why, out); err != nil {
			return err
		}
	}
	fmt.Fprintln(out)
	if err := report.WriteTable(out); err != nil {
		return err
	}
	if o.jsonPath != "" {
		if err := writeFile(o.jsonPath, report.WriteJSON); err != nil {
			return err
		}
		fmt.Fprintf(out, "bench: results written to %s\n", o.jsonPath)
	}
	if o.chartPath != "" {
		format := strings.TrimPrefix(strings.ToLower(filepath.Ext(o.chartPath)), ".")
		if err := writeFile(o.chartPath, func(w io.Writer) error { return report.WriteChart(w, format) }); err != nil {
			return err
		}
		fmt.Fprintf(out, "bench: chart drawn to %s\n", o.chartPath)
	}
	return nil
}

// writeFile writes name with write, through a temporary file and a
// rename, so that a failure leaves no half-written file.
func writeFile(name string, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	bw := bufio.NewWriter(f)
	if err := write(bw); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(f.Name(), name); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// benchInVM boots kernel with the tools, the schedulers and this program,
// runs the guest half there and returns its report.
func benchInVM(ctx context.Context, o *benchOptions, bs []bench.Benchmark, scheds []schedulerOperand, g *benchGuestOptions,
	kernel vmtest.Kernel, why string, out io.Writer) (*bench.Report, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find this program to run it in the VM: %w", err)
	}
	var files []vmtest.File
	tools := map[string]bool{}
	for _, b := range bs {
		tools[b.Tool] = true
		if h := b.HogArgs(nil); h != nil {
			tools[h[0]] = true
		}
	}
	for _, tool := range slices.Sorted(maps.Keys(tools)) {
		path, err := exec.LookPath(tool)
		if err != nil {
			return nil, fmt.Errorf("%s not found on this host: run scripts/setup (installs rt-tests and stress-ng): %w", tool, err)
		}
		fs, err := vmtest.HostProgram(path, filepath.Join(guestToolDir, tool))
		if err != nil {
			return nil, err
		}
		files = append(files, fs...)
	}
	for _, s := range scheds {
		guest := filepath.Join(guestSchedDir, s.name)
		fs, err := vmtest.HostProgram(s.host, guest)
		if err != nil {
			return nil, err
		}
		files = append(files, fs...)
		g.addScheduler(s, guest)
	}
	g.tools = guestToolDir
	// Per scheduler and repetition: attach and detach, and each
	// benchmark with slack for TCG (hackbench has no duration: a
	// minute); then boot and power-off.
	perRun := 90 * time.Second
	for range bs {
		perRun += g.duration + 60*time.Second
	}
	timeout := 3*time.Minute + time.Duration(o.reps*(len(scheds)+1))*perRun
	topo := vmtest.Topology{Cores: o.cpus}
	vm := &vmtest.VM{Kernel: kernel, Topology: topo, MemoryMiB: 2048, Timeout: timeout}
	fmt.Fprintf(out, "bench: %s\n", why)
	fmt.Fprintf(out, "bench: booting kernel %s in qemu with %d vCPUs and 2 GiB; without KVM (TCG emulation) the boot takes about 10 s\n",
		kernel, topo.CPUs())
	capture := newReportCapture(out)
	cmd := &vmtest.Command{Path: self, Args: g.args(), Files: files, Stdout: capture}
	res, err := vm.RunRetryingPokeRace(ctx, cmd, pokeRaceNote("bench", kernel, out, func() {
		// A fresh capture for the second boot: the report comes only
		// from the run that ends.
		capture.Flush()
		capture = newReportCapture(out)
		cmd.Stdout = capture
	}))
	capture.Flush()
	if err != nil {
		return nil, vmError(ctx, "bench", kernel, err)
	}
	fmt.Fprintf(out, "bench: VM done (kernel %s, %s, boot %.1fs, total %.1fs)\n",
		kernel.Name, res.Accel, res.Boot.Seconds(), res.Duration.Seconds())
	if !capture.complete {
		return nil, fmt.Errorf("the guest printed no complete report: see its output above")
	}
	report, err := bench.ReadJSON(bytes.NewReader(capture.report.Bytes()))
	if err != nil {
		return nil, fmt.Errorf("the guest's report: %w", err)
	}
	return report, nil
}

// reportCapture passes the guest's output through to out, line by line,
// except the report between reportBegin and reportEnd, which it keeps.
type reportCapture struct {
	schedproc.LineWriter
	out      io.Writer
	in       bool
	complete bool
	report   bytes.Buffer
}

func newReportCapture(out io.Writer) *reportCapture {
	c := &reportCapture{out: out}
	c.Line = c.line
	return c
}

// line handles one line (called with the LineWriter's lock held).
func (c *reportCapture) line(l []byte) {
	switch s := strings.TrimRight(string(l), "\r"); {
	case s == reportBegin:
		c.in, c.complete = true, false
		c.report.Reset()
	case s == reportEnd && c.in:
		c.in, c.complete = false, true
	case c.in:
		c.report.Write(l)
		c.report.WriteByte('\n')
	default:
		// A copy: l is the LineWriter's buffer, which goes on after it.
		c.out.Write(append(append(make([]byte, 0, len(l)+1), l...), '\n'))
	}
}

// benchGuestOptions are the flags of bench-guest.
type benchGuestOptions struct {
	reps       int
	duration   time.Duration
	benchmarks string
	cpus       int      // 0: this machine's
	tools      string   // directory of the tools, "" for PATH
	scheds     []string // name=path
	runners    []string // names of the schedulers that take package runner's flags
	profile    bool     // measure the BPF time of the schedulers' callbacks
}

// addScheduler adds s, at path on the machine that runs the benchmarks.
func (o *benchGuestOptions) addScheduler(s schedulerOperand, path string) {
	o.scheds = append(o.scheds, s.name+"="+path)
	if s.example {
		o.runners = append(o.runners, s.name)
	}
}

// args returns the command line that runs o: bench-guest and its flags.
func (o *benchGuestOptions) args() []string {
	args := []string{benchGuestCommand, "--reps", strconv.Itoa(o.reps), "--duration", o.duration.String(),
		"--benchmarks", o.benchmarks, "--tools", o.tools}
	for _, s := range o.scheds {
		args = append(args, "--sched", s)
	}
	for _, r := range o.runners {
		args = append(args, "--runner", r)
	}
	if o.profile {
		args = append(args, "--profile")
	}
	return args
}

func benchGuestCommandFlags() (*flag.FlagSet, func(context.Context, io.Writer, io.Writer) error) {
	o := &benchGuestOptions{}
	fs := o.flagSet()
	return fs, func(ctx context.Context, stdout, _ io.Writer) error {
		out := &schedproc.SyncWriter{W: stdout}
		r, err := o.run(ctx, out)
		if err != nil {
			return err
		}
		fmt.Fprintln(out, reportBegin)
		if err := r.WriteJSON(out); err != nil {
			return err
		}
		fmt.Fprintln(out, reportEnd)
		return nil
	}
}

// flagSet returns the flags of bench-guest, which set o: the ones args
// writes.
func (o *benchGuestOptions) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet(benchGuestCommand, flag.ContinueOnError)
	fs.IntVar(&o.reps, "reps", 3, "repetitions")
	fs.DurationVar(&o.duration, "duration", bench.DefaultDuration, "cyclictest's and stress-ng's run time")
	fs.StringVar(&o.benchmarks, "benchmarks", benchmarkNames(), "comma-separated benchmarks")
	fs.StringVar(&o.tools, "tools", "", "directory of the tools (default: PATH)")
	fs.Func("sched", "a scheduler as `NAME=PATH` (repeatable)", func(s string) error {
		if name, path, ok := strings.Cut(s, "="); !ok || name == "" || path == "" {
			return fmt.Errorf("want NAME=PATH, got %q", s)
		}
		o.scheds = append(o.scheds, s)
		return nil
	})
	fs.Func("runner", "scheduler `NAME` takes package runner's flags: quiet its stats lines (repeatable)", func(s string) error {
		o.runners = append(o.runners, s)
		return nil
	})
	fs.BoolVar(&o.profile, "profile", false, "measure the BPF time of the schedulers' callbacks")
	setUsage(fs, "scxkit "+benchGuestCommand+" [flags]", "The half of scxkit bench that runs on a sched_ext kernel, usually in the VM.")
	return fs
}

// run runs the benchmarks on this machine and returns the report.
func (o *benchGuestOptions) run(ctx context.Context, out io.Writer) (*bench.Report, error) {
	plan := &bench.Plan{
		Repetitions: o.reps,
		Options:     bench.Options{CPUs: o.cpus, Duration: o.duration},
		ToolDir:     o.tools,
		Log:         out,
		Profile:     o.profile,
	}
	for _, name := range strings.Split(o.benchmarks, ",") {
		b, err := bench.Lookup(strings.TrimSpace(name))
		if err != nil {
			return nil, err
		}
		plan.Benchmarks = append(plan.Benchmarks, b)
	}
	for _, s := range o.scheds {
		name, path, _ := strings.Cut(s, "=")
		var args []string
		if slices.Contains(o.runners, name) {
			args = []string{"-stats", "0"} // its periodic stats lines would drown the progress
		}
		plan.Schedulers = append(plan.Schedulers, bench.Scheduler{Name: name, Path: path, Args: args})
	}
	return bench.Run(ctx, plan)
}
