//go:build linux

package workload

import "sync/atomic"

// spinUnitIters is the number of xorshift steps in one unit of spin work.
// A step is a chain of six dependent integer operations, so a unit takes
// about 90µs on a current x86 core, short enough for a spinner to notice a
// stop within a few milliseconds even under qemu TCG.
const spinUnitIters = 1 << 15

// spin does t.want units of work, or fewer if stop is set, counting them in
// t.done.
func (t *thread) spin(stop *atomic.Bool) {
	// Any non-zero seed works; a different one per thread.
	x := 0x9e3779b97f4a7c15 * uint64(t.id+1)
	for n := 0; n < t.want && !stop.Load(); {
		x = spinUnit(x)
		n++
		t.done.Store(int64(n))
	}
	t.sink = x
}

// spinUnit does one unit of work: spinUnitIters steps of Marsaglia's
// xorshift64 generator from x, whose result depends on every step.
//
//go:noinline
func spinUnit(x uint64) uint64 {
	for range spinUnitIters {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
	}
	return x
}
