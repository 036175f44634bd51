package energy

import "testing"

// TestConstantsMatchBPF checks the constants Go shares with the BPF side
// against the values the compiler gives the header's macros (types.bpf.c's
// enum), so that a change on either side that is not made on the other
// fails here.
func TestConstantsMatchBPF(t *testing.T) {
	var m entypesSkEnergyModel
	var p entypesSkEnergyPlan
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		// Plan targets are in the unit scx_bpf_cpuperf_set takes.
		{"CapacityScale", CapacityScale, uint64(entypesSkEnergyConstsSK_CPUPERF_ONE)},
		{"model cpus", uint64(len(m.Cpus)), uint64(maxBPFCPUs)},
		{"model states", uint64(len(m.Cpus[0].States)), uint64(maxBPFStates)},
		{"plan perf", uint64(len(p.Perf)), uint64(maxBPFCPUs)},
		{"plan warm bits", uint64(64 * len(p.Warm)), uint64(maxBPFCPUs)},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, but energy.h says %d", c.name, c.got, c.want)
		}
	}
}
