package latency

import "testing"

// TestConstantsMatchBPF checks the constants Go shares with latency.bpf.h
// against the values the compiler gives the header's macros (types.bpf.c's
// enum), so that a change on either side that is not made on the other
// fails here.
func TestConstantsMatchBPF(t *testing.T) {
	var st latencybpfSkLatStats
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		{"MaxBounds", MaxBounds, uint64(lattypesSkLatConstsSK_MAX_BOUNDS)},
		{"buckets", uint64(len(st.Buckets)), uint64(lattypesSkLatConstsSK_NR_BUCKETS)},
		{"buckets of MaxBounds bounds", MaxBounds + 1, uint64(lattypesSkLatConstsSK_NR_BUCKETS)},
		{"Wakeup", uint64(Wakeup), uint64(lattypesSkLatConstsSK_KIND_WAKEUP)},
		{"Preemption", uint64(Preemption), uint64(lattypesSkLatConstsSK_KIND_PREEMPT)},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, but latency.h says %d", c.name, c.got, c.want)
		}
	}
}
