// Command energy is an energy-aware sched_ext scheduler composed from
// scxkit's components: energy gives the machine's energy model (the
// kernel's, a copy of its debugfs tree given with -model, or an estimate
// from cpufreq and topology) and the cheapest set of CPUs for each level
// of demand. Every -interval the scheduler measures demand (the average
// number of runnable tasks) and keeps warm only the CPUs of the cheapest
// set that carries it with -headroom: at low load work packs onto a few
// cheap cores and the rest stay idle; as load rises it spreads. Wakeups go
// to the warm idle CPU that runs the task at the least energy.
//
// -governor and -epp set cpufreq knobs for the run, once the kernel is
// known to have sched_ext; they are restored on exit. Where the machine
// has no such knob (a VM has no cpufreq), the scheduler says so and runs
// without it.
//
//	go run ./examples/energy -stats 1s
//	go run ./examples/energy -model /tmp/rk3399 -cpu-cost 50000 -v
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/cilium/ebpf"

	"github.com/scxkit/scxkit/energy"
	"github.com/scxkit/scxkit/examples/internal/cli"
	"github.com/scxkit/scxkit/lb"
	"github.com/scxkit/scxkit/scx"
	"github.com/scxkit/scxkit/topology"
)

func main() {
	cli.Exit("energy", run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// options are the command line flags.
type options struct {
	interval    time.Duration
	slice       time.Duration
	stats       time.Duration
	model       string
	cpuCost     uint64
	headroom    float64
	shrinkAfter int
	spill       uint64
	governor    string
	epp         string
	verbose     bool

	modelCopy *energy.Model // -model, read once by readModelCopy
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("energy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	fs.DurationVar(&o.interval, "interval", 250*time.Millisecond, "how often to measure demand and choose the warm CPUs")
	fs.DurationVar(&o.slice, "slice", 20*time.Millisecond, "time slice of a task")
	fs.DurationVar(&o.stats, "stats", time.Second, "interval between counter lines (0 turns them off)")
	fs.StringVar(&o.model, "model", "", "directory holding a copy of the kernel's debugfs energy model (proc/mounts, sys/kernel/debug/energy_model); default: the kernel's, else an estimate")
	fs.Uint64Var(&o.cpuCost, "cpu-cost", 0, "energy charged per warm CPU, for the static power the kernel's model leaves out (0: a twentieth of the model's costliest CPU at full load)")
	fs.Float64Var(&o.headroom, "headroom", 1.25, "warm CPUs carry the measured demand times this")
	fs.IntVar(&o.shrinkAfter, "shrink-after", 4, "intervals demand must stay lower before CPUs go cold")
	fs.Uint64Var(&o.spill, "spill", 2, "cold CPUs help when more than (warm CPUs + this) tasks wait")
	fs.StringVar(&o.governor, "governor", "", "cpufreq governor to set for the run, e.g. schedutil")
	fs.StringVar(&o.epp, "epp", "", "energy_performance_preference to set for the run, e.g. balance_power")
	fs.BoolVar(&o.verbose, "v", false, "log every change of the warm CPUs")
	if err := cli.Parse(fs, args); err != nil {
		return nil, err
	}
	for _, err := range []error{
		cli.Interval("interval", o.interval, false, "250ms"),
		cli.Slice("slice", o.slice),
		cli.Interval("stats", o.stats, true, "1s"),
		cli.Float("headroom", o.headroom, 1, 10, false, false, "1.25"),
		cli.Uint32("spill", o.spill, "2"),
	} {
		if err != nil {
			return nil, err
		}
	}
	switch {
	case o.shrinkAfter < 1:
		return nil, cli.Usagef("-shrink-after %d: must be at least 1, e.g. -shrink-after 4", o.shrinkAfter)
	case o.cpuCost > maxCPUCost:
		return nil, cli.Usagef("-cpu-cost %d: must be at most %d (0 for the default), e.g. -cpu-cost 50000", o.cpuCost, uint64(maxCPUCost))
	}
	if o.governor != "" {
		if err := energy.CheckGovernor(o.governor); err != nil {
			return nil, cli.Usagef("-governor: %v", err)
		}
	}
	if o.epp != "" {
		if err := energy.CheckEPP(o.epp); err != nil {
			return nil, cli.Usagef("-epp: %v", err)
		}
	}
	if o.model != "" {
		// Only the form here; loadModel reads it.
		if fi, err := os.Stat(o.model); err != nil || !fi.IsDir() {
			return nil, cli.Usagef("-model %s: not a directory: give a directory holding a copy of the kernel's debugfs energy model (proc/mounts, sys/kernel/debug/energy_model)", o.model)
		}
	}
	return o, nil
}

// maxCPUCost is the largest -cpu-cost energy.Model.CheapestSets accepts.
const maxCPUCost = energy.MaxCost * energy.CapacityScale

// readModelCopy reads -model, if given, before any kernel work; the copy
// does not change, so loadModel hands out this reading. A file there that
// blocks (a FIFO) does not hold up a signal's stop.
func (o *options) readModelCopy(ctx context.Context) error {
	if o.model == "" {
		return nil
	}
	err := cli.Do(ctx, func() (err error) {
		o.modelCopy, err = energy.ReadDebugfs(&energy.Options{Root: o.model})
		return err
	})
	if err != nil && !cli.Stopped(ctx, err) {
		return cli.Usagef("-model %s: %v", o.model, err)
	}
	return err
}

// loadModel returns the energy model to plan with and where it came from.
func (o *options) loadModel(topo *topology.Topology, log *slog.Logger) (*energy.Model, string, error) {
	if o.modelCopy != nil {
		return o.modelCopy, "debugfs copy " + o.model, nil
	}
	m, err := energy.ReadDebugfs(nil)
	if err == nil {
		return m, "kernel", nil
	}
	if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, fs.ErrPermission) {
		return nil, "", err
	}
	log.Info("no kernel energy model: estimating one from cpufreq and topology", "reason", err)
	if m, err = energy.Estimate(topo, nil); err != nil {
		return nil, "", err
	}
	return m, "estimate", nil
}

// demandValue is the value of the BPF map demand: struct demand.
type demandValue struct {
	Lock     uint32
	_        uint32
	Runnable lb.DutyCycle
}

// planner chooses the warm CPUs every interval.
type planner struct {
	o        *options
	log      *slog.Logger
	model    *energy.Model
	table    *energy.Table
	writer   *energy.PlanWriter
	demand   *ebpf.Map
	halfLife uint64

	level *energy.Level // the level in force
	lower int           // intervals in a row that demand wanted a lower level

	mu   sync.Mutex // guards last, which the stats line reads
	last struct {
		demand float64 // runnable tasks, averaged
		warm   topology.Cpumask
	}
}

// setup hands the model to the loaded scheduler s and builds the table.
func (p *planner) setup(s *scx.Scheduler) error {
	topo, err := topology.Discover(nil)
	if err != nil {
		return err
	}
	m, source, err := p.o.loadModel(topo, p.log)
	if err != nil {
		return err
	}
	if missing := topo.Online.AndNot(m.CPUs()); !missing.Empty() {
		return fmt.Errorf("the energy model covers CPUs %s, but CPUs %s are online too: use a model of this machine", m.CPUs(), missing)
	}
	cost := p.o.cpuCost
	if cost == 0 {
		cost = defaultCPUCost(m)
	}
	t, err := m.CheapestSets(&energy.TableOptions{CPUCost: cost})
	if err != nil {
		return err
	}
	if err := m.WriteBPF(s.Collection()); err != nil {
		return err
	}
	if p.writer, err = energy.NewPlanWriter(s.Collection(), m); err != nil {
		return err
	}
	if p.demand = s.Collection().Maps["demand"]; p.demand == nil {
		return errors.New("the scheduler has no demand map")
	}
	if err := s.Collection().Variables["half_life_ns"].Get(&p.halfLife); err != nil {
		return err
	}
	p.model, p.table, p.level, p.lower = m, t, nil, 0
	p.log.Info("energy model", "source", source, "domains", len(m.Domains), "cpus", m.CPUs().String(), "cpu_cost", cost, "levels", len(t.Levels))
	for _, a := range m.Assumed {
		p.log.Debug("model assumption", "note", a)
	}
	return nil
}

// defaultCPUCost is a twentieth of the energy of the model's costliest CPU
// at full load, in the unit of Level.Energy.
func defaultCPUCost(m *energy.Model) uint64 {
	var most uint64
	for _, d := range m.Domains {
		top := d.States[len(d.States)-1]
		most = max(most, top.Cost*top.Performance)
	}
	return max(1, most/20)
}

// plan measures demand and writes the cheapest warm set for it: at once
// when demand grows, after -shrink-after intervals when it falls.
func (p *planner) plan(context.Context, *scx.Scheduler) error {
	var v demandValue
	if err := p.demand.Lookup(uint32(0), &v); err != nil {
		return fmt.Errorf("read demand: %w", err)
	}
	runnable := float64(v.Runnable.Read(lb.Now(), p.halfLife)) / lb.DutyCycleOne
	want := p.table.Lookup(runnable * energy.CapacityScale * p.o.headroom)
	switch {
	case p.level == nil || want.Demand > p.level.Demand:
		p.lower = 0
	case want.Demand < p.level.Demand:
		if p.lower++; p.lower < p.o.shrinkAfter {
			want = p.level
		} else {
			p.lower = 0
		}
	default:
		p.lower = 0
	}
	if want != p.level {
		if err := p.writer.Write(want); err != nil {
			return err
		}
		p.log.Debug("warm CPUs", "demand", fmt.Sprintf("%.2f", runnable), "level", want.Demand, "cpus", p.writer.Warm().String(), "energy", want.Energy)
		p.level = want
	}
	p.mu.Lock()
	p.last.demand = runnable
	p.last.warm = p.writer.Warm()
	p.mu.Unlock()
	return nil
}

func (p *planner) statsLine(s *scx.Stats) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return fmt.Sprintf("%s %s demand=%.2f warm=%s", s.Time.Format(time.TimeOnly), s, p.last.demand, p.last.warm)
}

// setKnobs applies -governor and -epp to every online CPU. A machine
// without the knob is not an error: the scheduler logs it and runs
// without.
func (o *options) setKnobs(k *energy.Knobs, log *slog.Logger) error {
	if o.governor == "" && o.epp == "" {
		return nil
	}
	topo, err := topology.Discover(nil)
	if err != nil {
		return err
	}
	set := func(what, value string, f func(topology.Cpumask, string) error) error {
		if value == "" {
			return nil
		}
		err := f(topo.Online, value)
		if errors.Is(err, energy.ErrNoKnob) {
			log.Warn("cpufreq knob not available: running without it", "knob", what, "error", err)
			return nil
		}
		return err
	}
	if err := set("governor", o.governor, k.SetGovernor); err != nil {
		return err
	}
	return set("epp", o.epp, k.SetEPP)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	// First of all, so that no step ignores a SIGINT or SIGTERM, and the
	// cpufreq knobs are restored whatever stops the scheduler.
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	o, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	level := slog.LevelInfo
	if o.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if err := o.readModelCopy(ctx); err != nil {
		if cli.Stopped(ctx, err) {
			return nil
		}
		return err
	}

	// Make sure the kernel can run the scheduler before changing the
	// machine's cpufreq knobs. Reading the kernel's BTF can take seconds
	// (in an emulated VM): a signal meanwhile ends the run.
	var kernel *scx.Kernel
	if err := cli.Do(ctx, func() (err error) { kernel, err = scx.Probe(nil); return err }); err != nil {
		if cli.Stopped(ctx, err) {
			return nil
		}
		return fmt.Errorf("%w (no cpufreq knob was changed)", err)
	}

	knobs, err := energy.OpenKnobs(&energy.KnobOptions{Logger: log})
	if err != nil {
		return err
	}
	defer func() {
		if rerr := knobs.Restore(); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}()
	if err := o.setKnobs(knobs, log); err != nil {
		return err
	}

	spec, err := scx.Open(scx.Objects{Base: loadEnergy, V2: loadEnergyV2}, scx.Config{
		Name:      "energy",
		Slice:     o.slice,
		Flags:     []scx.OpsFlag{scx.EnqLast},
		Constants: map[string]any{"spill_queued": uint32(o.spill)},
	})
	if err != nil {
		return err
	}
	p := &planner{o: o, log: log}
	runOpts := &scx.RunOptions{
		StatsInterval: o.stats,
		Periodic:      []scx.Periodic{{Name: "energy planner", Every: o.interval, Func: p.plan}},
	}
	if o.stats > 0 {
		runOpts.OnStats = func(s *scx.Stats) { fmt.Fprintln(stdout, p.statsLine(s)) }
	}
	info, err := scx.Serve(ctx, spec, &scx.ServeOptions{
		Load:   &scx.LoadOptions{Logger: log, Kernel: kernel},
		Run:    runOpts,
		OnLoad: p.setup,
		OnAttach: func(s *scx.Scheduler) error {
			log.Info("attached", "scheduler", s.Name(), "kernel", s.Kernel().Release)
			return nil
		},
	})
	if info != nil {
		if err != nil || o.verbose {
			fmt.Fprint(stderr, info.Report())
		} else {
			log.Info("detached", "exit", info.String())
		}
	}
	if cli.Stopped(ctx, err) {
		log.Info("stopped before attaching", "reason", err)
		return nil
	}
	return err
}
