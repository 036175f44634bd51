package energy

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/cilium/ebpf"

	"github.com/scxkit/scxkit/scx"
	"github.com/scxkit/scxkit/topology"
)

// Defaults of PlannerOptions.
const (
	// DefaultInterval is how often a Planner measures demand and plans.
	DefaultInterval = 250 * time.Millisecond
	// DefaultHeadroom is the factor of the measured demand the warm CPUs
	// are sized for.
	DefaultHeadroom = 1.25
	// DefaultShrinkAfter is how many plans in a row must find demand
	// lower before CPUs go cold.
	DefaultShrinkAfter = 4
)

// PlannerOptions tunes a Planner. A nil *PlannerOptions means the
// defaults. (Options, the package's older type, says where ReadDebugfs
// and Estimate read the machine; these are the component's own.)
type PlannerOptions struct {
	// Interval is how often the Planner's periodic work (scx.Worker)
	// measures demand and writes a plan; 0 means DefaultInterval.
	Interval time.Duration
	// Demand measures the demand the warm CPUs must carry, in capacity
	// units (1024: the fastest CPU busy all the time), e.g. the average
	// number of runnable tasks times CapacityScale. The Planner calls it
	// every Interval from its periodic work and plans for what it
	// returns (WriteDemand); an error stops the scheduler's run. If nil,
	// the Planner has no periodic work, and the scheduler calls
	// WriteDemand or Write itself.
	Demand func() (float64, error)
	// Headroom is the factor of the measured demand the warm CPUs are
	// sized for: at least 1; 0 means DefaultHeadroom.
	Headroom float64
	// ShrinkAfter is how many plans in a row must find a lower level of
	// demand before the Planner goes down to it (more demand warms CPUs
	// at once); 0 means DefaultShrinkAfter.
	ShrinkAfter int
	// Table tunes the cheapest-set table New builds (Model.CheapestSets);
	// nil means the defaults.
	Table *TableOptions
	// Logger gets a Debug record for every change of the warm CPUs. Nil
	// means the scheduler's logger once bound, slog.Default() before.
	Logger *slog.Logger
}

// Planner is package energy's component (scx.Component, named "energy"):
// the Go half of scxkit/energy.bpf.h. New builds it from a Model; Bind
// hands the model's per-CPU cost tables to the loaded scheduler; then,
// every Interval, it measures demand (PlannerOptions.Demand), looks up the
// cheapest set of CPUs that carries it in the Model's Table, and writes
// that plan to the BPF side: which CPUs to keep warm, and the performance
// target of every CPU. It reports the demand, the warm CPUs and each
// performance domain's targets as stats (scx.Reporter).
//
// Its methods may be called from several goroutines.
type Planner struct {
	model *Model
	table *Table
	opts  PlannerOptions // with the defaults filled in
	enc   *entypesSkEnergyModel
	cpus  []int    // the model's CPUs, ascending
	pds   []string // label values of the domains: their indices
	// cheapest is the CPU kept warm when a level has none.
	cheapest int

	mu      sync.Mutex // guards what follows
	bound   bool
	objs    plannerObjects
	log     *slog.Logger
	plan    entypesSkEnergyPlan // the plan in force, as written
	next    entypesSkEnergyPlan // the plan being written
	readBuf entypesSkEnergyPlan // Read's
	level   *Level              // the level in force; nil before the first plan
	lower   int                 // plans in a row that found a lower level
	demand  float64             // the demand last planned for
	plans   uint64              // plans written since Bind
	// Per domain, for the plan in force and the one being written.
	stats, nextStats domainStats
}

// domainStats are the Planner's stats of each performance domain.
type domainStats struct {
	warm   []int    // warm CPUs
	state  []int    // the state of its warm CPUs (else its lowest); -1 before a plan
	target []uint32 // the performance target of those
}

func newDomainStats(n int) domainStats {
	return domainStats{warm: make([]int, n), state: make([]int, n), target: make([]uint32, n)}
}

