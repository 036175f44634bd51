package lb

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// infeasibleRef is the iteration as the package documentation states it,
// kept naive on purpose: start from λ = L/N, clamp every task heavier than
// λ, recompute λ from what is left, and repeat until the clamped set stops
// growing.
func infeasibleRef(w, dc []float64, cpus int) []float64 {
	n := float64(cpus)
	var load, demand float64
	for i := range w {
		load += w[i] * dc[i]
		demand += dc[i]
	}
	out := append([]float64(nil), w...)
	if demand <= n {
		return out
	}
	lambda := load / n
	clamped := 0
	for {
		var lf, dinf float64
		c := 0
		for i := range w {
			if w[i] > lambda {
				dinf += dc[i]
				c++
			} else {
				lf += w[i] * dc[i]
			}
		}
		if c == 0 {
			return out
		}
		if c == clamped {
			break
		}
		clamped = c
		lambda = lf / (n - dinf)
	}
	for i := range out {
		out[i] = min(out[i], lambda)
	}
	return out
}

var approx = cmpopts.EquateApprox(1e-12, 1e-12)

func TestAdjustWeightsCrafted(t *testing.T) {
	// Seven light tasks and one that asks for all of 4 CPUs: it gets one.
	w := []float64{1, 1, 1, 1, 1, 1, 1, 10000}
	dc := []float64{1, 1, 1, 1, 1, 1, 1, 1}
	got, err := AdjustWeights(nil, w, dc, 4)
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{1, 1, 1, 1, 1, 1, 1, 7.0 / 3}
	if diff := cmp.Diff(want, got, approx); diff != "" {
		t.Errorf("AdjustWeights (-want +got):\n%s", diff)
	}
	for i := range 7 {
		if got[i] != 1 {
			t.Errorf("light task %d: weight %v, want exactly 1", i, got[i])
		}
	}
	var total float64
	for i := range got {
		total += got[i] * dc[i]
	}
	if heavy := got[7] * dc[7]; math.Abs(heavy-total/4) > 1e-12 {
		t.Errorf("heavy task's load %v, want total/4 = %v", heavy, total/4)
	}
}

func TestAdjustWeightsCases(t *testing.T) {
	for _, tc := range []struct {
		name   string
		w, dc  []float64
		cpus   int
		want   []float64
		lambda float64 // the clamp, 0 if none: checked to give one CPU
	}{
		{
			name: "all feasible",
			w:    []float64{100, 200, 300, 400}, dc: []float64{1, 1, 1, 1}, cpus: 2,
			want: []float64{100, 200, 300, 400},
		},
		{
			// L=1960: 1000*4 > 1960, then L=960 on 3 CPUs: 900*3 > 960,
			// then L=60 on 2 CPUs: λ=30 and 10*2 <= 60.
			name: "several infeasible",
			w:    []float64{1000, 10, 900, 10, 10, 10, 10, 10}, dc: []float64{1, 1, 1, 1, 1, 1, 1, 1}, cpus: 4,
			want: []float64{30, 10, 30, 10, 10, 10, 10, 10}, lambda: 30,
		},
		{
			// Demand 5.5 on 4 CPUs; L=5500, the heavy task is marked, then
			// λ = 500 / (4 - 0.5).
			name: "duty cycles below 1",
			w:    []float64{10000, 100, 100, 100, 100, 100}, dc: []float64{0.5, 1, 1, 1, 1, 1}, cpus: 4,
			want: []float64{500 / 3.5, 100, 100, 100, 100, 100}, lambda: 500 / 3.5,
		},
		{
			name: "no more tasks than CPUs",
			w:    []float64{10000, 1, 1}, dc: []float64{1, 1, 1}, cpus: 3,
			want: []float64{10000, 1, 1},
		},
		{
			name: "many CPUs",
			w:    []float64{10000, 1, 1}, dc: []float64{1, 1, 1}, cpus: 64,
			want: []float64{10000, 1, 1},
		},
		{
			name: "demand within CPUs",
			w:    []float64{10000, 1, 1, 1, 1, 1}, dc: []float64{1, 0.5, 0.5, 0.5, 0.5, 0.5}, cpus: 4,
			want: []float64{10000, 1, 1, 1, 1, 1},
		},
		{
			name: "idle heavy task",
			w:    []float64{10000, 100, 100, 100}, dc: []float64{0, 1, 1, 1}, cpus: 2,
			want: []float64{150, 100, 100, 100}, lambda: 150,
		},
		{
			name: "ties are clamped together",
			w:    []float64{5000, 5000, 1, 1, 1}, dc: []float64{1, 1, 1, 1, 1}, cpus: 3,
			want: []float64{3, 3, 1, 1, 1}, lambda: 3,
		},
		{name: "empty", cpus: 1, want: []float64{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := AdjustWeights(make([]float64, 0, 1), tc.w, tc.dc, tc.cpus)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, approx); diff != "" {
				t.Errorf("AdjustWeights (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.want, infeasibleRef(tc.w, tc.dc, tc.cpus), approx, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("reference disagrees with the case (-want +ref):\n%s", diff)
			}
			if tc.lambda == 0 {
				return
			}
			// A clamped task gets exactly one CPU while it runs.
			var total float64
			for i := range got {
				total += got[i] * tc.dc[i]
			}
			if share := tc.lambda * float64(tc.cpus) / total; math.Abs(share-1) > 1e-12 {
				t.Errorf("a clamped task's share is %v CPUs, want 1", share)
			}
		})
	}
}

