package preempt

import "testing"

// TestConstantsMatchBPF checks the exported limits against the values
// the compiler gives the header's macros (types.bpf.c's enum), so that a
// change on either side that is not made on the other fails here.
func TestConstantsMatchBPF(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		{"MaxClasses", MaxClasses, uint64(preempttypesSkPreemptConstsSK_MAX_CLASSES)},
		{"MaxMembers", MaxMembers, uint64(preempttypesSkPreemptConstsSK_MAX_MEMBERS)},
		{"MaxCommLen", MaxCommLen, uint64(preempttypesSkPreemptConstsSK_COMM_LEN) - 1},
		{"config classes", uint64(len(preempttypesSkPreemptConfig{}.Classes)), uint64(preempttypesSkPreemptConstsSK_MAX_CLASSES)},
		{"comm key length", uint64(len(preempttypesSkPreemptCommKey{}.Comm)), uint64(preempttypesSkPreemptConstsSK_COMM_LEN)},
		{"wait buckets", uint64(len(preempttypesSkPreemptCounters{}.WaitBuckets)), uint64(preempttypesSkPreemptConstsSK_NR_BUCKETS)},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, but preempt.h says %d", c.name, c.got, c.want)
		}
	}
	for w := WakeupNever; w <= WakeupAfter; w++ {
		if int(w) >= len(bpfWakeup) {
			t.Errorf("Wakeup %v has no BPF value", w)
		}
	}
	for k := TickYield; k <= TickRunOn; k++ {
		if int(k) >= len(bpfTick) {
			t.Errorf("Tick %v has no BPF value", k)
		}
	}
}
