package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/scxkit/scxkit/internal/opsprof"
	"github.com/scxkit/scxkit/internal/schedproc"
	"github.com/scxkit/scxkit/scx"
)

// Scheduler is a sched_ext scheduler to benchmark: a program that
// attaches its scheduler while it runs and detaches on SIGINT, as every
// scheduler built with package runner does.
type Scheduler struct {
	// Name is the scheduler's name in the report (not Default).
	Name string
	// Path is the program to run.
	Path string
	// Args are its arguments.
	Args []string
	// Ops is the ops name sched_ext shows while it is attached
	// (/sys/kernel/sched_ext/root/ops); "" accepts any.
	Ops string
}

// Plan is what Run measures.
type Plan struct {
	// Schedulers are the sched_ext schedulers to compare with the
	// kernel's default scheduler, which Run always measures too.
	Schedulers []Scheduler
	// Benchmarks to run; nil means Standard().
	Benchmarks []Benchmark
	// Repetitions of each benchmark under each scheduler; 0 means 3.
	Repetitions int
	// Options of the benchmarks' command lines; CPUs defaults to this
	// machine's CPU count.
	Options Options
	// ToolDir is where the tools (hackbench, cyclictest, stress-ng) are;
	// "" looks them up in PATH.
	ToolDir string
	// Log receives progress lines and the schedulers' output; nil
	// discards them.
	Log io.Writer
	// AttachTimeout bounds the wait for a scheduler to attach (default
	// 60s: loading BPF under TCG takes seconds); DetachTimeout how long
	// it has to exit after SIGINT before it is killed (default 30s).
	AttachTimeout, DetachTimeout time.Duration
	// Profile has Run measure the BPF time of each sched_ext
	// scheduler's programs (its callbacks) around each benchmark run
	// under it, into Report.Profiles. It turns the kernel's BPF
	// run-time statistics on for the whole session, which needs Linux
	// 5.8: every call of every BPF program then pays for two clock
	// reads, which the schedulers' figures include.
	Profile bool

	paths map[string]string // tool name -> path, found by Run
}

// Run measures plan on this machine, which must run a kernel with
// sched_ext, as root, with no scheduler attached: usually a VM. In each
// repetition it runs every benchmark under the kernel's default
// scheduler and under each of plan's schedulers, their order rotated
// from one repetition to the next so that each comes first as often as
// the others and drift in the machine hits them alike. Before each
// scheduler's benchmarks it starts the scheduler and waits until
// sched_ext runs it; after each benchmark it checks that the scheduler
// is still attached (a scheduler ejected by the kernel's watchdog fails
// the run); then it stops it and waits until every task is back on the
// default scheduler. The returned Report is computed (Report.Compute).
//
// With plan.Profile, Run reads the statistics of the BPF struct_ops
// programs loaded since a scheduler started (its own) right before and
// right after each benchmark run under it (so the hogs' start and stop
// count too) and records the difference; it fails at once when the
// statistics cannot be turned on.
//
// Run stops at the first failure: a tool that fails or whose output
// does not parse, a scheduler that does not attach or exits. Every
// scheduler it started is stopped before it returns.
func Run(ctx context.Context, plan *Plan) (*Report, error) {
	p, err := plan.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := p.findTools(); err != nil {
		return nil, err
	}
	st, err := scx.ReadStatus(nil)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	if st.State != scx.StateDisabled {
		return nil, fmt.Errorf("bench: sched_ext is %s (ops %q): %w: stop the running scheduler first", st.State, st.Ops, ErrInvalid)
	}
	if p.Profile {
		stats, err := opsprof.Enable()
		if err != nil {
			return nil, fmt.Errorf("bench: profile: %w", err)
		}
		defer stats.Close()
	}
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return nil, fmt.Errorf("bench: uname: %w", err)
	}
	r := &Report{
		Kernel:      unix.ByteSliceToString(uts.Release[:]),
		VCPUs:       p.Options.CPUs,
		Repetitions: p.Repetitions,
		Schedulers:  []string{Default},
		Commands:    map[string][]string{},
	}
	for _, s := range p.Schedulers {
		r.Schedulers = append(r.Schedulers, s.Name)
	}
	for _, b := range p.Benchmarks {
		r.Commands[b.Name] = b.Args(&p.Options)
		if h := b.HogArgs(&p.Options); h != nil {
			r.Commands["hogs"] = h
		}
	}
	all := append([]Scheduler{{Name: Default}}, p.Schedulers...)
	for rep := range p.Repetitions {
		for i := range all {
			s := all[(i+rep)%len(all)]
			p.logf("bench: repetition %d/%d: %s\n", rep+1, p.Repetitions, s.Name)
			if err := p.runUnder(ctx, r, s); err != nil {
				return nil, err
			}
		}
	}
	if err := r.Compute(); err != nil {
		return nil, err
	}
	return r, nil
}

