package energy

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/scxkit/scxkit/topology"
)

// Limits of the BPF layout (energy.h).
const (
	maxBPFCPUs   = 512 // SK_ENERGY_MAX_CPUS
	maxBPFStates = 32  // SK_ENERGY_MAX_STATES
)

// Names of the globals energy.bpf.h defines.
const (
	bpfModel = "sk_energy_model"
	bpfPlan  = "sk_energy_plan"
)

// ErrTooBig is returned by WriteBPF for a model that does not fit the BPF
// layout: a CPU id of 512 or more, or more than 32 efficient states in a
// domain.
var ErrTooBig = errors.New("energy: model too big for the BPF layout")

// WriteBPF hands the model to a loaded scheduler that includes
// scxkit/energy.bpf.h: for every CPU, its domain and the domain's
// efficient performance states (Performance and Cost), which the BPF
// helpers pick states and CPUs from. Inefficient states are left out, as
// the kernel skips them too. Call it after loading and before attaching.
func (m *Model) WriteBPF(coll *ebpf.Collection) error {
	if err := m.Validate(); err != nil {
		return err
	}
	v := coll.Variables[bpfModel]
	if v == nil {
		return fmt.Errorf("energy: write BPF: the object has no %s: include scxkit/energy.bpf.h", bpfModel)
	}
	st := new(entypesSkEnergyModel)
	for _, row := range m.PerCPU() {
		if row.CPU >= maxBPFCPUs {
			return fmt.Errorf("%w: CPU %d: the layout holds CPUs below %d", ErrTooBig, row.CPU, maxBPFCPUs)
		}
		c := &st.Cpus[row.CPU]
		c.Domain = uint32(row.Domain)
		for _, s := range row.States {
			if s.Inefficient {
				continue
			}
			if c.NrStates == maxBPFStates {
				return fmt.Errorf("%w: domain %d (CPUs %s) has more than %d efficient states", ErrTooBig, row.Domain, m.Domains[row.Domain].CPUs, maxBPFStates)
			}
			c.States[c.NrStates].Perf = uint32(s.Performance)
			c.States[c.NrStates].Cost = uint32(s.Cost)
			c.NrStates++
		}
		st.NrCpuIds = max(st.NrCpuIds, uint32(row.CPU)+1)
	}
	if err := v.Set(st); err != nil {
		return fmt.Errorf("energy: write BPF: %s: %w", bpfModel, err)
	}
	return nil
}

// PlanWriter writes the plan an energy-aware scheduler follows into
// scxkit/energy.bpf.h's sk_energy_plan: the CPUs to keep warm and a
// performance target for every CPU of the model. A scheduler writes a new
// plan whenever the demand it measures moves to another level of its
// Table.
type PlanWriter struct {
	v        *ebpf.Variable
	model    *Model
	plan     entypesSkEnergyPlan
	cheapest int // the CPU kept warm when a level has none
}

// NewPlanWriter finds sk_energy_plan in coll; m is the model the
// scheduler's Table was built from.
func NewPlanWriter(coll *ebpf.Collection, m *Model) (*PlanWriter, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	v := coll.Variables[bpfPlan]
	if v == nil {
		return nil, fmt.Errorf("energy: plan writer: the object has no %s: include scxkit/energy.bpf.h", bpfPlan)
	}
	w := &PlanWriter{v: v, model: m, cheapest: -1}
	var best uint64
	for _, row := range m.PerCPU() {
		if row.CPU >= maxBPFCPUs {
			return nil, fmt.Errorf("%w: CPU %d: the layout holds CPUs below %d", ErrTooBig, row.CPU, maxBPFCPUs)
		}
		if c := row.States[0].Cost; w.cheapest < 0 || c < best {
			w.cheapest, best = row.CPU, c
		}
	}
	return w, nil
}

// Write makes l the plan: l's CPUs warm (or, for a level without CPUs, the
// model's cheapest CPU, so that some CPU always runs), each warm CPU at
// the performance of its share's state, and every other CPU of the model
// at its lowest state. Targets are relative to each CPU's own capacity,
// as scx_bpf_cpuperf_set takes them (1024 = the CPU's top state).
func (w *PlanWriter) Write(l *Level) error {
	p := &w.plan
	clear(p.Warm[:])
	clear(p.Perf[:])
	p.NrWarm = 0
	m := w.model
	for i := range m.Domains {
		d := &m.Domains[i]
		low := perfTarget(d, 0)
		for cpu := range d.CPUs.All() {
			p.Perf[cpu] = low
		}
	}
	warm := func(cpu int, perf uint32) {
		if p.Warm[cpu/64]&(1<<(cpu%64)) == 0 {
			p.Warm[cpu/64] |= 1 << (cpu % 64)
			p.NrWarm++
		}
		p.Perf[cpu] = perf
	}
	for _, sh := range l.Shares {
		d := &m.Domains[sh.Domain]
		perf := perfTarget(d, sh.State)
		for cpu := range sh.CPUs.All() {
			if cpu < maxBPFCPUs {
				warm(cpu, perf)
			}
		}
	}
	if p.NrWarm == 0 && w.cheapest >= 0 {
		d := &m.Domains[m.DomainOf(w.cheapest)]
		warm(w.cheapest, perfTarget(d, 0))
	}
	p.Seq++
	if err := w.v.Set(p); err != nil {
		return fmt.Errorf("energy: write plan: %w", err)
	}
	return nil
}

// Warm returns the CPUs the last plan written keeps warm.
func (w *PlanWriter) Warm() topology.Cpumask {
	return topology.MaskFromWords(w.plan.Warm[:])
}

// perfTarget is state's performance relative to the domain's top state,
// in 1..1024.
func perfTarget(d *PerfDomain, state int) uint32 {
	top := d.States[len(d.States)-1].Performance
	if top == 0 {
		return CapacityScale
	}
	return uint32(max(1, min(CapacityScale, d.States[state].Performance*CapacityScale/top)))
}
