// Command energy is an energy-aware sched_ext scheduler composed from
// scxkit's components: package energy gives the machine's energy model
// (the kernel's, a copy of its debugfs tree given with -model, or an
// estimate from cpufreq and topology) and its component, which every
// -interval plans for the demand the scheduler measures (the average
// number of runnable tasks): only the CPUs of the cheapest set that
// carries it with -headroom stay warm. At low load work packs onto a few
// cheap cores and the rest stay idle; as load rises it spreads. Wakeups go
// to the warm idle CPU that runs the task at the least energy. The stats
// show the component's demand, warm CPUs and per-domain targets.
//
// -governor and -epp set cpufreq knobs for the run, once the kernel is
// known to have sched_ext; they are restored on exit. Where the machine
// has no such knob (a VM has no cpufreq), the scheduler says so and runs
// without it. Package runner gives it the rest of its command line: see
// `go doc ./runner`.
//
//	go run ./examples/energy -stats 1s
//	go run ./examples/energy -model /tmp/rk3399 -cpu-cost 50000 -v
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"time"

	"github.com/cilium/ebpf"

	"github.com/scxkit/scxkit/energy"
	"github.com/scxkit/scxkit/lb"
	"github.com/scxkit/scxkit/runner"
	"github.com/scxkit/scxkit/scx"
	"github.com/scxkit/scxkit/topology"
)

func main() { runner.Main(command()) }

// flags are energy's own flags.
type flags struct {
	interval    time.Duration
	model       string
	cpuCost     uint64
	headroom    float64
	shrinkAfter int
	spill       uint64
	governor    string
	epp         string

	modelCopy *energy.Model // -model, read once by readModelCopy
	knobs     *energy.Knobs // opened once, by setKnobs
}

// command is energy's command: the runner's standard flags and its own.
func command() runner.Command {
	f := &flags{}
	return runner.Command{
		Name:    "energy",
		Objects: scx.Objects{Base: loadEnergy, V2: loadEnergyV2},
		Flags: func(fs *flag.FlagSet) {
			fs.DurationVar(&f.interval, "interval", energy.DefaultInterval, "how often to measure demand and choose the warm CPUs")
			fs.StringVar(&f.model, "model", "", "directory holding a copy of the kernel's debugfs energy model (proc/mounts, sys/kernel/debug/energy_model); default: the kernel's, else an estimate")
			fs.Uint64Var(&f.cpuCost, "cpu-cost", 0, "energy charged per warm CPU, for the static power the kernel's model leaves out (0: a twentieth of the model's costliest CPU at full load)")
			fs.Float64Var(&f.headroom, "headroom", energy.DefaultHeadroom, "warm CPUs carry the measured demand times this")
			fs.IntVar(&f.shrinkAfter, "shrink-after", energy.DefaultShrinkAfter, "intervals demand must stay lower before CPUs go cold")
			fs.Uint64Var(&f.spill, "spill", 2, "cold CPUs help when more than (warm CPUs + this) tasks wait")
			fs.StringVar(&f.governor, "governor", "", "cpufreq governor to set for the run, e.g. schedutil")
			fs.StringVar(&f.epp, "epp", "", "energy_performance_preference to set for the run, e.g. balance_power")
		},
		Setup: f.setup,
	}
}

// setup checks the flags, reads the model copy, sets the knobs once the
// kernel is known to run sched_ext, and builds the components for the
// machine as it is now (it runs again before a restart).
func (f *flags) setup(ctx context.Context, env *runner.Env) (scx.Config, error) {
	if err := f.check(); err != nil {
		return scx.Config{}, err
	}
	if err := f.readModelCopy(ctx); err != nil {
		return scx.Config{}, err
	}
	// Make sure the kernel can run the scheduler before changing the
	// machine's cpufreq knobs. Reading the kernel's BTF can take seconds
	// (in an emulated VM): a signal meanwhile ends the run.
	if _, err := env.Kernel(ctx); err != nil {
		return scx.Config{}, fmt.Errorf("%w (no cpufreq knob was changed)", err)
	}
	if err := f.setKnobs(env); err != nil {
		return scx.Config{}, err
	}

	topo, err := topology.Discover(nil)
	if err != nil {
		return scx.Config{}, err
	}
	m, source, err := f.loadModel(topo, env.Log)
	if err != nil {
		return scx.Config{}, err
	}
	if missing := topo.Online.AndNot(m.CPUs()); !missing.Empty() {
		return scx.Config{}, fmt.Errorf("the energy model covers CPUs %s, but CPUs %s are online too: use a model of this machine", m.CPUs(), missing)
	}
	cost := f.cpuCost
	if cost == 0 {
		cost = defaultCPUCost(m)
	}
	meter := &demandMeter{}
	en, err := energy.New(m, &energy.PlannerOptions{
		Interval:    f.interval,
		Demand:      meter.read,
		Headroom:    f.headroom,
		ShrinkAfter: f.shrinkAfter,
		Table:       &energy.TableOptions{CPUCost: cost},
	})
	if err != nil {
		return scx.Config{}, err
	}
	env.Log.Info("energy model", "source", source, "domains", len(m.Domains), "cpus", m.CPUs().String(), "cpu_cost", cost, "levels", len(en.Table().Levels))
	for _, a := range m.Assumed {
		env.Log.Debug("model assumption", "note", a)
	}
	return scx.Config{
		Flags:      []scx.OpsFlag{scx.EnqLast},
		Constants:  map[string]any{"spill_queued": uint32(f.spill)},
		Components: []scx.Component{meter, en},
	}, nil
}

