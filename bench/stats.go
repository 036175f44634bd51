package bench

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"
)

// DefaultLevel is the confidence level of a Report whose Level is zero.
const DefaultLevel = 0.95

// Resamples is the number of bootstrap resamples behind a ratio's
// interval.
const Resamples = 10000

// The seed of the bootstrap's PCG generator: fixed, so that the same
// values always give the same interval.
const (
	seedHi = 0x5c8b_0016_be4c_0001
	seedLo = 0x2026_1205_0000_0095
)

// Summary describes one sample of a metric: the runs of one benchmark
// under one scheduler.
type Summary struct {
	// N counts the values summarized (non-finite values are left out).
	N int `json:"n"`
	// Median is the middle value, or the mean of the two middle ones.
	Median float64 `json:"median"`
	// Lo and Hi bound the distribution-free confidence interval of the
	// median: two order statistics of the sorted values (see the
	// package doc).
	Lo float64 `json:"lo"`
	Hi float64 `json:"hi"`
	// Level is the confidence level asked for, as 0.95.
	Level float64 `json:"level"`
	// Coverage is the interval's actual confidence: at least Level,
	// unless TooFew.
	Coverage float64 `json:"coverage"`
	// TooFew says N is too small for an interval of Level: Lo and Hi
	// are then Min and Max, whose Coverage (1 - 2/2^N) is below Level.
	// With 0.95 it takes 6 values; with 0.99, 8.
	TooFew bool `json:"too_few"`
	// Mean, Min and Max of the values.
	Mean float64 `json:"mean"`
	Min  float64 `json:"min"`
	Max  float64 `json:"max"`
}

// RatioSummary compares one sample with a base one: the ratio of their
// medians, x/base, with a confidence interval.
type RatioSummary struct {
	// Ratio is median(x) / median(base).
	Ratio float64 `json:"ratio"`
	// Lo and Hi bound its percentile-bootstrap confidence interval.
	Lo float64 `json:"lo"`
	Hi float64 `json:"hi"`
	// Level is the confidence level asked for.
	Level float64 `json:"level"`
	// Resamples is the number of bootstrap resamples (the constant
	// Resamples), or 0 when no interval was computed.
	Resamples int `json:"resamples"`
	// TooFew says x or base has too few values for a median interval of
	// Level (Summary.TooFew): the interval is shown, but a report makes
	// no claim of better or worse from it.
	TooFew bool `json:"too_few"`
	// Valid says Ratio, Lo and Hi are defined: both samples have values
	// and base's median, and that of enough resamples of it, is above
	// zero. When false they are zero.
	Valid bool `json:"valid"`
}

// Excludes reports whether the interval lies wholly on one side of 1,
// and which: -1 when Hi < 1, +1 when Lo > 1, 0 when it contains 1, the
// ratio is not Valid, or there are TooFew values to tell.
func (r RatioSummary) Excludes() int {
	switch {
	case !r.Valid || r.TooFew:
		return 0
	case r.Hi < 1:
		return -1
	case r.Lo > 1:
		return +1
	}
	return 0
}

// checkLevel panics on a level outside (0, 1): that is a programming
// error, not a property of the data.
func checkLevel(level float64) {
	if !(level > 0 && level < 1) {
		panic(fmt.Sprintf("bench: confidence level %v outside (0, 1)", level))
	}
}

// finite returns the finite values of values, sorted, in a new slice.
func finite(values []float64) []float64 {
	s := make([]float64, 0, len(values))
	for _, v := range values {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			s = append(s, v)
		}
	}
	slices.Sort(s)
	return s
}

// median returns the median of sorted, which is not empty.
func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	a, b := sorted[n/2-1], sorted[n/2]
	if m := (a + b) / 2; !math.IsInf(m, 0) {
		return m
	}
	return a/2 + b/2 // a+b overflowed
}

