package energy_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scxkit/scxkit/energy"
	"github.com/scxkit/scxkit/topology"
)

func TestFromOPP(t *testing.T) {
	ds := oppDomains(t, parseDT(t, "hi3660"))
	m, err := energy.FromOPP(ds)
	if err != nil {
		t.Fatal(err)
	}
	// capacity: 592 × 1844000 × 1024 / (1024 × 2362000) = 462.
	// 533 MHz at 700 mV: 110 × 700² × 533 / 10^6 = 28728 µW.
	if got := m.Domains[0].States[0]; got.Power != 28728 || got.Performance != 462*533000/1844000 || m.Domains[0].Capacity() != 462 {
		t.Errorf("little ps:533000 = %+v, capacity %d", got, m.Domains[0].Capacity())
	}

	// The same tables in kHz, in reverse order, with the domains swapped
	// and unnamed, give the same model.
	var alt []energy.OPPDomain
	for i := len(ds) - 1; i >= 0; i-- {
		d := ds[i]
		d.Name = ""
		d.OPPs = nil
		for j := len(ds[i].OPPs) - 1; j >= 0; j-- {
			o := ds[i].OPPs[j]
			d.OPPs = append(d.OPPs, energy.OPP{FrequencyKHz: o.FrequencyHz / 1000, MicroVolts: o.MicroVolts})
		}
		alt = append(alt, d)
	}
	m2, err := energy.FromOPP(alt)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m.Domains, m2.Domains, cmpopts...); diff != "" {
		t.Errorf("kHz, reversed (-Hz +kHz):\n%s", diff)
	}

	// Explicit capacities are used as they are.
	for i := range alt {
		alt[i].Capacity = 100 * uint64(i+1)
	}
	m3, err := energy.FromOPP(alt)
	if err != nil {
		t.Fatal(err)
	}
	if m3.Domains[0].Capacity() != 200 || m3.Domains[1].Capacity() != 100 {
		t.Errorf("explicit capacities: %d, %d", m3.Domains[0].Capacity(), m3.Domains[1].Capacity())
	}

	// Without capacity-dmips-mhz anywhere, or somewhere, every CPU gets
	// 1024, as in the kernel.
	for _, drop := range [][]int{{0, 1}, {1}} {
		d := oppDomains(t, parseDT(t, "hi3660"))
		for _, i := range drop {
			d[i].CapacityDMIPSMHz = 0
		}
		m4, err := energy.FromOPP(d)
		if err != nil {
			t.Fatal(err)
		}
		if m4.Domains[0].Capacity() != 1024 || len(m4.Assumed) != 1 {
			t.Errorf("drop %v: capacity %d, assumed %q", drop, m4.Domains[0].Capacity(), m4.Assumed)
		}
	}

	// opp-microwatt replaces the formula.
	mw := []energy.OPPDomain{{CPUs: topology.MaskOf(0, 1), CapacityDMIPSMHz: 1, OPPs: []energy.OPP{
		{FrequencyHz: 1e9, MicroWatts: 100000}, {FrequencyHz: 2e9, MicroWatts: 300000},
	}}}
	m5, err := energy.FromOPP(mw)
	if err != nil {
		t.Fatal(err)
	}
	if s := m5.Domains[0].States; m5.Domains[0].Name != "cpu0" || s[0].Power != 100000 || s[1].Power != 300000 || s[1].Performance != 1024 || !m5.Domains[0].Microwatts {
		t.Errorf("opp-microwatt: %+v", m5.Domains[0])
	}
}

func TestFromOPPErrors(t *testing.T) {
	base := func() []energy.OPPDomain { return oppDomains(t, parseDT(t, "rk3399")) }
	for _, tc := range []struct {
		name, want string
		edit       func([]energy.OPPDomain)
	}{
		{"no domains", "no domains", nil},
		{"empty table", "empty OPP table", func(d []energy.OPPDomain) { d[1].OPPs = nil }},
		{"no coefficient", "no dynamic-power-coefficient", func(d []energy.OPPDomain) { d[0].DynamicPowerCoefficient = 0 }},
		{"no frequency", "set one of FrequencyHz", func(d []energy.OPPDomain) { d[0].OPPs[2].FrequencyHz = 0 }},
		{"disagreeing frequencies", "set one of FrequencyHz", func(d []energy.OPPDomain) { d[0].OPPs[2].FrequencyKHz = 1 }},
		{"duplicate", "same frequency in kHz", func(d []energy.OPPDomain) { d[0].OPPs[2].FrequencyHz = d[0].OPPs[1].FrequencyHz + 999 }},
		{"no voltage", "below 1 mV", func(d []energy.OPPDomain) { d[0].OPPs[0].MicroVolts = 999 }},
		{"power too high", "power 291184312", func(d []energy.OPPDomain) { d[1].DynamicPowerCoefficient = 1 << 20 }},
		{"mixed capacities", "Capacity set in 1 of 2", func(d []energy.OPPDomain) { d[0].Capacity = 100 }},
		{"microwatt missing", "no opp-microwatt", func(d []energy.OPPDomain) { d[0].OPPs[0].MicroWatts = 5 }},
		{"no cpus", "no CPUs", func(d []energy.OPPDomain) { d[0].CPUs = topology.Cpumask{} }},
		{"shared cpus", "also in an earlier domain", func(d []energy.OPPDomain) { d[1].CPUs.Set(0) }},
	} {
		var d []energy.OPPDomain
		if tc.edit != nil {
			d = base()
			tc.edit(d)
		}
		_, err := energy.FromOPP(d)
		if !errors.Is(err, energy.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}
