package bench

import (
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"testing"
)

// near reports whether a and b agree within an absolute or relative
// tolerance of tol.
func near(a, b, tol float64) bool {
	return math.Abs(a-b) <= tol*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

func TestSummarizeKnown(t *testing.T) {
	ten := []float64{7, 3, 10, 1, 5, 9, 2, 8, 6, 4} // 1..10, shuffled
	tests := []struct {
		name   string
		values []float64
		level  float64
		want   Summary
	}{
		// n = 10: P(B <= 1) = 11/1024, so k = 2 covers 1 - 22/1024;
		// P(B <= 2) = 56/1024, so k = 3 covers 1 - 112/1024 = 0.890625.
		{"ten 0.95", ten, 0.95, Summary{N: 10, Median: 5.5, Lo: 2, Hi: 9, Level: 0.95,
			Coverage: 1 - 22.0/1024, Mean: 5.5, Min: 1, Max: 10}},
		{"ten 0.9", ten, 0.9, Summary{N: 10, Median: 5.5, Lo: 2, Hi: 9, Level: 0.9,
			Coverage: 1 - 22.0/1024, Mean: 5.5, Min: 1, Max: 10}},
		{"ten 0.8", ten, 0.8, Summary{N: 10, Median: 5.5, Lo: 3, Hi: 8, Level: 0.8,
			Coverage: 1 - 112.0/1024, Mean: 5.5, Min: 1, Max: 10}},
		// n = 5: the range covers 1 - 2/32 = 0.9375.
		{"five 0.95", []float64{4, 1, 3, 2, 10}, 0.95, Summary{N: 5, Median: 3, Lo: 1, Hi: 10, Level: 0.95,
			Coverage: 0.9375, TooFew: true, Mean: 4, Min: 1, Max: 10}},
		{"five 0.9", []float64{4, 1, 3, 2, 10}, 0.9, Summary{N: 5, Median: 3, Lo: 1, Hi: 10, Level: 0.9,
			Coverage: 0.9375, Mean: 4, Min: 1, Max: 10}},
		// n = 6: the range covers 1 - 2/64 = 0.96875.
		{"six 0.95", []float64{1, 2, 3, 4, 5, 6}, 0.95, Summary{N: 6, Median: 3.5, Lo: 1, Hi: 6, Level: 0.95,
			Coverage: 0.96875, Mean: 3.5, Min: 1, Max: 6}},
		{"one", []float64{2.5}, 0.95, Summary{N: 1, Median: 2.5, Lo: 2.5, Hi: 2.5, Level: 0.95,
			Coverage: 0, TooFew: true, Mean: 2.5, Min: 2.5, Max: 2.5}},
		{"empty", nil, 0.95, Summary{Level: 0.95, TooFew: true}},
		{"non-finite left out", []float64{math.NaN(), 2, math.Inf(1), 4, math.Inf(-1)}, 0.5,
			Summary{N: 2, Median: 3, Lo: 2, Hi: 4, Level: 0.5, Coverage: 0.5, Mean: 3, Min: 2, Max: 4}},
	}
	for _, tt := range tests {
		got := Summarize(tt.values, tt.level)
		if got.N != tt.want.N || got.TooFew != tt.want.TooFew || got.Level != tt.want.Level ||
			!near(got.Median, tt.want.Median, 1e-12) || !near(got.Lo, tt.want.Lo, 1e-12) ||
			!near(got.Hi, tt.want.Hi, 1e-12) || !near(got.Coverage, tt.want.Coverage, 1e-12) ||
			!near(got.Mean, tt.want.Mean, 1e-12) || got.Min != tt.want.Min || got.Max != tt.want.Max {
			t.Errorf("%s: Summarize = %+v\nwant %+v", tt.name, got, tt.want)
		}
	}
	if in := []float64{3, 1, 2}; Summarize(in, 0.9).N != 3 || !slices.Equal(in, []float64{3, 1, 2}) {
		t.Errorf("Summarize changed its input: %v", in)
	}
}

// exactCoverage is 1 - 2 P(B <= k-1) for B ~ Binomial(n, 1/2), computed
// with exact integers.
func exactCoverage(n, k int) float64 {
	sum := new(big.Int)
	for i := 0; i < k; i++ {
		sum.Add(sum, new(big.Int).Binomial(int64(n), int64(i)))
	}
	p := new(big.Rat).SetFrac(sum, new(big.Int).Lsh(big.NewInt(1), uint(n)))
	f, _ := p.Float64()
	return 1 - 2*f
}

func TestMedianRankExact(t *testing.T) {
	for _, level := range []float64{0.5, 0.8, 0.9, 0.95, 0.99} {
		for n := 1; n <= 80; n++ {
			// The largest k whose exact coverage reaches level.
			want, ok := 0, false
			for k := 1; k <= (n+1)/2; k++ {
				if exactCoverage(n, k) >= level {
					want, ok = k, true
				}
			}
			k, coverage, gotOK := medianRank(n, level)
			if gotOK != ok || (ok && k != want) {
				t.Errorf("medianRank(%d, %v) = k %d ok %v, want k %d ok %v", n, level, k, gotOK, want, ok)
				continue
			}
			if !near(coverage, exactCoverage(n, k), 1e-9) {
				t.Errorf("medianRank(%d, %v): coverage %v, want %v", n, level, coverage, exactCoverage(n, k))
			}
		}
	}
}

func TestSummarizeProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	levels := []float64{0.5, 0.8, 0.9, 0.95, 0.99}
	for trial := 0; trial < 200; trial++ {
		n := 1 + rng.IntN(40)
		values := make([]float64, n)
		for i := range values {
			values[i] = rng.ExpFloat64() * 100 // skewed, like latencies
		}
		var prev Summary
		for i, level := range levels {
			s := Summarize(values, level)
			if !(s.Lo <= s.Median && s.Median <= s.Hi) {
				t.Fatalf("n %d level %v: median %v outside [%v, %v]", n, level, s.Median, s.Lo, s.Hi)
			}
			if !(s.Min <= s.Lo && s.Hi <= s.Max && s.Min <= s.Mean && s.Mean <= s.Max) {
				t.Fatalf("n %d level %v: %+v out of the range", n, level, s)
			}
			if s.TooFew != (s.Coverage < level) {
				t.Fatalf("n %d level %v: TooFew %v with coverage %v", n, level, s.TooFew, s.Coverage)
			}
			if s.TooFew && (s.Lo != s.Min || s.Hi != s.Max) {
				t.Fatalf("n %d level %v: TooFew but interval [%v, %v] is not the range", n, level, s.Lo, s.Hi)
			}
			// A higher level never narrows the interval.
			if i > 0 && (s.Lo > prev.Lo || s.Hi < prev.Hi || s.Coverage < prev.Coverage) {
				t.Fatalf("n %d: level %v gave [%v, %v] cov %v, narrower than level %v's [%v, %v] cov %v",
					n, level, s.Lo, s.Hi, s.Coverage, levels[i-1], prev.Lo, prev.Hi, prev.Coverage)
			}
			prev = s
		}
	}
}

