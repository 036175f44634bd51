package energy

import (
	"fmt"
	"slices"

	"github.com/scxkit/scxkit/topology"
)

// OPP is one operating performance point of a device-tree OPP table
// (operating-points-v2).
type OPP struct {
	// FrequencyHz is opp-hz. Set it or FrequencyKHz.
	FrequencyHz uint64
	// FrequencyKHz is the frequency in kHz, for tables written that way
	// (cpufreq, the old operating-points property).
	FrequencyKHz uint64
	// MicroVolts is the target voltage, the first value of
	// opp-microvolt.
	MicroVolts uint64
	// MicroWatts is opp-microwatt, the power the device tree gives
	// directly; 0 when absent. When the lowest OPP has it, the kernel
	// uses it for every OPP instead of the dynamic-power formula.
	MicroWatts uint64
}

// OPPDomain describes a cluster of CPUs sharing an OPP table (a cpufreq
// policy), with the device tree's numbers for its CPUs.
type OPPDomain struct {
	// Name names the domain; "" gives "cpuN" for the lowest CPU N, the
	// name the kernel's debugfs directory has.
	Name string
	// CPUs are the kernel ids of the CPUs.
	CPUs topology.Cpumask
	// OPPs is the OPP table, in any order.
	OPPs []OPP
	// DynamicPowerCoefficient is the CPUs' dynamic-power-coefficient
	// (µW/MHz/V²), needed unless the OPPs have MicroWatts.
	DynamicPowerCoefficient uint64
	// CapacityDMIPSMHz is the CPUs' capacity-dmips-mhz. FromOPP
	// normalizes it as the kernel does.
	CapacityDMIPSMHz uint64
	// Capacity, if not 0, is the CPUs' capacity (as in
	// /sys/devices/system/cpu/cpuN/cpu_capacity), used instead of
	// CapacityDMIPSMHz. Set it in every domain or in none.
	Capacity uint64
}

// FromOPP builds a model from device-tree OPP tables, computing what the
// kernel computes when cpufreq-dt registers an energy model with
// dev_pm_opp_of_register_em:
//
//   - power, in µW, from drivers/opp/of.c (dev_pm_opp_calc_power, once
//     _get_power), in integer arithmetic:
//     coefficient × mV × mV × MHz / 1000000, with mV = µV / 1000 and
//     MHz = Hz / 1000000 rounded down; or opp-microwatt when the lowest
//     OPP has it;
//   - capacity, from drivers/base/arch_topology.c: each domain's
//     capacity-dmips-mhz × its highest frequency, scaled so that the
//     largest is 1024 (rounded down); 1024 everywhere when no domain has
//     capacity-dmips-mhz, and, as the kernel does, also when only some
//     have it;
//   - performance, cost and inefficient flags as NewPerfDomain.
//
// The OPPs are sorted by frequency, as the OPP core keeps them. The error
// wraps ErrInvalid and names the domain and OPP at fault.
func FromOPP(domains []OPPDomain) (*Model, error) {
	m, err := fromOPP(domains)
	if err != nil {
		return nil, fmt.Errorf("energy: FromOPP: %w", err)
	}
	return m, nil
}

