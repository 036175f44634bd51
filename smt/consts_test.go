package smt

import (
	"testing"

	"github.com/scxkit/scxkit/dsq"
)

// TestConstantsMatchBPF checks the exported limits against the values
// the compiler gives the header's macros (types.bpf.c's enum), so that a
// change on either side that is not made on the other fails here.
func TestConstantsMatchBPF(t *testing.T) {
	var st smttypesSkSmtLayout
	var g smttypesSkSmtGroups
	for _, c := range []struct {
		name      string
		got, want int64
	}{
		{"MaxCPUs", MaxCPUs, int64(smttypesSkSmtConstsSK_MAX_CPUS)},
		{"MaxThreads", MaxThreads, int64(smttypesSkSmtConstsSK_MAX_SIBLINGS) + 1},
		{"MaxIsolated", MaxIsolated, int64(smttypesSkSmtConstsSK_MAX_CLASSES) - 1},
		{"cpus", int64(len(st.Cpus)), int64(smttypesSkSmtConstsSK_MAX_CPUS)},
		{"siblings", int64(len(st.Cpus[0].Siblings)), int64(smttypesSkSmtConstsSK_MAX_SIBLINGS)},
		{"class cgroups", int64(len(st.ClassCgroup)), int64(smttypesSkSmtConstsSK_MAX_CLASSES)},
		{"MaxDSQClasses", MaxDSQClasses, int64(smttypesSkSmtConstsSK_MAX_DSQ_CLASSES)},
		{"group classes", int64(len(g.OfClass)), int64(smttypesSkSmtConstsSK_MAX_DSQ_CLASSES)},
		{"dsq.MaxClasses", dsq.MaxClasses, int64(smttypesSkSmtConstsSK_MAX_DSQ_CLASSES)},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, but smt.h says %d", c.name, c.got, c.want)
		}
	}
}
