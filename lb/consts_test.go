package lb

import (
	"testing"
	"unsafe"
)

// TestConstantsMatchBPF checks the exported constants against the values
// the compiler gives the macros of lb.h, dutycycle.h and dutycycle.bpf.h
// (types.bpf.c's enum), so that a change on either side that is not made
// on the other fails here.
func TestConstantsMatchBPF(t *testing.T) {
	var dom lbtypesSkLbDomain
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		{"MaxTrackedDomains", MaxTrackedDomains, uint64(lbtypesSkLbConstsSK_MAX_DOMAINS)},
		{"allowed-domain mask bits", uint64(8 * unsafe.Sizeof(lbtypesSkLbTask{}.Allowed)), uint64(lbtypesSkLbConstsSK_MAX_DOMAINS)},
		{"DutyCycleShift", DutyCycleShift, uint64(lbtypesSkLbConstsSK_DC_SHIFT)},
		{"DutyCycleOne", DutyCycleOne, uint64(lbtypesSkLbConstsSK_DC_ONE)},
		{"DutyCycleAccShift", DutyCycleAccShift, uint64(lbtypesSkLbConstsSK_DC_ACC_SHIFT)},
		{"DutyCycleMaxLevel", DutyCycleMaxLevel, uint64(lbtypesSkLbConstsSK_DC_MAX_LEVEL)},
		{"DutyCycleMaxHalfLife", DutyCycleMaxHalfLife, uint64(lbtypesSkLbConstsSK_DC_MAX_HALF_LIFE_NS)},
		{"DutyCycleBuckets", DutyCycleBuckets, uint64(lbtypesSkLbConstsSK_DC_NR_BUCKETS)},
		{"domain buckets", uint64(len(dom.Dc.Buckets)), uint64(lbtypesSkLbConstsSK_DC_NR_BUCKETS)},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, but the headers say %d", c.name, c.got, c.want)
		}
	}
}
