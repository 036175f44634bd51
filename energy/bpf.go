package energy

import (
	"fmt"
)

// Limits of the BPF layout (energy.h), as the compiler gives them.
const (
	maxBPFCPUs   = int(entypesSkEnergyConstsSK_MAX_CPUS)
	maxBPFStates = int(entypesSkEnergyConstsSK_MAX_STATES)
)

// encodeModel lays m out as scxkit/energy.bpf.h's sk_energy_model: for
// every CPU, its domain and the domain's efficient performance states
// (Performance and Cost), which the BPF helpers pick states and CPUs from.
// Inefficient states are left out, as the kernel skips them too. A model
// that does not fit the layout (CPU ids from SK_ENERGY_MAX_CPUS on, more
// than SK_ENERGY_MAX_STATES efficient states in a domain) gives an error
// wrapping ErrTooBig. m must be valid.
func encodeModel(m *Model, st *entypesSkEnergyModel) error {
	for _, row := range m.PerCPU() {
		if row.CPU >= maxBPFCPUs {
			return fmt.Errorf("CPU %d: %w: the BPF layout holds kernel ids below %d; raise SK_ENERGY_MAX_CPUS in scxkit/energy.h and rebuild", row.CPU, ErrTooBig, maxBPFCPUs)
		}
		c := &st.Cpus[row.CPU]
		c.Domain = uint32(row.Domain)
		for _, s := range row.States {
			if s.Inefficient {
				continue
			}
			if int(c.NrStates) == maxBPFStates {
				return fmt.Errorf("%s: %w: more than %d efficient states; raise SK_ENERGY_MAX_STATES in scxkit/energy.h and rebuild", domainWhere(row.Domain, &m.Domains[row.Domain]), ErrTooBig, maxBPFStates)
			}
			c.States[c.NrStates].Perf = uint32(s.Performance)
			c.States[c.NrStates].Cost = uint32(s.Cost)
			c.NrStates++
		}
		st.NrCpuIds = max(st.NrCpuIds, uint32(row.CPU)+1)
	}
	return nil
}

// perfTarget is state's performance relative to the domain's top state,
// in 1..1024: the unit of scx_bpf_cpuperf_set, relative to each CPU's
// own capacity.
func perfTarget(d *PerfDomain, state int) uint32 {
	top := d.States[len(d.States)-1].Performance
	if top == 0 {
		return CapacityScale
	}
	return uint32(max(1, min(CapacityScale, d.States[state].Performance*CapacityScale/top)))
}