func TestAdjustWeightsErrors(t *testing.T) {
	w := []float64{100, 100}
	dc := []float64{1, 1}
	for _, tc := range []struct {
		name  string
		dst   []float64
		w, dc []float64
		cpus  int
		want  string
	}{
		{"zero CPUs", nil, w, dc, 0, "nrCPUs is 0"},
		{"negative CPUs", nil, w, dc, -2, "nrCPUs is -2"},
		{"negative weight", nil, []float64{100, -1}, dc, 4, "weights[1] is -1"},
		{"NaN weight", nil, []float64{math.NaN(), 1}, dc, 4, "weights[0] is NaN"},
		{"infinite weight", nil, []float64{math.Inf(1), 1}, dc, 4, "weights[0] is +Inf"},
		{"duty cycle above 1", nil, w, []float64{1, 1.5}, 4, "dutyCycles[1] is 1.5"},
		{"negative duty cycle", nil, w, []float64{-0.1, 1}, 4, "dutyCycles[0] is -0.1"},
		{"NaN duty cycle", nil, w, []float64{1, math.NaN()}, 4, "dutyCycles[1] is NaN"},
		{"length mismatch", nil, w, []float64{1}, 4, "2 weights but 1 duty cycles"},
		{"dst is weights", w[:0], w, dc, 4, "dst overlaps"},
		{"dst inside duty cycles", dc[1:1], w, dc, 4, "dst overlaps"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := AdjustWeights(tc.dst, tc.w, tc.dc, tc.cpus)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want ErrInvalid mentioning %q", err, tc.want)
			}
		})
	}
}

// randomInfeasible draws n tasks of which some are heavy enough to be
// infeasible on cpus CPUs.
func randomInfeasible(r *rand.Rand, n int) (w, dc []float64, cpus int) {
	w = make([]float64, n)
	dc = make([]float64, n)
	for i := range n {
		switch r.IntN(4) {
		case 0:
			w[i] = float64(1 + r.IntN(10000))
		case 1:
			w[i] = float64(1 + r.IntN(20)) // ties
		default:
			w[i] = math.Exp(r.Float64() * 9) // 1 to ~8100, spread out
		}
		switch r.IntN(5) {
		case 0:
			dc[i] = 1
		case 1:
			dc[i] = 0
		default:
			dc[i] = r.Float64()
		}
	}
	return w, dc, 1 + r.IntN(n+1)
}

func TestAdjustWeightsProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var dst []float64
	clampedRounds := 0
	for iter := range 3000 {
		w, dc, cpus := randomInfeasible(r, 1+r.IntN(200))
		var err error
		dst, err = AdjustWeights(dst, w, dc, cpus)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(infeasibleRef(w, dc, cpus), dst, cmpopts.EquateApprox(1e-9, 1e-9)); diff != "" {
			t.Fatalf("iteration %d: AdjustWeights disagrees with the reference iteration (-ref +got):\n%s", iter, diff)
		}
		var total, demand, lambda float64
		for i := range dst {
			total += dst[i] * dc[i]
			demand += dc[i]
			if dst[i] > w[i] {
				t.Fatalf("iteration %d: task %d raised from %v to %v", iter, i, w[i], dst[i])
			}
			if dst[i] < w[i] {
				lambda = dst[i]
			}
		}
		if lambda == 0 {
			continue
		}
		clampedRounds++
		// The sorting fallback, run on everything, finds the same λ.
		idx := make([]float64, len(w))
		for i := range idx {
			idx[i] = float64(i)
		}
		if got := lambdaSorted(idx, w, dc, float64(cpus), 0, 0); math.Abs(got-lambda) > 1e-9*lambda {
			t.Fatalf("iteration %d: lambdaSorted = %v, want %v", iter, got, lambda)
		}
		// Every clamped task gets one CPU while runnable, every other
		// task at most one.
		for i := range dst {
			share := dst[i] * float64(cpus) / total
			if dst[i] < w[i] && math.Abs(share-1) > 1e-9 {
				t.Fatalf("iteration %d: clamped task %d gets %v CPUs, want 1", iter, i, share)
			}
			if share > 1+1e-9 {
				t.Fatalf("iteration %d: task %d gets %v CPUs", iter, i, share)
			}
		}
	}
	if clampedRounds < 1000 {
		t.Errorf("only %d of 3000 random inputs had infeasible tasks: the generator is too gentle", clampedRounds)
	}
}

// TestAdjustWeightsSortedInputs feeds orders that defeat a median-of-3
// pivot, so that the sorting fallback runs too.
func TestAdjustWeightsSortedInputs(t *testing.T) {
	for _, n := range []int{1, 2, 3, 10, 100, 1000} {
		for _, order := range []string{"ascending", "descending", "organ pipe", "geometric"} {
			w := make([]float64, n)
			dc := make([]float64, n)
			for i := range n {
				dc[i] = 1
				switch order {
				case "ascending":
					w[i] = float64(i + 1)
				case "descending":
					w[i] = float64(n - i)
				case "organ pipe":
					w[i] = float64(min(i, n-i) + 1)
				case "geometric":
					w[i] = math.Pow(1.5, float64(i%40))
				}
			}
			for _, cpus := range []int{1, 2, max(1, n/3), max(1, n-1)} {
				got, err := AdjustWeights(nil, w, dc, cpus)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(infeasibleRef(w, dc, cpus), got, cmpopts.EquateApprox(1e-9, 1e-9)); diff != "" {
					t.Errorf("n=%d %s cpus=%d (-ref +got):\n%s", n, order, cpus, diff)
				}
			}
		}
	}
}

func TestAdjustWeightsAllocs(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	w, dc, _ := randomInfeasible(r, 1000)
	dst := make([]float64, 0, len(w))
	for _, cpus := range []int{4, 100000} { // clamping and the fast path
		if a := testing.AllocsPerRun(100, func() {
			dst, _ = AdjustWeights(dst, w, dc, cpus)
		}); a != 0 {
			t.Errorf("cpus=%d: %v allocations per call, want 0", cpus, a)
		}
	}
}

func BenchmarkAdjustWeights(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	const n = 10000
	w := make([]float64, n)
	dc := make([]float64, n)
	for i := range n {
		w[i] = float64(1 + r.IntN(10000))
		dc[i] = r.Float64()
	}
	heavy := slices.Clone(w)
	heavy[0], heavy[1] = 1e6, 1e6 // infeasible on 16 CPUs
	for _, bc := range []struct {
		name string
		w    []float64
		cpus int
	}{{"feasible/512cpus", w, 512}, {"infeasible/16cpus", heavy, 16}} {
		b.Run(bc.name, func(b *testing.B) {
			dst := make([]float64, 0, n)
			b.ReportAllocs()
			for b.Loop() {
				dst, _ = AdjustWeights(dst, bc.w, dc, bc.cpus)
			}
		})
	}
}