func TestSummarizeBadLevel(t *testing.T) {
	for _, level := range []float64{0, 1, -0.5, 95, math.NaN()} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Summarize at level %v did not panic", level)
				}
			}()
			Summarize([]float64{1}, level)
		}()
	}
}

func TestRatioKnown(t *testing.T) {
	// base is constant 1; a resample of x = {1, 3} has median 1, 2 or
	// 3 with probabilities 1/4, 1/2, 1/4. The 5% and 95% quantiles of
	// the ratios are 1 and 3; the 30% and 70% ones are both 2.
	r := Ratio([]float64{1, 3}, []float64{1}, 0.9)
	want := RatioSummary{Ratio: 2, Lo: 1, Hi: 3, Level: 0.9, Resamples: Resamples, TooFew: true, Valid: true}
	if r != want {
		t.Errorf("Ratio({1, 3}, {1}, 0.9) = %+v, want %+v", r, want)
	}
	r = Ratio([]float64{1, 3}, []float64{1}, 0.4)
	if r.Ratio != 2 || r.Lo != 2 || r.Hi != 2 {
		t.Errorf("Ratio({1, 3}, {1}, 0.4) = %+v, want 2 [2, 2]", r)
	}
	// Constant samples: an exact ratio.
	x := []float64{2, 2, 2, 2, 2, 2, 2, 2}
	base := []float64{4, 4, 4, 4, 4, 4, 4, 4}
	r = Ratio(x, base, 0.95)
	want = RatioSummary{Ratio: 0.5, Lo: 0.5, Hi: 0.5, Level: 0.95, Resamples: Resamples, Valid: true}
	if r != want {
		t.Errorf("Ratio(2s, 4s) = %+v, want %+v", r, want)
	}
	if r.Excludes() != -1 {
		t.Errorf("Excludes of %+v = %d, want -1", r, r.Excludes())
	}
}

func TestRatioProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	sample := func(n int, scale float64) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = scale * (1 + 0.1*rng.NormFloat64())
		}
		return v
	}
	base := sample(10, 100)

	// Identical samples: ratio 1, an interval around it well inside the
	// spread of the values.
	same := Ratio(base, base, 0.95)
	s := Summarize(base, 0.95)
	if same.Ratio != 1 || !(same.Lo <= 1 && 1 <= same.Hi) || same.Hi-same.Lo > (s.Max-s.Min)/s.Median {
		t.Errorf("identical samples: %+v (values spread %v)", same, (s.Max-s.Min)/s.Median)
	}
	if same.Hi/same.Lo > 1.2 {
		t.Errorf("identical samples with 10%% noise: interval [%v, %v] is loose", same.Lo, same.Hi)
	}
	if same.Excludes() != 0 || same.TooFew || !same.Valid {
		t.Errorf("identical samples: %+v", same)
	}

	// Deterministic: the same values give the same result.
	if again := Ratio(base, base, 0.95); again != same {
		t.Errorf("second call gave %+v, first %+v", again, same)
	}

	// A clear difference is detected, both ways.
	slow := sample(10, 150)
	if r := Ratio(slow, base, 0.95); r.Excludes() != 1 || !(r.Lo <= r.Ratio && r.Ratio <= r.Hi) {
		t.Errorf("1.5x slower: %+v", r)
	}
	if r := Ratio(base, slow, 0.95); r.Excludes() != -1 {
		t.Errorf("1.5x faster: %+v", r)
	}

	// A higher level never narrows the interval (same resamples).
	prev := Ratio(slow, base, 0.5)
	for _, level := range []float64{0.8, 0.9, 0.95, 0.99} {
		r := Ratio(slow, base, level)
		if r.Ratio != prev.Ratio || r.Lo > prev.Lo || r.Hi < prev.Hi {
			t.Errorf("level %v: %+v narrower than %+v", level, r, prev)
		}
		prev = r
	}

	// Too few values: an interval, but no claim.
	if r := Ratio(slow[:3], base[:3], 0.95); !r.TooFew || !r.Valid || r.Excludes() != 0 {
		t.Errorf("3 values each: %+v", r)
	}
}

func TestRatioUndefined(t *testing.T) {
	tests := []struct {
		name    string
		x, base []float64
	}{
		{"empty x", nil, []float64{1, 2}},
		{"empty base", []float64{1, 2}, nil},
		{"only NaN", []float64{math.NaN()}, []float64{1}},
		{"zero base", []float64{1, 2, 3}, []float64{0, 0, 0}},
		{"negative base", []float64{1, 2, 3}, []float64{-1, -2, -3}},
		// base's median is 1, but most resamples of it have median 0.
		{"mostly zero resamples", []float64{1, 1, 1}, []float64{0, 1, 1}},
	}
	for _, tt := range tests {
		r := Ratio(tt.x, tt.base, 0.95)
		if r.Valid || r.Ratio != 0 || r.Lo != 0 || r.Hi != 0 || r.Excludes() != 0 {
			t.Errorf("%s: %+v, want not valid and zeros", tt.name, r)
		}
	}
}

func TestMedianOverflow(t *testing.T) {
	if got := Summarize([]float64{math.MaxFloat64, math.MaxFloat64}, 0.5).Median; got != math.MaxFloat64 {
		t.Errorf("median of two MaxFloat64 = %v", got)
	}
}