// plannerObjects are the globals of scxkit/energy.bpf.h.
type plannerObjects struct {
	Model *ebpf.Variable `ebpf:"sk_energy_model"`
	Plan  *ebpf.Variable `ebpf:"sk_energy_plan"`
}

// CPUPlan is what the plan in force says of one CPU.
type CPUPlan struct {
	// CPU is the kernel id.
	CPU int
	// Warm is set when the plan keeps the CPU warm: the scheduler runs
	// work on it. Before the first plan, every CPU is warm.
	Warm bool
	// Perf is the CPU's performance target, relative to its own
	// capacity, as scx_bpf_cpuperf_set takes it (1024: its top state);
	// 0 before the first plan, which leaves the CPU to the kernel.
	Perf uint32
}

// New builds the energy component from a valid model: the model's
// per-CPU tables in the BPF layout and its table of cheapest sets
// (Model.CheapestSets with opts.Table). It needs no kernel. opts may be
// nil. The Planner keeps m: do not modify it afterwards. An invalid model or options give an error wrapping ErrInvalid; a
// model beyond the BPF layout (CPU ids from SK_ENERGY_MAX_CPUS on, more
// than SK_ENERGY_MAX_STATES efficient states in a domain) or the table's
// bounds one wrapping ErrTooBig.
func New(m *Model, opts *PlannerOptions) (*Planner, error) {
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("energy: New: %w", err)
	}
	var o PlannerOptions
	if opts != nil {
		o = *opts
	}
	switch {
	case o.Interval < 0:
		return nil, fmt.Errorf("energy: New: PlannerOptions.Interval %v: %w: want a positive interval, or 0 for %v", o.Interval, ErrInvalid, DefaultInterval)
	case o.Headroom != 0 && !(o.Headroom >= 1 && !math.IsInf(o.Headroom, 1)):
		return nil, fmt.Errorf("energy: New: PlannerOptions.Headroom %v: %w: want a finite factor of at least 1, or 0 for %v", o.Headroom, ErrInvalid, DefaultHeadroom)
	case o.ShrinkAfter < 0:
		return nil, fmt.Errorf("energy: New: PlannerOptions.ShrinkAfter %d: %w: want at least 1, or 0 for %d", o.ShrinkAfter, ErrInvalid, DefaultShrinkAfter)
	}
	if o.Interval == 0 {
		o.Interval = DefaultInterval
	}
	if o.Headroom == 0 {
		o.Headroom = DefaultHeadroom
	}
	if o.ShrinkAfter == 0 {
		o.ShrinkAfter = DefaultShrinkAfter
	}
	p := &Planner{model: m, opts: o, enc: new(entypesSkEnergyModel), cheapest: -1}
	if err := encodeModel(m, p.enc); err != nil {
		return nil, fmt.Errorf("energy: New: %w", err)
	}
	t, err := m.CheapestSets(o.Table)
	if err != nil {
		return nil, err
	}
	p.table = t
	var best uint64
	for _, row := range m.PerCPU() {
		p.cpus = append(p.cpus, row.CPU)
		if c := row.States[0].Cost; p.cheapest < 0 || c < best {
			p.cheapest, best = row.CPU, c
		}
	}
	for i := range m.Domains {
		p.pds = append(p.pds, strconv.Itoa(i))
	}
	p.stats, p.nextStats = newDomainStats(len(m.Domains)), newDomainStats(len(m.Domains))
	p.reset()
	p.log = o.Logger
	if p.log == nil {
		p.log = slog.Default()
	}
	return p, nil
}

// Table returns the table of cheapest sets the Planner plans with; it is
// shared, not a copy: do not modify it.
func (p *Planner) Table() *Table { return p.table }

// Name implements scx.Component: "energy".
func (p *Planner) Name() string { return "energy" }

