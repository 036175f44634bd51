package energy

import (
	"fmt"
	"math"
	"math/bits"
	"slices"

	"github.com/scxkit/scxkit/topology"
)

// Kernel limits, from include/linux/energy_model.h and
// include/linux/sched.h.
const (
	// MaxPower is the kernel's EM_MAX_POWER: the highest power, in µW, a
	// performance state may have (64 W). The kernel refuses to register
	// a table with a larger value; Validate does the same, which also
	// keeps every energy this package computes far from overflow.
	MaxPower = 64_000_000
	// MaxCost is the highest cost a state can have: MaxPower × 10 at a
	// performance of 1 (the kernel bounds artificial costs by MaxPower).
	MaxCost = 10 * MaxPower
	// CapacityScale is SCHED_CAPACITY_SCALE: the capacity of the fastest
	// CPU at its highest frequency, and the bound of every Performance.
	CapacityScale = 1024
)

// PerfState is one performance state (OPP) of a performance domain: the
// kernel's struct em_perf_state.
type PerfState struct {
	// FrequencyKHz is the CPU frequency of the state, in kHz.
	FrequencyKHz uint64
	// Power is the power one CPU of the domain draws while busy at this
	// state: µW when PerfDomain.Microwatts is set, else in an abstract
	// scale (a bogoWatts or artificial kernel model, or Estimate).
	Power uint64
	// Performance is the capacity of a CPU of the domain at this state:
	// capacity × FrequencyKHz / (the domain's highest frequency), in the
	// scheduler's units where 1024 is the fastest CPU at its highest
	// frequency. Utilisations are compared with it.
	Performance uint64
	// Cost is the kernel's energy cost coefficient, 10 × Power /
	// Performance (integer division, as the kernel computes it since
	// Linux 6.9): the energy of one unit of utilisation at this state,
	// in tenths of the power unit. See PerfDomain.Energy.
	Cost uint64
	// Inefficient is set when a higher-frequency state of the domain
	// costs as much or less: it gives more performance for no more
	// energy per unit of work, so the kernel skips this state.
	Inefficient bool
}

// PerfDomain is a performance domain: CPUs whose frequency changes
// together (a cpufreq policy) and that share one table of states.
type PerfDomain struct {
	// Name is the domain's name: the debugfs directory ("cpu0"), the
	// OPPDomain name, or "cpuN" for the lowest CPU N.
	Name string
	// CPUs are the kernel ids of the domain's CPUs.
	CPUs topology.Cpumask
	// States are the performance states, by strictly increasing
	// frequency.
	States []PerfState
	// Microwatts is set when Power is in µW; else the power values are
	// in an abstract scale, comparable only within one model.
	Microwatts bool
}

// Model is an energy model: the performance domains of a machine, as the
// kernel's Energy Model framework describes them.
type Model struct {
	// Domains are the performance domains, by ascending lowest CPU.
	Domains []PerfDomain
	// Assumed lists what the model builder derived or guessed rather than
	// read, one human-readable note each; empty when everything came from
	// the source.
	Assumed []string
}

// NewPerfDomain builds a domain the way the kernel's em_create_perf_table
// does, from the frequency and power of each state (the other PerfState
// fields of states are ignored) and capacity, the CPUs' capacity at the
// highest frequency (arch_scale_cpu_capacity, at most 1024):
//
//	Performance = capacity × FrequencyKHz / fmax
//	Cost        = Power × 10 / Performance
//	Inefficient = Cost ≥ the Cost of some higher state
//
// all in integer arithmetic. It checks what the kernel checks (strictly
// increasing frequencies, 0 < Power ≤ MaxPower) and that every
// Performance is at least 1, which the kernel assumes. The new domain has
// its own copy of states; Name and Microwatts are left for the caller.
// Errors wrap ErrInvalid.
func NewPerfDomain(cpus topology.Cpumask, capacity uint64, states []PerfState) (PerfDomain, error) {
	d, err := newPerfDomain(cpus, capacity, states)
	if err != nil {
		return d, fmt.Errorf("energy: performance domain of cpus %s: %w", cpus, err)
	}
	return d, nil
}