// medianRank returns k, the 1-based rank of the lower bound of the
// distribution-free interval [x(k), x(n-k+1)] for the median of n
// values, and its coverage 1 - 2 P(B <= k-1) with B ~ Binomial(n, 1/2):
// the largest k whose coverage is at least level. ok is false when even
// k = 1, the whole range, falls short.
func medianRank(n int, level float64) (k int, coverage float64, ok bool) {
	b := distuv.Binomial{N: float64(n), P: 0.5}
	k, coverage = 1, 1-2*b.CDF(0)
	if coverage < level {
		return 1, coverage, false
	}
	for j := 2; j <= (n+1)/2; j++ {
		c := 1 - 2*b.CDF(float64(j-1))
		if c < level {
			break
		}
		k, coverage = j, c
	}
	return k, coverage, true
}

// Summarize summarizes values (in any order; NaN and infinities are left
// out) with a confidence interval for the median at level, which must be
// in (0, 1). The interval needs no assumption about the distribution:
// with the values sorted, x(1) <= ... <= x(n), it is [x(k), x(n-k+1)]
// for the largest k whose coverage, 1 - 2 P(B <= k-1) for B binomial
// (n, 1/2), is at least level. With too few values for that, it is the
// whole range and TooFew is set. An empty sample gives N = 0, TooFew and
// zeros.
func Summarize(values []float64, level float64) Summary {
	checkLevel(level)
	s := finite(values)
	sum := Summary{N: len(s), Level: level}
	if len(s) == 0 {
		sum.TooFew = true
		return sum
	}
	k, coverage, ok := medianRank(len(s), level)
	sum.Median = median(s)
	sum.Lo, sum.Hi = s[k-1], s[len(s)-k]
	sum.Coverage = coverage
	sum.TooFew = !ok
	sum.Mean = stat.Mean(s, nil)
	sum.Min, sum.Max = s[0], s[len(s)-1]
	return sum
}

// Ratio compares x with base: median(x)/median(base), with a percentile
// bootstrap interval at level, which must be in (0, 1). Each of the
// Resamples resamples draws len(x) values from x and len(base) from base
// with replacement, independently, and takes the ratio of their medians;
// Lo and Hi are the (1-level)/2 and (1+level)/2 quantiles of those ratios.
// The generator is a PCG with a fixed seed, so the result depends on the
// values alone. NaN and infinities are left out, as in Summarize.
func Ratio(x, base []float64, level float64) RatioSummary {
	checkLevel(level)
	xs, bs := finite(x), finite(base)
	r := RatioSummary{Level: level}
	if len(xs) == 0 || len(bs) == 0 {
		r.TooFew = true
		return r
	}
	_, _, okX := medianRank(len(xs), level)
	_, _, okB := medianRank(len(bs), level)
	r.TooFew = !okX || !okB
	mb := median(bs)
	if !(mb > 0) {
		return r
	}
	ratio := median(xs) / mb

	rng := rand.New(rand.NewPCG(seedHi, seedLo))
	xr := make([]float64, len(xs))
	br := make([]float64, len(bs))
	ratios := make([]float64, Resamples)
	for i := range ratios {
		for j := range xr {
			xr[j] = xs[rng.IntN(len(xs))]
		}
		for j := range br {
			br[j] = bs[rng.IntN(len(bs))]
		}
		slices.Sort(xr)
		slices.Sort(br)
		num, den := median(xr), median(br)
		if den > 0 {
			ratios[i] = num / den
		} else {
			ratios[i] = math.Inf(1)
		}
	}
	slices.Sort(ratios)
	alpha := 1 - level
	lo := stat.Quantile(alpha/2, stat.Empirical, ratios, nil)
	hi := stat.Quantile(1-alpha/2, stat.Empirical, ratios, nil)
	if math.IsInf(hi, 0) || math.IsInf(ratio, 0) {
		return r
	}
	r.Ratio, r.Lo, r.Hi = ratio, lo, hi
	r.Resamples = Resamples
	r.Valid = true
	return r
}
