package lb

import (
	"fmt"
	"math"
	"math/bits"
	"slices"
	"unsafe"
)

// AdjustWeights sets dst[i] to the weight task i can make use of: its weight
// clamped so that, whenever it is runnable, its share of nrCPUs CPUs is at
// most one CPU, since a task runs on one CPU at a time. It returns dst,
// resized to len(weights) (reallocated only if its capacity is too small).
// dst must not overlap weights or dutyCycles, as it is used as scratch space.
//
// weights[i] is task i's scheduling weight (1 to 10000, 100 for nice 0) and
// dutyCycles[i] the fraction of time it is runnable, in [0, 1]. The task's
// load is weight × duty cycle; with L the total load, a runnable task with
// weight w receives w × nrCPUs / L CPUs, so a task with w > L / nrCPUs is
// infeasible: its weight asks for more than one CPU. Clamping such tasks
// lowers L, which may make more tasks infeasible. The result is the fixed
// point: λ = (load of the feasible tasks) / (nrCPUs − duty cycles of the
// infeasible tasks), every task heavier than λ is clamped to λ (its load
// becomes exactly one CPU's share while it runs: λ × nrCPUs equals the
// adjusted total load), and no task of weight at most λ changes.
//
// When the duty cycles add up to at most nrCPUs, the tasks never have to
// share a CPU on average and every weight is feasible: dst equals weights.
// That includes every set of at most nrCPUs tasks.
//
// The work is O(n) in the common cases (no infeasible task, or a few) and
// O(n log n) at worst, and allocates nothing when dst has the capacity.
func AdjustWeights(dst, weights, dutyCycles []float64, nrCPUs int) ([]float64, error) {
	if nrCPUs <= 0 {
		return dst, fmt.Errorf("lb: nrCPUs is %d: %w: pass the number of CPUs the tasks share, at least 1", nrCPUs, ErrInvalid)
	}
	if len(weights) != len(dutyCycles) {
		return dst, fmt.Errorf("lb: %d weights but %d duty cycles: %w: pass one duty cycle per task", len(weights), len(dutyCycles), ErrInvalid)
	}
	dutyCycles = dutyCycles[:len(weights)]
	for i, w := range weights {
		if !validWeight(w) {
			return dst, fmt.Errorf("lb: weights[%d] is %v: %w: %s", i, w, ErrInvalid, weightRange)
		}
		if d := dutyCycles[i]; !validDutyCycle(d) {
			return dst, fmt.Errorf("lb: dutyCycles[%d] is %v: %w: %s", i, d, ErrInvalid, dutyCycleRange)
		}
	}
	if cap(dst) > 0 && (overlaps(dst[:cap(dst)], weights) || overlaps(dst[:cap(dst)], dutyCycles)) {
		return dst, fmt.Errorf("lb: dst overlaps weights or dutyCycles: %w: pass a separate slice, e.g. nil", ErrInvalid)
	}
	return adjustWeights(dst, weights, dutyCycles, nrCPUs), nil
}

// adjustWeights is AdjustWeights without the checks.
func adjustWeights(dst, weights, dutyCycles []float64, nrCPUs int) []float64 {
	dst = slices.Grow(dst[:0], len(weights))[:len(weights)]
	lambda := infeasibleLambda(dst, weights, dutyCycles, float64(nrCPUs))
	for i, w := range weights {
		dst[i] = min(w, lambda)
	}
	return dst
}

const (
	weightRange    = "a weight must be finite and non-negative (1 to 10000, 100 for nice 0)"
	dutyCycleRange = "a duty cycle is a fraction of time, from 0 to 1"
)

func validWeight(w float64) bool    { return w >= 0 && w <= math.MaxFloat64 }
func validDutyCycle(d float64) bool { return d >= 0 && d <= 1 }

// overlaps reports whether a and b share memory.
func overlaps(a, b []float64) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	a0, a1 := uintptr(unsafe.Pointer(&a[0])), uintptr(unsafe.Pointer(&a[len(a)-1]))
	b0, b1 := uintptr(unsafe.Pointer(&b[0])), uintptr(unsafe.Pointer(&b[len(b)-1]))
	return a0 <= b1 && b0 <= a1
}

