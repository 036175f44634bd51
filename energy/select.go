package energy

import (
	"fmt"
	"math"
)

// SelectPerfState returns the index of the state the kernel predicts for a
// domain whose busiest CPU has utilisation util (capacity units): the
// lowest state that is not inefficient and whose Performance is at least
// util, or the highest state when none is (em_pd_get_efficient_state).
//
// The kernel skips inefficient states only when the domain's flags have
// EM_PERF_DOMAIN_SKIP_INEFFICIENCIES, which it sets when cpufreq knows the
// inefficient frequencies and will skip them too: the usual case, and the
// only one this package models. The highest state is never inefficient.
func (d *PerfDomain) SelectPerfState(util float64) int {
	for i, s := range d.States {
		if float64(s.Performance) >= util && !s.Inefficient {
			return i
		}
	}
	return len(d.States) - 1
}

// Energy returns the kernel's energy estimate for the domain
// (em_cpu_energy) when its busiest CPU has utilisation maxUtil and its
// CPUs' utilisations add up to sumUtil, in capacity units: the cost of the
// state SelectPerfState(maxUtil) picks times sumUtil, and 0 when sumUtil
// is 0.
//
// Since Cost = 10 × Power / Performance and a CPU with utilisation u is
// busy u / Performance of the time, the result is ten times the average
// power of the domain's CPUs over the period, in the power unit (µW for a
// Microwatts domain), ignoring idle power as the kernel does. The kernel
// computes in integers from integer utilisations; this is the same
// formula in float64.
func (d *PerfDomain) Energy(maxUtil, sumUtil float64) float64 {
	if sumUtil <= 0 || len(d.States) == 0 {
		return 0
	}
	return float64(d.States[d.SelectPerfState(maxUtil)].Cost) * sumUtil
}

// Energy returns the model's energy estimate for a placement: util[cpu] is
// the utilisation of CPU cpu (kernel id, capacity units); CPUs past the
// end of util are idle. It is the sum over the domains of
// PerfDomain.Energy, with each domain's maximum and sum of utilisation,
// as the kernel's compute_energy adds up em_cpu_energy over the
// performance domains.
//
// A utilisation that is negative, NaN or infinite, or above 0 on a CPU
// outside every domain, is an error wrapping ErrInvalid.
func (m *Model) Energy(util []float64) (float64, error) {
	var covered int
	var total float64
	for i := range m.Domains {
		d := &m.Domains[i]
		var maxU, sumU float64
		for cpu := range d.CPUs.All() {
			if cpu >= len(util) {
				break
			}
			u := util[cpu]
			covered++
			maxU = max(maxU, u)
			sumU += u
		}
		total += d.Energy(maxU, sumU)
	}
	for cpu, u := range util {
		if u < 0 || math.IsNaN(u) || math.IsInf(u, 0) {
			return 0, fmt.Errorf("energy: Energy: util[%d] is %v: %w: want a finite utilisation of at least 0", cpu, u, ErrInvalid)
		}
	}
	if covered < len(util) {
		for cpu, u := range util {
			if u != 0 && m.DomainOf(cpu) < 0 {
				return 0, fmt.Errorf("energy: Energy: util[%d] is %v: %w: CPU %d is in no performance domain; give it 0", cpu, u, ErrInvalid, cpu)
			}
		}
	}
	return total, nil
}