// Needs implements scx.Component. The scheduler's object includes
// scxkit/energy.bpf.h (its globals sk_energy_model and sk_energy_plan),
// picks CPUs in ops.select_cpu with sk_energy_pick_idle_cpu (the Planner
// owns that decision), leaves cold CPUs idle in ops.dispatch
// (sk_energy_is_warm) and applies targets with sk_energy_apply_perf from
// ops.running or ops.tick (either: not declared). The idle picker reads
// the builtin idle mask, which SCX_OPS_BUILTIN_IDLE_PER_NODE takes away.
func (p *Planner) Needs() scx.Needs {
	return scx.Needs{
		Forbids:   []scx.OpsFlag{scx.BuiltinIdlePerNode},
		Owns:      []string{"select_cpu"},
		Callbacks: []string{"dispatch"},
		Objects:   (*plannerObjects)(nil),
		Header:    "scxkit/energy.bpf.h",
	}
}

// Bind implements scx.Component: it finds energy.bpf.h's globals and
// writes the model's per-CPU tables. The loaded scheduler has no plan
// yet (every CPU warm, performance left to the kernel) until the first
// Write or WriteDemand.
func (p *Planner) Bind(b *scx.Binding) error {
	var objs plannerObjects
	if err := b.Assign(&objs); err != nil {
		return err
	}
	if err := objs.Model.Set(p.enc); err != nil {
		return fmt.Errorf("energy: bind: write sk_energy_model: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.objs, p.bound = objs, true
	if p.opts.Logger == nil {
		p.log = b.Logger()
	}
	p.reset()
	return nil
}

// reset forgets the plans written: a newly loaded scheduler has none.
func (p *Planner) reset() {
	p.plan = entypesSkEnergyPlan{}
	p.level, p.lower, p.demand, p.plans = nil, 0, 0, 0
	for i := range p.model.Domains {
		p.stats.warm[i] = p.model.Domains[i].CPUs.Weight()
		p.stats.state[i] = -1
		p.stats.target[i] = 0
	}
}

// Work implements scx.Worker: every Interval, measure demand with
// PlannerOptions.Demand and plan for it (WriteDemand). Without a Demand
// function, there is no periodic work.
func (p *Planner) Work() []scx.Periodic {
	if p.opts.Demand == nil {
		return nil
	}
	return []scx.Periodic{{Name: "plan", Every: p.opts.Interval, Func: func(context.Context, *scx.Scheduler) error {
		d, err := p.opts.Demand()
		if err != nil {
			return fmt.Errorf("energy: measure demand: %w", err)
		}
		return p.WriteDemand(d)
	}}}
}

// WriteDemand plans for demand (capacity units): the level of the Table
// that carries demand × Headroom becomes the plan at once if it is
// higher than the level in force, and after ShrinkAfter calls in a row
// that find a lower one if it is lower; a new plan is written as Write
// does. A demand that is negative or not a number gives an error wrapping
// ErrInvalid; before Bind, one wrapping scx.ErrNotBound.
func (p *Planner) WriteDemand(demand float64) error {
	if !(demand >= 0) {
		return fmt.Errorf("energy: write demand %v: %w: want a demand of at least 0", demand, ErrInvalid)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.bound {
		return fmt.Errorf("energy: write demand: %w", scx.ErrNotBound)
	}
	want := p.table.Lookup(demand * p.opts.Headroom)
	switch {
	case p.level == nil || want.Demand > p.level.Demand:
		p.lower = 0
	case want.Demand < p.level.Demand:
		if p.lower++; p.lower < p.opts.ShrinkAfter {
			want = p.level
		} else {
			p.lower = 0
		}
	default:
		p.lower = 0
	}
	p.demand = demand
	if want == p.level {
		return nil
	}
	if err := p.write(want); err != nil {
		return err
	}
	if p.log.Enabled(context.Background(), slog.LevelDebug) {
		p.log.Debug("warm CPUs", "demand", math.Round(demand), "level", want.Demand, "cpus", topology.MaskFromWords(p.plan.Warm[:]).String(), "energy", want.Energy)
	}
	return nil
}

// Write makes l the plan in force: l's CPUs warm (or, for a level
// without CPUs, the model's cheapest CPU, so that some CPU always runs),
// each warm CPU at the performance target of its share's state, and
// every other CPU of the model at its lowest state. Targets are relative
// to each CPU's own capacity, as scx_bpf_cpuperf_set takes them (1024:
// the CPU's top state). l is usually a level of Table(); a share naming a
// domain, state or CPU the model does not have gives an error wrapping
// ErrInvalid. Before Bind, the error wraps scx.ErrNotBound.
func (p *Planner) Write(l *Level) error {
	if l == nil {
		return fmt.Errorf("energy: write plan: %w: no level", ErrInvalid)
	}
	m := p.model
	for i, sh := range l.Shares {
		switch {
		case sh.Domain < 0 || sh.Domain >= len(m.Domains):
			return fmt.Errorf("energy: write plan: share %d: domain %d: %w: the model has domains 0 to %d", i, sh.Domain, ErrInvalid, len(m.Domains)-1)
		case sh.State < 0 || sh.State >= len(m.Domains[sh.Domain].States):
			return fmt.Errorf("energy: write plan: share %d: state %d: %w: %s has states 0 to %d", i, sh.State, ErrInvalid, domainWhere(sh.Domain, &m.Domains[sh.Domain]), len(m.Domains[sh.Domain].States)-1)
		case !sh.CPUs.Subset(m.Domains[sh.Domain].CPUs):
			return fmt.Errorf("energy: write plan: share %d: CPUs %s: %w: not all in %s", i, sh.CPUs, ErrInvalid, domainWhere(sh.Domain, &m.Domains[sh.Domain]))
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.bound {
		return fmt.Errorf("energy: write plan: %w", scx.ErrNotBound)
	}
	return p.write(l)
}

// write writes the plan of l, a level with valid shares; p.mu is held.
func (p *Planner) write(l *Level) error {
	m := p.model
	n, st := &p.next, &p.nextStats
	*n = p.plan
	clear(n.Warm[:])
	clear(n.Perf[:])
	n.NrWarm = 0
	for i := range m.Domains {
		d := &m.Domains[i]
		low := perfTarget(d, 0)
		for cpu := range d.CPUs.All() {
			n.Perf[cpu] = low
		}
		st.warm[i], st.state[i], st.target[i] = 0, 0, low
	}
	warm := func(di, cpu, state int) {
		if n.Warm[cpu/64]&(1<<(cpu%64)) == 0 {
			n.Warm[cpu/64] |= 1 << (cpu % 64)
			n.NrWarm++
			st.warm[di]++
		}
		perf := perfTarget(&m.Domains[di], state)
		n.Perf[cpu] = perf
		st.state[di], st.target[di] = state, perf
	}
	for _, sh := range l.Shares {
		for cpu := range sh.CPUs.All() {
			warm(sh.Domain, cpu, sh.State)
		}
	}
	if n.NrWarm == 0 {
		warm(m.DomainOf(p.cheapest), p.cheapest, 0)
	}
	n.Seq++
	if err := p.objs.Plan.Set(n); err != nil {
		return fmt.Errorf("energy: write plan: %w", err)
	}
	p.plan = *n
	p.stats, p.nextStats = p.nextStats, p.stats
	p.level = l
	p.plans++
	return nil
}

// Warm returns the CPUs the plan in force keeps warm: every CPU of the
// model before the first plan.
func (p *Planner) Warm() topology.Cpumask {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.plans == 0 {
		return p.model.CPUs()
	}
	return topology.MaskFromWords(p.plan.Warm[:])
}

// Read appends to dst what the plan in force says of each CPU of the
// model, by ascending CPU, as the BPF side holds it (sk_energy_plan), and
// returns it. Before Bind, the error wraps scx.ErrNotBound.
func (p *Planner) Read(dst []CPUPlan) ([]CPUPlan, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.bound {
		return dst, fmt.Errorf("energy: read plan: %w", scx.ErrNotBound)
	}
	r := &p.readBuf
	if err := p.objs.Plan.Get(r); err != nil {
		return dst, fmt.Errorf("energy: read plan: %w", err)
	}
	for _, cpu := range p.cpus {
		warm := r.NrWarm == 0 || r.Warm[cpu/64]&(1<<(cpu%64)) != 0
		dst = append(dst, CPUPlan{CPU: cpu, Warm: warm, Perf: r.Perf[cpu]})
	}
	return dst, nil
}

// Indices of the Planner's stats in Stats().
const (
	statDemand = iota
	statLevelDemand
	statWarmCPUs
	statPlans
	statPDWarm
	statPDState
	statPDTarget
	statPDFreq
)

var plannerStats = []scx.StatDesc{
	statDemand:      {Name: "demand", Kind: scx.Gauge, Help: "Demand last planned for, in capacity units (1024: the fastest CPU busy all the time)."},
	statLevelDemand: {Name: "level_demand", Kind: scx.Gauge, Help: "Demand the plan in force carries, in capacity units: the level of the table for the demand times the headroom (0 before the first plan)."},
	statWarmCPUs:    {Name: "warm_cpus", Kind: scx.Gauge, Help: "CPUs the plan in force keeps warm (all of them before the first plan)."},
	statPlans:       {Name: "plans_written", Kind: scx.Counter, Help: "Plans written to the BPF side, one per change of the warm CPUs."},
	statPDWarm:      {Name: "pd_warm_cpus", Kind: scx.Gauge, Label: "pd", Help: "CPUs of the performance domain (its index in the model) the plan in force keeps warm."},
	statPDState:     {Name: "pd_state", Kind: scx.Gauge, Label: "pd", Help: "Index of the performance state the plan in force runs the domain's warm CPUs at, its lowest when none is warm (-1 before the first plan)."},
	statPDTarget:    {Name: "pd_perf_target", Kind: scx.Gauge, Label: "pd", Help: "Performance target of the domain's warm CPUs (its lowest state's when none is warm), relative to their capacity as scx_bpf_cpuperf_set takes it (1024: the top state; 0 before the first plan)."},
	statPDFreq:      {Name: "pd_freq_khz", Kind: scx.Gauge, Label: "pd", Help: "Frequency of the performance state of pd_state, in kHz (0 before the first plan)."},
}

// Stats implements scx.Reporter: the demand, the level and warm CPUs of
// the plan in force and the plans written, and per performance domain
// (label "pd", the domain's index in the model) its warm CPUs, state,
// performance target and frequency.
func (p *Planner) Stats() []scx.StatDesc { return plannerStats }

// ReadStats implements scx.Reporter. It reads what the Planner last
// wrote, not the BPF side, and allocates nothing when dst has room.
func (p *Planner) ReadStats(dst []scx.Sample) ([]scx.Sample, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var level float64
	nrWarm := len(p.cpus)
	if p.plans > 0 {
		level, nrWarm = float64(p.level.Demand), int(p.plan.NrWarm)
	}
	dst = append(dst,
		scx.Sample{Stat: statDemand, Value: p.demand},
		scx.Sample{Stat: statLevelDemand, Value: level},
		scx.Sample{Stat: statWarmCPUs, Value: float64(nrWarm)},
		scx.Sample{Stat: statPlans, Value: float64(p.plans)})
	st := &p.stats
	for i, pd := range p.pds {
		var freq float64
		if s := st.state[i]; s >= 0 {
			freq = float64(p.model.Domains[i].States[s].FrequencyKHz)
		}
		dst = append(dst,
			scx.Sample{Stat: statPDWarm, Label: pd, Value: float64(st.warm[i])},
			scx.Sample{Stat: statPDState, Label: pd, Value: float64(st.state[i])},
			scx.Sample{Stat: statPDTarget, Label: pd, Value: float64(st.target[i])},
			scx.Sample{Stat: statPDFreq, Label: pd, Value: freq})
	}
	return dst, nil
}
