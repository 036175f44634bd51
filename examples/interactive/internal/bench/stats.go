package main

import (
	"math"
	"slices"
)

// percentiles sorts v in place and returns its ps-th percentiles
// (0 < p <= 100) by the nearest-rank method: the smallest value with at
// least p% of the values at or below it, so the 100th is the maximum and
// every result is a measured value. An empty v gives zeros.
func percentiles(v []int64, ps ...float64) []int64 {
	slices.Sort(v)
	q := make([]int64, len(ps))
	if len(v) == 0 {
		return q
	}
	for i, p := range ps {
		rank := int(math.Ceil(p / 100 * float64(len(v))))
		q[i] = v[min(max(rank, 1), len(v))-1]
	}
	return q
}

// median returns the median of v (the mean of the two middle values for
// an even count), 0 for an empty v. v is not modified.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// ratio returns a/b, and false when b is not positive (no meaningful
// ratio).
func ratio(a, b float64) (float64, bool) {
	if !(b > 0) {
		return 0, false
	}
	return a / b, true
}
