package dsq

import (
	"errors"
	"strings"
	"testing"

	"github.com/scxkit/scxkit/topology"
)

// TestConstantsMatchBPF checks the exported limits against the values
// the compiler gives the header's macros (types.bpf.c's enums), so that a
// change on either side that is not made on the other fails here.
func TestConstantsMatchBPF(t *testing.T) {
	var st dsqtypesSkDsqLayout
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		{"MaxDSQs", MaxDSQs, uint64(dsqtypesSkDsqConstsSK_MAX)},
		{"MaxCPUs", MaxCPUs, uint64(dsqtypesSkDsqConstsSK_MAX_CPUS)},
		{"MaxSteal", MaxSteal, uint64(dsqtypesSkDsqConstsSK_MAX_STEAL)},
		{"MaxClasses", MaxClasses, uint64(dsqtypesSkDsqConstsSK_MAX_CLASSES)},
		{"ids", uint64(len(st.Ids)), uint64(dsqtypesSkDsqConstsSK_MAX)},
		{"steal rows", uint64(len(st.Steal[0])), uint64(dsqtypesSkDsqConstsSK_MAX_STEAL)},
		{"cpu_dsq", uint64(len(st.CpuDsq)), uint64(dsqtypesSkDsqConstsSK_MAX_CPUS)},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, but dsq.h says %d", c.name, c.got, c.want)
		}
	}
}

// TestNewTooBig checks that layouts beyond the BPF side's limits give
// errors wrapping ErrTooBig, not ErrInvalid.
func TestNewTooBig(t *testing.T) {
	var online topology.Cpumask
	var domains []topology.Cpumask
	for cpu := range MaxDSQs + 1 {
		online.Set(cpu)
		domains = append(domains, topology.MaskOf(cpu))
	}
	online.Set(MaxCPUs)
	topo := &topology.Topology{Online: online}
	for _, tt := range []struct {
		name string
		opts Options
		want string
	}{
		{"too many DSQs", Options{Kind: Custom, Domains: domains}, "65 DSQs"},
		{"CPU beyond the layout", Options{Kind: Custom, Domains: []topology.Cpumask{topology.MaskOf(0, MaxCPUs)}}, "SK_DSQ_MAX_CPUS"},
	} {
		_, err := New(topo, &tt.opts)
		if !errors.Is(err, ErrTooBig) || errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "dsq: ") {
			t.Errorf("%s: %v; want a dsq: error wrapping ErrTooBig containing %q", tt.name, err, tt.want)
		}
	}
}