// check checks energy's own flags.
func (f *flags) check() error {
	if err := runner.FirstError(
		runner.CheckInterval("interval", f.interval, false, "250ms"),
		runner.CheckFloat("headroom", f.headroom, 1, 10, false, false, "1.25"),
		runner.CheckUint32("spill", f.spill, "2"),
	); err != nil {
		return err
	}
	switch {
	case f.shrinkAfter < 1:
		return runner.Usagef("-shrink-after %d: must be at least 1, e.g. -shrink-after 4", f.shrinkAfter)
	case f.cpuCost > maxCPUCost:
		return runner.Usagef("-cpu-cost %d: must be at most %d (0 for the default), e.g. -cpu-cost 50000", f.cpuCost, uint64(maxCPUCost))
	}
	if f.governor != "" {
		if err := energy.CheckGovernor(f.governor); err != nil {
			return runner.Usagef("-governor: %v", err)
		}
	}
	if f.epp != "" {
		if err := energy.CheckEPP(f.epp); err != nil {
			return runner.Usagef("-epp: %v", err)
		}
	}
	if f.model != "" {
		if fi, err := os.Stat(f.model); err != nil || !fi.IsDir() {
			return runner.Usagef("-model %s: not a directory: give a directory holding a copy of the kernel's debugfs energy model (proc/mounts, sys/kernel/debug/energy_model)", f.model)
		}
	}
	return nil
}

// maxCPUCost is the largest -cpu-cost energy.Model.CheapestSets accepts.
const maxCPUCost = energy.MaxCost * energy.CapacityScale

// readModelCopy reads -model, if given, once, before any kernel work; the
// copy does not change. A file there that blocks (a FIFO) does not hold
// up a signal's stop.
func (f *flags) readModelCopy(ctx context.Context) error {
	if f.model == "" || f.modelCopy != nil {
		return nil
	}
	err := runner.Do(ctx, func() (err error) {
		f.modelCopy, err = energy.ReadDebugfs(&energy.Options{Root: f.model})
		return err
	})
	if err != nil && !runner.Stopped(ctx, err) {
		return runner.Usagef("-model %s: %v", f.model, err)
	}
	return err
}

// loadModel returns the energy model to plan with and where it came from.
func (f *flags) loadModel(topo *topology.Topology, log *slog.Logger) (*energy.Model, string, error) {
	if f.modelCopy != nil {
		return f.modelCopy, "debugfs copy " + f.model, nil
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

// setKnobs applies -governor and -epp to every online CPU, once, and has
// them restored at exit. A machine without the knob is not an error: the
// scheduler logs it and runs without.
func (f *flags) setKnobs(env *runner.Env) error {
	if f.knobs != nil || f.governor == "" && f.epp == "" {
		return nil
	}
	topo, err := topology.Discover(nil)
	if err != nil {
		return err
	}
	if f.knobs, err = energy.OpenKnobs(&energy.KnobOptions{Logger: env.Log}); err != nil {
		return err
	}
	env.OnExit(f.knobs.Restore)
	set := func(what, value string, set func(topology.Cpumask, string) error) error {
		if value == "" {
			return nil
		}
		err := set(topo.Online, value)
		if errors.Is(err, energy.ErrNoKnob) {
			env.Log.Warn("cpufreq knob not available: running without it", "knob", what, "error", err)
			return nil
		}
		return err
	}
	if err := set("governor", f.governor, f.knobs.SetGovernor); err != nil {
		return err
	}
	return set("epp", f.epp, f.knobs.SetEPP)
}

// demandMeter is the scheduler's own part: energy.bpf.c counts the
// runnable tasks in its map demand, a decaying average with the half-life
// half_life_ns, and read gives it to the energy component as demand.
type demandMeter struct {
	objs struct {
		Demand   *ebpf.Map      `ebpf:"demand"`
		HalfLife *ebpf.Variable `ebpf:"half_life_ns"`
	}
	halfLife uint64
	v        demandValue
}

// demandValue is the value of the BPF map demand: struct demand.
type demandValue struct {
	Lock     uint32
	_        uint32
	Runnable lb.DutyCycle
}

func (d *demandMeter) Name() string { return "demand" }

func (d *demandMeter) Needs() scx.Needs {
	return scx.Needs{Callbacks: []string{"runnable", "quiescent"}, Objects: &d.objs, Header: "energy.bpf.c"}
}

func (d *demandMeter) Bind(b *scx.Binding) error {
	if err := b.Assign(&d.objs); err != nil {
		return err
	}
	return d.objs.HalfLife.Get(&d.halfLife)
}

// read returns the average number of runnable tasks, in capacity units.
func (d *demandMeter) read() (float64, error) {
	if err := d.objs.Demand.Lookup(uint32(0), &d.v); err != nil {
		return 0, fmt.Errorf("read demand: %w", err)
	}
	return float64(d.v.Runnable.Read(lb.Now(), d.halfLife)) / lb.DutyCycleOne * energy.CapacityScale, nil
}