// infeasibleLambda returns λ, the weight every infeasible task is clamped
// to, or +Inf when no task is infeasible. scratch has len(w) elements; it is
// overwritten.
//
// Marking the heaviest task infeasible when w × n > l, where l and n are the
// load and CPUs left to the unmarked tasks, and repeating on the rest gives
// the fixed point: each mark lowers l/n (the task was above the mean), so
// marked tasks stay above the final λ = l/n and unmarked ones at or below.
// Whether a task is marked depends only on the tasks heavier than it, so
// instead of sorting, a quickselect-style search over the weights finds the
// lightest marked weight in expected O(n).
func infeasibleLambda(scratch, w, dc []float64, cpus float64) float64 {
	var load, demand, wmax float64
	for i, wi := range w {
		load += wi * dc[i]
		demand += dc[i]
		wmax = max(wmax, wi)
	}
	if demand <= cpus || wmax*cpus <= load {
		return math.Inf(1)
	}
	// scratch holds task indices (exact in a float64) of the undecided
	// tasks in [lo, hi). The tasks heavier than all of them are marked;
	// their duty cycles add up to markDemand. The lighter ones are not;
	// their loads add up to restLoad. Loads are summed only over unmarked
	// tasks, never subtracted from the total, so that λ keeps its precision
	// when a few heavy tasks dominate the total load.
	idx := scratch
	for i := range idx {
		idx[i] = float64(i)
	}
	weight := func(k int) float64 { return w[int(idx[k])] }
	var markDemand, restLoad float64
	lo, hi := 0, len(idx)
	budget := 2*bits.Len(uint(len(idx))) + 8
	for lo < hi {
		if budget == 0 {
			return lambdaSorted(idx[lo:hi], w, dc, cpus, markDemand, restLoad)
		}
		budget--
		p := median3(weight(lo), weight(lo+(hi-lo)/2), weight(hi-1))
		// Three-way partition into [lo, gt) heavier than p, [gt, lt) equal
		// to p, [lt, hi) lighter.
		gt, eq, lt := lo, lo, hi
		var gtDemand, eqDemand, eqLoad, ltLoad float64
		for eq < lt {
			i := int(idx[eq])
			switch {
			case w[i] > p:
				gtDemand += dc[i]
				idx[gt], idx[eq] = idx[eq], idx[gt]
				gt++
				eq++
			case w[i] < p:
				ltLoad += w[i] * dc[i]
				lt--
				idx[eq], idx[lt] = idx[lt], idx[eq]
			default:
				eqLoad += w[i] * dc[i]
				eqDemand += dc[i]
				eq++
			}
		}
		// Tasks of weight p are marked if, with every heavier task marked,
		// the first of them exceeds its share. If a heavier task is in fact
		// unmarked, the test fails too, as the ones after it were below
		// the mean.
		if p*(cpus-markDemand-gtDemand) > restLoad+ltLoad+eqLoad {
			markDemand += gtDemand + eqDemand
			lo = lt
		} else {
			restLoad += ltLoad + eqLoad
			hi = gt
		}
	}
	return restLoad / (cpus - markDemand)
}

// lambdaSorted finishes infeasibleLambda when its pivots were unlucky, in
// O(n log n): it sorts the undecided tasks rest, heaviest first, and finds
// where marking stops, scanning from the light end so that loads are only
// ever added.
func lambdaSorted(rest, w, dc []float64, cpus, markDemand, restLoad float64) float64 {
	slices.SortFunc(rest, func(a, b float64) int { return cmpFloat(w[int(b)], w[int(a)]) })
	var restDemand float64
	for _, f := range rest {
		restDemand += dc[int(f)]
	}
	// Going up from the lightest, tail is the load of rest[j:] and
	// tailDemand their duty cycles; rest[j] is marked if its weight
	// exceeds its share with rest[:j] marked.
	var tail, tailDemand float64
	for j := len(rest) - 1; j >= 0; j-- {
		i := int(rest[j])
		above := restDemand - tailDemand - dc[i] // duty cycles of rest[:j]
		if w[i]*(cpus-markDemand-above) > restLoad+tail+w[i]*dc[i] {
			return (restLoad + tail) / (cpus - markDemand - above - dc[i])
		}
		tail += w[i] * dc[i]
		tailDemand += dc[i]
	}
	return (restLoad + tail) / (cpus - markDemand)
}

func median3(a, b, c float64) float64 {
	if a > b {
		a, b = b, a
	}
	if b > c {
		b = c
	}
	return max(a, b)
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