// fromOPP is FromOPP with errors that do not name the package.
func fromOPP(domains []OPPDomain) (*Model, error) {
	m := &Model{}
	if len(domains) == 0 {
		return nil, invalidf("no domains", "pass the OPP table of every CPU performance domain")
	}
	caps, note, err := oppCapacities(domains)
	if err != nil {
		return nil, err
	}
	if note != "" {
		m.Assumed = append(m.Assumed, note)
	}
	for i, od := range domains {
		where := fmt.Sprintf("domain %d (cpus %s)", i, od.CPUs)
		if od.Name != "" {
			where = fmt.Sprintf("domain %d (%s)", i, od.Name)
		}
		states, err := oppStates(where, od)
		if err != nil {
			return nil, err
		}
		if od.CPUs.Empty() {
			return nil, invalidf(where, "no CPUs: give the CPUs of the domain")
		}
		d, err := newPerfDomain(od.CPUs, caps[i], states)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		d.Name, d.Microwatts = od.Name, true
		if d.Name == "" {
			d.Name = fmt.Sprintf("cpu%d", od.CPUs.First())
		}
		m.Domains = append(m.Domains, d)
	}
	sortDomains(m.Domains)
	if err := m.validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// oppHz returns the OPP's frequency in Hz.
func oppHz(o OPP) (uint64, bool) {
	switch {
	case o.FrequencyHz != 0 && o.FrequencyKHz != 0:
		return o.FrequencyHz, o.FrequencyHz == o.FrequencyKHz*1000
	case o.FrequencyHz != 0:
		return o.FrequencyHz, true
	case o.FrequencyKHz != 0:
		return o.FrequencyKHz * 1000, o.FrequencyKHz <= 1<<54
	}
	return 0, false
}

// oppStates computes each OPP's frequency (kHz) and power (µW).
func oppStates(where string, od OPPDomain) ([]PerfState, error) {
	if len(od.OPPs) == 0 {
		return nil, invalidf(where, "empty OPP table: give at least one OPP")
	}
	opps := slices.Clone(od.OPPs)
	for i, o := range opps {
		if _, ok := oppHz(o); !ok {
			return nil, invalidf(fmt.Sprintf("%s: OPP %d: frequency %d Hz / %d kHz", where, i, o.FrequencyHz, o.FrequencyKHz), "set one of FrequencyHz and FrequencyKHz (or both, agreeing)")
		}
	}
	slices.SortStableFunc(opps, func(a, b OPP) int {
		ha, _ := oppHz(a)
		hb, _ := oppHz(b)
		switch {
		case ha < hb:
			return -1
		case ha > hb:
			return 1
		}
		return 0
	})
	dtPower := opps[0].MicroWatts != 0
	if !dtPower && od.DynamicPowerCoefficient == 0 {
		return nil, invalidf(where, "no dynamic-power-coefficient and no opp-microwatt: the kernel registers no energy model for such CPUs")
	}
	states := make([]PerfState, len(opps))
	for i, o := range opps {
		hz, _ := oppHz(o)
		s := &states[i]
		s.FrequencyKHz = hz / 1000
		if i > 0 && s.FrequencyKHz <= states[i-1].FrequencyKHz {
			return nil, invalidf(fmt.Sprintf("%s: OPP %d Hz", where, hz), "same frequency in kHz as the OPP below: the kernel rejects non-increasing frequencies")
		}
		if dtPower {
			if o.MicroWatts == 0 {
				return nil, invalidf(fmt.Sprintf("%s: OPP %d Hz", where, hz), "no opp-microwatt while the lowest OPP has one: the kernel rejects a power of 0")
			}
			s.Power = o.MicroWatts
			continue
		}
		mV, mhz := o.MicroVolts/1000, hz/1_000_000
		if mV == 0 {
			return nil, invalidf(fmt.Sprintf("%s: OPP %d Hz", where, hz), "voltage %d µV is below 1 mV: the kernel needs opp-microvolt to compute power", o.MicroVolts)
		}
		if mV > 10_000 || od.DynamicPowerCoefficient > 1<<32-1 || mhz > 1<<20 {
			return nil, invalidf(fmt.Sprintf("%s: OPP %d Hz", where, hz), "voltage %d µV or coefficient %d out of range", o.MicroVolts, od.DynamicPowerCoefficient)
		}
		hi, lo := mulDiv(od.DynamicPowerCoefficient*mV*mV, mhz, 1_000_000)
		if hi != 0 {
			return nil, invalidf(fmt.Sprintf("%s: OPP %d Hz", where, hz), "power overflows")
		}
		s.Power = lo
	}
	return states, nil
}

// oppCapacities returns each domain's CPU capacity.
func oppCapacities(domains []OPPDomain) ([]uint64, string, error) {
	caps := make([]uint64, len(domains))
	var explicit, dmips int
	for _, d := range domains {
		if d.Capacity != 0 {
			explicit++
		}
		if d.CapacityDMIPSMHz != 0 {
			dmips++
		}
	}
	switch {
	case explicit == len(domains):
		for i, d := range domains {
			caps[i] = d.Capacity
		}
		return caps, "", nil
	case explicit > 0:
		return nil, "", invalidf(fmt.Sprintf("Capacity set in %d of %d domains", explicit, len(domains)), "set it in all or none")
	case dmips < len(domains):
		for i := range caps {
			caps[i] = CapacityScale
		}
		if dmips == 0 {
			return caps, "no capacity-dmips-mhz: assumed capacity 1024 for every CPU, as the kernel does", nil
		}
		return caps, "capacity-dmips-mhz missing in some domains: the kernel falls back to capacity 1024 for every CPU, and so does FromOPP", nil
	}
	raw := make([]uint64, len(domains))
	var top uint64
	for i, d := range domains {
		var fmax uint64
		for _, o := range d.OPPs {
			hz, _ := oppHz(o)
			fmax = max(fmax, hz/1000)
		}
		if d.CapacityDMIPSMHz > 1<<20 || fmax > 1<<32 {
			return nil, "", invalidf(fmt.Sprintf("domain %d: capacity-dmips-mhz %d or frequency %d kHz", i, d.CapacityDMIPSMHz, fmax), "out of range")
		}
		raw[i] = d.CapacityDMIPSMHz * fmax
		top = max(top, raw[i])
	}
	for i := range raw {
		_, caps[i] = mulDiv(raw[i], CapacityScale, top)
	}
	return caps, "", nil
}
