package topology

import (
	"errors"
	"strings"
	"testing"
)

// TestConstantsMatchBPF checks the exported limits against the values
// the compiler gives the header's macros (topo.bpf.c's enum), so that a
// change on either side that is not made on the other fails here.
func TestConstantsMatchBPF(t *testing.T) {
	var st topoSkTopo
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		{"MaxBPFCPUs", MaxBPFCPUs, uint64(topoSkTopoConstsSK_MAX_CPUS)},
		{"MaxBPFLLCs", MaxBPFLLCs, uint64(topoSkTopoConstsSK_MAX_LLCS)},
		{"MaxBPFNodes", MaxBPFNodes, uint64(topoSkTopoConstsSK_MAX_NODES)},
		{"cpus", uint64(len(st.Cpus)), uint64(topoSkTopoConstsSK_MAX_CPUS)},
		{"core masks", uint64(len(st.CoreCpus)), uint64(topoSkTopoConstsSK_MAX_CPUS)},
		{"LLC masks", uint64(len(st.LlcCpus)), uint64(topoSkTopoConstsSK_MAX_LLCS)},
		{"node masks", uint64(len(st.NodeCpus)), uint64(topoSkTopoConstsSK_MAX_NODES)},
		{"mask words", uint64(len(st.CoreCpus[0].Bits)), uint64(topoSkTopoConstsSK_MASK_WORDS)},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, but topology.h says %d", c.name, c.got, c.want)
		}
	}
}

// TestEncodeBPFTooBig checks that a machine beyond the layout's limits
// gives an error wrapping ErrTooBig that names the limit to raise.
func TestEncodeBPFTooBig(t *testing.T) {
	topo := &Topology{Online: MaskOf(0, MaxBPFCPUs)}
	err := topo.encodeBPF(new(topoSkTopo))
	if !errors.Is(err, ErrTooBig) || !strings.Contains(err.Error(), "SK_TOPO_MAX_CPUS") {
		t.Errorf("CPU %d: %v, want an error wrapping ErrTooBig naming SK_TOPO_MAX_CPUS", MaxBPFCPUs, err)
	}
	topo = &Topology{Online: MaskOf(0), LLCs: make([]*LLC, MaxBPFLLCs+1)}
	if err := topo.encodeBPF(new(topoSkTopo)); !errors.Is(err, ErrTooBig) {
		t.Errorf("%d LLCs: %v, want an error wrapping ErrTooBig", MaxBPFLLCs+1, err)
	}
}

// TestParseErrorsWrapErrInvalid checks that the parsers' errors match
// ErrInvalid.
func TestParseErrorsWrapErrInvalid(t *testing.T) {
	if _, err := ParseCPUList("0-x"); !errors.Is(err, ErrInvalid) {
		t.Errorf("ParseCPUList: %v, want ErrInvalid", err)
	}
	if _, err := ParseMask("xyz"); !errors.Is(err, ErrInvalid) {
		t.Errorf("ParseMask: %v, want ErrInvalid", err)
	}
	var ct CoreType
	if err := ct.UnmarshalText([]byte("huge")); !errors.Is(err, ErrInvalid) {
		t.Errorf("CoreType.UnmarshalText: %v, want ErrInvalid", err)
	}
	var m Cpumask
	if err := m.UnmarshalText([]byte("1-0")); !errors.Is(err, ErrInvalid) {
		t.Errorf("Cpumask.UnmarshalText: %v, want ErrInvalid", err)
	}
}
