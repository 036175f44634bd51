package latency

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Histogram counts durations in buckets. Bucket i holds the durations d
// with Bounds[i-1] < d <= Bounds[i] (Bounds[-1] being 0), and the last
// bucket, Counts[len(Bounds)], those above the last bound: the cumulative
// counts up to bucket i are what Prometheus calls the bucket le=Bounds[i].
type Histogram struct {
	// Bounds are the buckets' upper bounds, strictly increasing. A
	// Profiler's histograms share one slice: do not modify it.
	Bounds []time.Duration
	// Counts has len(Bounds)+1 entries.
	Counts []uint64
	// Sum is the sum of the counted durations.
	Sum time.Duration
}

// NewHistogram returns an empty histogram with the given bounds, which
// must be strictly increasing and positive (at most MaxBounds of them).
func NewHistogram(bounds []time.Duration) (*Histogram, error) {
	if err := checkBounds(bounds); err != nil {
		return nil, err
	}
	return &Histogram{Bounds: bounds, Counts: make([]uint64, len(bounds)+1)}, nil
}

// Add counts one duration d.
func (h *Histogram) Add(d time.Duration) {
	h.Counts[h.bucket(d)]++
	h.Sum += d
}

// bucket is the Go twin of sk_lat_bucket in scxkit/latency.bpf.h.
func (h *Histogram) bucket(d time.Duration) int {
	lo, hi := 0, len(h.Bounds)
	for lo < hi {
		mid := (lo + hi) / 2
		if d <= h.Bounds[mid] {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// Count returns the number of durations counted.
func (h *Histogram) Count() uint64 {
	var n uint64
	for _, c := range h.Counts {
		n += c
	}
	return n
}

// Mean returns Sum / Count, 0 for an empty histogram.
func (h *Histogram) Mean() time.Duration {
	n := h.Count()
	if n == 0 {
		return 0
	}
	return h.Sum / time.Duration(n)
}

// Percentile estimates the p-th percentile (0 <= p <= 100) of the counted
// durations: it finds the bucket that holds the rank p/100 × Count and
// interpolates linearly between its bounds. A percentile that falls in the
// last bucket, which has no upper bound, is reported as the last bound: the
// true value is at least that. An empty histogram gives 0. p outside [0,
// 100] is clamped.
//
// When Sum is not 0, the estimate is also held to what Sum allows: the
// durations at and above the percentile, and those in higher buckets, which
// exceed their buckets' lower bounds, cannot add up to more than Sum. With
// bounds far above the durations (one bucket up to an hour for waits of a
// millisecond) the interpolation alone would put the median at half an
// hour; the bound keeps it within a small multiple of the mean. A Sum of 0
// is taken as unknown.
func (h *Histogram) Percentile(p float64) time.Duration {
	n := h.Count()
	if n == 0 {
		return 0
	}
	p = min(max(p, 0), 100)
	rank := p / 100 * float64(n)
	var below uint64
	for i, c := range h.Counts {
		if c == 0 || float64(below+c) < rank {
			below += c
			continue
		}
		if i == len(h.Bounds) {
			return h.Bounds[len(h.Bounds)-1]
		}
		lo := h.lower(i)
		frac := (rank - float64(below)) / float64(c)
		est := lo + time.Duration(frac*float64(h.Bounds[i]-lo))
		if h.Sum > 0 {
			est = min(est, max(lo, h.sumBound(i, below, rank)))
		}
		return est
	}
	return h.Bounds[len(h.Bounds)-1]
}

// lower returns the lower bound of bucket i: 0 for the first.
func (h *Histogram) lower(i int) time.Duration {
	if i == 0 {
		return 0
	}
	return h.Bounds[i-1]
}

// sumBound returns the largest value the duration of the given rank can
// have, given Sum, when it is in bucket i above the below durations of the
// lower buckets. With k = ceil(rank) (at least 1), the durations of ranks
// k and up in bucket i are at least x, those of ranks below k in bucket i
// and all those of other buckets at least their buckets' lower bounds, and
// all of them add up to Sum:
//
//	x ≤ (Sum − Σ_{j≠i} Counts[j]·lower(j) − (k−1−below)·lower(i)) / (below + Counts[i] − k + 1)
func (h *Histogram) sumBound(i int, below uint64, rank float64) time.Duration {
	k := max(math.Ceil(rank), 1)
	rest := float64(h.Sum)
	for j, c := range h.Counts {
		if j != i {
			rest -= float64(c) * float64(h.lower(j))
		}
	}
	rest -= (k - 1 - float64(below)) * float64(h.lower(i))
	m := float64(below+h.Counts[i]) - k + 1
	if m < 1 || rest <= 0 {
		return 0
	}
	return time.Duration(rest / m)
}

// Sub sets h to the difference a − b of two histograms with the same bounds
// (b taken earlier than a, from the same source), reusing h's Counts. It
// panics if the bounds differ in number.
func (h *Histogram) Sub(a, b *Histogram) {
	if len(a.Counts) != len(b.Counts) {
		panic(fmt.Sprintf("latency: Histogram.Sub of histograms with %d and %d buckets", len(a.Counts), len(b.Counts)))
	}
	h.Bounds = a.Bounds
	h.Counts = resize(h.Counts, len(a.Counts))
	for i := range a.Counts {
		h.Counts[i] = a.Counts[i] - min(b.Counts[i], a.Counts[i])
	}
	h.Sum = max(a.Sum-b.Sum, 0)
}

// String draws the histogram as runqlat does: one line per bucket from the
// first to the last non-empty one, with its range, count and a bar.
func (h *Histogram) String() string {
	var b strings.Builder
	h.write(&b, 40)
	return b.String()
}

// write draws h with bars of up to width characters.
func (h *Histogram) write(b *strings.Builder, width int) {
	first, last := -1, -1
	var peak uint64
	for i, c := range h.Counts {
		if c == 0 {
			continue
		}
		if first < 0 {
			first = i
		}
		last = i
		peak = max(peak, c)
	}
	if first < 0 {
		b.WriteString("(no samples)\n")
		return
	}
	for i := first; i <= last; i++ {
		var lo, hi string
		if i > 0 {
			lo = h.Bounds[i-1].String()
		} else {
			lo = "0"
		}
		if i < len(h.Bounds) {
			hi = h.Bounds[i].String()
		} else {
			hi = "inf"
		}
		c := h.Counts[i]
		bar := int(c * uint64(width) / peak)
		if c > 0 && bar == 0 {
			bar = 1
		}
		fmt.Fprintf(b, "%12s .. %-12s %10d |%-*s|\n", lo, hi, c, width, strings.Repeat("*", bar))
	}
}

// resize returns s with length n, its first n entries zero, reusing its
// array when it is large enough.
func resize(s []uint64, n int) []uint64 {
	if cap(s) < n {
		return make([]uint64, n)
	}
	s = s[:n]
	clear(s)
	return s
}