// withDefaults checks plan and returns a copy with its defaults applied.
func (plan *Plan) withDefaults() (*Plan, error) {
	if plan == nil {
		return nil, fmt.Errorf("bench: nil Plan: %w", ErrInvalid)
	}
	p := *plan
	if p.Benchmarks == nil {
		p.Benchmarks = Standard()
	}
	if p.Repetitions == 0 {
		p.Repetitions = 3
	}
	if p.Options.CPUs <= 0 {
		p.Options.CPUs = runtime.NumCPU()
	}
	if p.AttachTimeout <= 0 {
		p.AttachTimeout = 60 * time.Second
	}
	if p.DetachTimeout <= 0 {
		p.DetachTimeout = 30 * time.Second
	}
	if p.Log == nil {
		p.Log = io.Discard
	}
	switch {
	case p.Repetitions < 0:
		return nil, fmt.Errorf("bench: Repetitions %d: %w: want at least 1", p.Repetitions, ErrInvalid)
	case len(p.Benchmarks) == 0:
		return nil, fmt.Errorf("bench: no benchmark: %w: leave Benchmarks nil for the standard ones", ErrInvalid)
	}
	seen := map[string]bool{Default: true}
	for _, s := range p.Schedulers {
		if s.Name == "" || s.Path == "" {
			return nil, fmt.Errorf("bench: scheduler %q at %q: %w: give a name and a program", s.Name, s.Path, ErrInvalid)
		}
		if seen[s.Name] {
			return nil, fmt.Errorf("bench: scheduler name %q: %w: names must be unique and not %q", s.Name, ErrInvalid, Default)
		}
		seen[s.Name] = true
	}
	return &p, nil
}

func (p *Plan) logf(format string, args ...any) { fmt.Fprintf(p.Log, format, args...) }

// findTools finds every tool the benchmarks and their hogs run, once,
// so that a missing one fails the run before any scheduler starts.
func (p *Plan) findTools() error {
	p.paths = map[string]string{}
	for _, b := range p.Benchmarks {
		for _, args := range [][]string{b.Args(&p.Options), b.HogArgs(&p.Options)} {
			if len(args) == 0 {
				continue
			}
			path, err := p.lookTool(args[0])
			if err != nil {
				return err
			}
			p.paths[args[0]] = path
		}
	}
	return nil
}

// tool returns the path findTools found for name.
func (p *Plan) tool(name string) (string, error) {
	if path, ok := p.paths[name]; ok {
		return path, nil
	}
	return "", fmt.Errorf("bench: %s: %w: not a tool of the plan's benchmarks", name, ErrInvalid)
}

// lookTool returns the path of tool.
func (p *Plan) lookTool(name string) (string, error) {
	if p.ToolDir != "" {
		path := filepath.Join(p.ToolDir, name)
		if _, err := os.Stat(path); err != nil {
			return "", fmt.Errorf("bench: %s: %w", name, err)
		}
		return path, nil
	}
	path, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("bench: %s not found: %w (Debian: apt-get install %s; scripts/setup installs it)", name, err, packageOf(name))
	}
	return path, nil
}

// packageOf is the Debian package of a standard tool (the hogs' stress-ng
// is Switch's).
func packageOf(tool string) string {
	for _, b := range Standard() {
		if b.Tool == tool {
			return b.Package
		}
	}
	return tool
}

// runUnder runs every benchmark once under s (the default scheduler when
// s.Path is empty) and adds the samples to r.
func (p *Plan) runUnder(ctx context.Context, r *Report, s Scheduler) error {
	var proc *schedproc.Proc
	var prof *profiler
	if s.Path != "" {
		var err error
		if p.Profile {
			if prof, err = newProfiler(s.Name, p.logf); err != nil {
				return err
			}
		}
		if proc, err = schedproc.Start(s.Name, s.Path, s.Args, p.Log); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		defer proc.Stop(p.DetachTimeout)
		if err := proc.WaitAttached(ctx, s.Ops, p.AttachTimeout); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
	}
	for _, b := range p.Benchmarks {
		if prof != nil {
			if err := prof.start(); err != nil {
				return fmt.Errorf("bench: %s under %s: %w", b.Name, s.Name, err)
			}
		}
		samples, err := p.runOnce(ctx, b)
		if err != nil {
			return fmt.Errorf("bench: %s under %s: %w", b.Name, s.Name, err)
		}
		var progs []opsprof.Program
		if prof != nil {
			if progs, err = prof.stop(); err != nil {
				return fmt.Errorf("bench: %s under %s: %w", b.Name, s.Name, err)
			}
		}
		if proc != nil {
			if err := stillAttached(proc, s); err != nil {
				return fmt.Errorf("bench: %s under %s: %w", b.Name, s.Name, err)
			}
		}
		if err := r.Add(b.Name, s.Name, samples...); err != nil {
			return err
		}
		if prof != nil {
			if err := r.addProfile(b.Name, s.Name, progs); err != nil {
				return err
			}
		}
	}
	if proc == nil {
		return nil
	}
	if err := proc.Stop(p.DetachTimeout); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := schedproc.WaitDisabled(ctx, 10*time.Second); err != nil {
		return fmt.Errorf("bench: after %s: %w", s.Name, err)
	}
	return nil
}