// newPerfDomain is NewPerfDomain with errors that do not name the package
// or the CPUs.
func newPerfDomain(cpus topology.Cpumask, capacity uint64, states []PerfState) (PerfDomain, error) {
	d := PerfDomain{CPUs: cpus.Clone(), States: slices.Clone(states)}
	if len(states) == 0 {
		return d, invalidf("no performance states", "pass at least one")
	}
	if capacity == 0 || capacity > CapacityScale {
		return d, invalidf(fmt.Sprintf("capacity %d", capacity), "want 1 to %d, the CPUs' capacity at the highest frequency", CapacityScale)
	}
	for i, s := range d.States {
		if s.FrequencyKHz == 0 || i > 0 && s.FrequencyKHz <= d.States[i-1].FrequencyKHz {
			return d, invalidf(fmt.Sprintf("state %d: frequency %d kHz", i, s.FrequencyKHz), "it does not increase: pass states by strictly increasing frequency")
		}
		if s.Power == 0 || s.Power > MaxPower {
			return d, invalidf(fmt.Sprintf("state %d (%d kHz): power %d", i, s.FrequencyKHz, s.Power), "want 1 to %d µW, as the kernel does", MaxPower)
		}
	}
	fmax := d.States[len(d.States)-1].FrequencyKHz
	for i := range d.States {
		s := &d.States[i]
		hi, lo := mulDiv(capacity, s.FrequencyKHz, fmax)
		if hi != 0 || lo == 0 {
			return d, invalidf(fmt.Sprintf("state %d (%d kHz)", i, s.FrequencyKHz), "performance capacity × frequency / fmax = %d × %d / %d rounds to 0: the frequency is too low for the kernel's energy model", capacity, s.FrequencyKHz, fmax)
		}
		s.Performance = lo
		s.Cost = s.Power * 10 / s.Performance
	}
	markInefficient(d.States)
	return d, nil
}

// mulDiv returns a × b / c as a 128-bit quotient (hi, lo); c must not be 0.
func mulDiv(a, b, c uint64) (hi, lo uint64) {
	h, l := bits.Mul64(a, b)
	if h >= c {
		return math.MaxUint64, math.MaxUint64
	}
	q, _ := bits.Div64(h, l, c)
	return 0, q
}

// markInefficient sets Inefficient as em_compute_costs does: walking from
// the highest state down, a state whose cost is not below the lowest cost
// seen so far is inefficient.
func markInefficient(states []PerfState) {
	prev := uint64(math.MaxUint64)
	for i := len(states) - 1; i >= 0; i-- {
		states[i].Inefficient = states[i].Cost >= prev
		if !states[i].Inefficient {
			prev = states[i].Cost
		}
	}
}

// Validate reports whether m is a model the kernel could have built and
// this package can use. Every domain must have CPUs, no CPU may be in two
// domains, and each domain must have at least one state, with strictly
// increasing frequencies, 0 < Power ≤ MaxPower, non-decreasing Performance
// from 1 to 1024, Cost ≤ MaxCost, and Inefficient flags that follow
// the kernel's rule. The error wraps ErrInvalid and names the domain and
// state.
func (m *Model) Validate() error {
	if err := m.validate(); err != nil {
		return fmt.Errorf("energy: model: %w", err)
	}
	return nil
}

// validate is Validate with errors that do not name the package.
func (m *Model) validate() error {
	if m == nil || len(m.Domains) == 0 {
		return invalidf("no performance domains", "a model needs at least one")
	}
	var seen topology.Cpumask
	for i := range m.Domains {
		d := &m.Domains[i]
		if d.CPUs.Empty() {
			return invalidf(domainWhere(i, d), "no CPUs: a performance domain needs at least one CPU")
		}
		if d.CPUs.Intersects(seen) {
			return invalidf(domainWhere(i, d), "CPUs %s are also in an earlier domain: each CPU belongs to one performance domain", seen.And(d.CPUs))
		}
		seen = seen.Or(d.CPUs)
		if err := validateStates(i, d); err != nil {
			return err
		}
	}
	return nil
}