// profiler measures what the BPF programs of one sched_ext scheduler
// cost over each benchmark run, the kernel's BPF statistics being on.
type profiler struct {
	name   string
	others map[ebpf.ProgramID]bool // struct_ops programs loaded before the scheduler started
	before []opsprof.Program
	logf   func(format string, args ...any) // nil once the first read is logged
}

// newProfiler notes the struct_ops programs loaded before the scheduler
// called name starts (the TCP congestion control, say, or those of a
// scheduler that has just exited), which are not its own. The first read
// of the scheduler's programs is logged to logf with their number and
// how long the read took.
func newProfiler(name string, logf func(format string, args ...any)) (*profiler, error) {
	progs, err := opsprof.Read(nil, ebpf.StructOps)
	if err != nil {
		return nil, fmt.Errorf("bench: profile %s: %w", name, err)
	}
	pr := &profiler{name: name, others: map[ebpf.ProgramID]bool{}, logf: logf}
	for _, p := range progs {
		pr.others[p.ID] = true
	}
	return pr, nil
}

// start reads the statistics before a benchmark run.
func (pr *profiler) start() error {
	t := time.Now()
	var err error
	pr.before, err = pr.read(pr.before[:0])
	if err == nil && pr.logf != nil {
		pr.logf("bench: profile: %s has %d BPF programs (read in %v)\n", pr.name, len(pr.before), time.Since(t).Round(time.Millisecond))
		pr.logf = nil
	}
	return err
}

// stop reads them after the run and returns the scheduler's programs
// with their runs and time since start.
func (pr *profiler) stop() ([]opsprof.Program, error) {
	after, err := pr.read(nil)
	if err != nil {
		return nil, err
	}
	return opsprof.Sub(after, pr.before), nil
}

// read appends to dst the statistics of the scheduler's programs: the
// struct_ops programs loaded since newProfiler.
func (pr *profiler) read(dst []opsprof.Program) ([]opsprof.Program, error) {
	all, err := opsprof.Read(nil, ebpf.StructOps)
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	for _, p := range all {
		if !pr.others[p.ID] {
			dst = append(dst, p)
		}
	}
	if len(dst) == 0 {
		return nil, fmt.Errorf("profile: %w: no BPF struct_ops program loaded since %s started", ErrInvalid, pr.name)
	}
	return dst, nil
}

// stillAttached checks that s's process runs and sched_ext still runs
// its scheduler: the measurement was made under it.
func stillAttached(proc *schedproc.Proc, s Scheduler) error {
	select {
	case <-proc.Done():
		return fmt.Errorf("%s exited during the benchmark (%s)", s.Name, proc.Err())
	default:
	}
	st, err := scx.ReadStatus(nil)
	if err != nil {
		return err
	}
	if st.State != scx.StateEnabled || (s.Ops != "" && st.Ops != s.Ops) {
		return fmt.Errorf("sched_ext is %s (ops %q) after the benchmark, want %s attached: ejected?", st.State, st.Ops, s.Name)
	}
	return nil
}

// runOnce runs benchmark b once, with its CPU hogs if it has any, and
// parses its output.
func (p *Plan) runOnce(ctx context.Context, b Benchmark) ([]Sample, error) {
	args := b.Args(&p.Options)
	if len(args) == 0 {
		return nil, fmt.Errorf("%w: no command line", ErrInvalid)
	}
	path, err := p.tool(args[0])
	if err != nil {
		return nil, err
	}
	if h := b.HogArgs(&p.Options); h != nil {
		stop, err := p.startHogs(h)
		if err != nil {
			return nil, err
		}
		defer stop()
	}
	// A bound well past any sane run: a hung tool fails the run.
	limit := 10*time.Minute + 4*p.Options.Duration
	cctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	cmd := exec.CommandContext(cctx, path, args[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if cctx.Err() != nil && ctx.Err() == nil {
			err = fmt.Errorf("still running after %v: %w", limit, err)
		}
		return nil, fmt.Errorf("%s: %w\n%s", strings.Join(args, " "), err, tail(stderr.Bytes(), 5))
	}
	return b.Parse(stdout.Bytes(), stderr.Bytes())
}

// startHogs starts the CPU hogs with args (args[0] the tool) in their own
// process group and returns what kills them.
func (p *Plan) startHogs(args []string) (stop func(), err error) {
	path, err := p.tool(args[0])
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, args[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("hogs: %s: %w", strings.Join(args, " "), err)
	}
	return func() {
		// stress-ng's workers are the group; kill them all.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if err := cmd.Wait(); err != nil && !isKilled(err) {
			p.logf("bench: hogs: %v\n%s", err, tail(out.Bytes(), 5))
		}
	}, nil
}

// isKilled reports whether err is the exit of a process killed by SIGKILL.
func isKilled(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// tail returns the last n lines of b.
func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