func domainWhere(i int, d *PerfDomain) string {
	if d.Name != "" {
		return fmt.Sprintf("domain %d (%s, cpus %s)", i, d.Name, d.CPUs)
	}
	return fmt.Sprintf("domain %d (cpus %s)", i, d.CPUs)
}

func validateStates(di int, d *PerfDomain) error {
	states := d.States
	if len(states) == 0 {
		return invalidf(domainWhere(di, d), "no performance states: a domain needs at least one")
	}
	minCost := uint64(math.MaxUint64) // lowest cost of the states above i
	for i := len(states) - 1; i >= 0; i-- {
		s := states[i]
		bad := func(format string, args ...any) error {
			return invalidf(fmt.Sprintf("%s: ps:%d", domainWhere(di, d), s.FrequencyKHz), format, args...)
		}
		switch {
		case s.FrequencyKHz == 0:
			return bad("frequency 0 kHz")
		case i > 0 && states[i-1].FrequencyKHz >= s.FrequencyKHz:
			return bad("frequency not above the %d kHz of the state before it: states must be sorted by strictly increasing frequency, without duplicates", states[i-1].FrequencyKHz)
		case s.Power == 0 || s.Power > MaxPower:
			return bad("power %d out of range 1 to %d", s.Power, MaxPower)
		case s.Performance == 0 || s.Performance > CapacityScale:
			return bad("performance %d out of range 1 to %d", s.Performance, CapacityScale)
		case i > 0 && states[i-1].Performance > s.Performance:
			return bad("performance %d below the %d of ps:%d, the state below: performance must not decrease with frequency", s.Performance, states[i-1].Performance, states[i-1].FrequencyKHz)
		case s.Cost > MaxCost:
			return bad("cost %d above %d", s.Cost, MaxCost)
		}
		if want := s.Cost >= minCost; s.Inefficient != want {
			rel := "below"
			if want {
				rel = "not below"
			}
			return bad("inefficient is %t but its cost %d is %s the lowest cost %d of the higher states: the kernel marks a state inefficient exactly when a higher state costs as much or less",
				s.Inefficient, s.Cost, rel, minCost)
		}
		minCost = min(minCost, s.Cost)
	}
	return nil
}

// Capacity returns the performance of the domain's highest state: its
// CPUs' capacity.
func (d *PerfDomain) Capacity() uint64 {
	if len(d.States) == 0 {
		return 0
	}
	return d.States[len(d.States)-1].Performance
}

// CPUs returns the union of the domains' CPUs.
func (m *Model) CPUs() topology.Cpumask {
	var all topology.Cpumask
	for i := range m.Domains {
		all = all.Or(m.Domains[i].CPUs)
	}
	return all
}

// DomainOf returns the index in m.Domains of the domain holding CPU cpu
// (kernel id), or -1.
func (m *Model) DomainOf(cpu int) int {
	for i := range m.Domains {
		if m.Domains[i].CPUs.Has(cpu) {
			return i
		}
	}
	return -1
}

// CPUStates is one CPU's row of a per-CPU cost table.
type CPUStates struct {
	// CPU is the kernel id.
	CPU int
	// Domain is the index of the CPU's domain in Model.Domains.
	Domain int
	// States are the domain's states, shared with the Model: do not
	// modify them.
	States []PerfState
}

// PerCPU returns one row per CPU of the model, by ascending CPU: its
// domain and that domain's states. It is the shape of a per-CPU table of
// (performance, cost) pairs such as a BPF map indexed by CPU.
func (m *Model) PerCPU() []CPUStates {
	var rows []CPUStates
	for i := range m.Domains {
		for cpu := range m.Domains[i].CPUs.All() {
			rows = append(rows, CPUStates{CPU: cpu, Domain: i, States: m.Domains[i].States})
		}
	}
	slices.SortFunc(rows, func(a, b CPUStates) int { return a.CPU - b.CPU })
	return rows
}

// sortDomains orders domains by their lowest CPU.
func sortDomains(ds []PerfDomain) {
	slices.SortStableFunc(ds, func(a, b PerfDomain) int { return a.CPUs.First() - b.CPUs.First() })
}
