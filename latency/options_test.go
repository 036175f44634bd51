package latency

import (
	"context"
	"errors"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseBounds(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		in   string
		want []time.Duration
		err  string // substring of the error; "" for none
	}{
		{in: "1ms", want: []time.Duration{ms}},
		{in: " 50us , 1ms,10ms ", want: []time.Duration{50 * time.Microsecond, ms, 10 * ms}},
		{in: "log2", want: Log2Bounds()},
		{in: "", err: "empty bucket bounds"},
		{in: "1ms,1ms", err: "bucket bound 1 (1ms) is not above bound 0 (1ms)"},
		{in: "2ms,1ms", err: "strictly increasing"},
		{in: "0s", err: "bucket bound 0 is 0s: invalid input: bounds must be positive"},
		{in: "-1ms", err: "must be positive"},
		{in: "1ms,,2ms", err: `bucket bound 1 "": invalid input: time: invalid duration`},
		{in: "1 ms", err: `bucket bound 0 "1 ms"`},
		{in: "soon", err: "write a duration like 250us"},
		{in: strings.Repeat("1ms,", 64) + "1ms", err: "65 bucket bounds: too big: at most 64"},
	}
	for _, tt := range tests {
		got, err := ParseBounds(tt.in)
		if tt.err != "" {
			want := ErrInvalid
			if strings.Contains(tt.err, "too big") {
				want = ErrTooBig
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, want) || !strings.HasPrefix(err.Error(), "latency: ") {
				t.Errorf("ParseBounds(%q) = %v, %v; want a latency: error wrapping %v with %q", tt.in, got, err, want, tt.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("ParseBounds(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

// FuzzParseBounds checks that whatever ParseBounds accepts is a valid set of
// bounds, that it round-trips through the durations' strings, and that it
// rejects with ErrInvalid or, for too many bounds, ErrTooBig.
func FuzzParseBounds(f *testing.F) {
	for _, s := range []string{"1ms", "50us,1ms,10ms", "log2", "", "2ms,1ms", "1h,2h", "1ns,2ns,3ns", "-1s", "1e3ms"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseBounds(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrTooBig) {
				t.Fatalf("ParseBounds(%q): %v wraps neither ErrInvalid nor ErrTooBig", s, err)
			}
			return
		}
		if err := checkBounds(b); err != nil {
			t.Fatalf("ParseBounds(%q) = %v, which checkBounds rejects: %v", s, b, err)
		}
		var parts []string
		for _, d := range b {
			parts = append(parts, d.String())
		}
		again, err := ParseBounds(strings.Join(parts, ","))
		if err != nil || !slices.Equal(again, b) {
			t.Fatalf("round trip of %v: %v, %v", b, again, err)
		}
	})
}

func TestOptionsErrors(t *testing.T) {
	mount, err := Cgroup2Mount()
	if err != nil {
		t.Skipf("no cgroup2 mount: %v", err)
	}
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, nil, 0o644)
	tests := []struct {
		name string
		opts Options
		err  string
	}{
		{"missing cgroup", Options{Cgroups: []string{"/scxkit-no-such-cgroup"}}, `cgroup "/scxkit-no-such-cgroup": stat ` + filepath.Join(mount, "scxkit-no-such-cgroup") + ": no such file or directory: give an existing cgroup"},
		{"missing cgroup dir", Options{Cgroups: []string{filepath.Join(mount, "nope")}}, "no such file"},
		{"empty cgroup", Options{Cgroups: []string{""}}, "empty cgroup path"},
		{"file is no cgroup", Options{Cgroups: []string{filepath.Join(mount, "cgroup.procs")}}, "is not a directory"},
		{"not cgroup2", Options{Cgroups: []string{filepath.Dir(file)}}, ""}, // joined under the mount: missing
		{"bounds not increasing", Options{Bounds: []time.Duration{2 * time.Millisecond, time.Millisecond}}, "bucket bound 1 (1ms) is not above bound 0 (2ms)"},
		{"bounds empty", Options{Bounds: []time.Duration{}}, "no bucket bounds"},
		{"too many bounds", Options{Bounds: make([]time.Duration, 65)}, "65 bucket bounds"},
		{"negative threshold", Options{OutlierThreshold: -1}, "OutlierThreshold is -1ns"},
		{"negative buffer", Options{OutlierBuffer: -1}, "OutlierBuffer is -1"},
		{"ring buffer size", Options{RingBufferSize: 5000}, "RingBufferSize is 5000: invalid input: give a power of two"},
		{"negative max cgroups", Options{MaxCgroups: -2}, "MaxCgroups is -2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Start(context.Background(), &tt.opts)
			if err == nil {
				p.Close()
				t.Fatal("Start accepted the options")
			}
			want := ErrInvalid
			if tt.name == "too many bounds" {
				want = ErrTooBig
			}
			if !errors.Is(err, want) || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("Start: %v; want an error wrapping %v with %q", err, want, tt.err)
			}
		})
	}
	_, err = Start(context.Background(), &Options{Cgroups: []string{"/scxkit-no-such-cgroup"}})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing cgroup: %v does not wrap fs.ErrNotExist", err)
	}
}

func TestLookupCgroup(t *testing.T) {
	mount, err := Cgroup2Mount()
	if err != nil {
		t.Skipf("no cgroup2 mount: %v", err)
	}
	root, err := LookupCgroup("/")
	if err != nil {
		t.Fatal(err)
	}
	byDir, err := LookupCgroup(mount)
	if err != nil {
		t.Fatal(err)
	}
	// The root cgroup's id is 1 (kernfs's root inode).
	if root != byDir || root.Path != "/" || root.Dir != mount || root.ID != 1 {
		t.Errorf(`LookupCgroup("/") = %+v, LookupCgroup(%q) = %+v`, root, mount, byDir)
	}
	x := newCgroupIndex(mount)
	if got := x.path(1); got != "/" {
		t.Errorf("index: path of id 1 = %q", got)
	}
	if got := x.path(1 << 62); got != "" {
		t.Errorf("index: path of a missing id = %q", got)
	}
}

func TestHistogram(t *testing.T) {
	if _, err := NewHistogram([]time.Duration{3, 2}); !errors.Is(err, ErrInvalid) {
		t.Errorf("NewHistogram of decreasing bounds: %v", err)
	}
	h, _ := NewHistogram([]time.Duration{10, 20, 40})
	for _, tc := range []struct {
		d    time.Duration
		want int
	}{{0, 0}, {1, 0}, {10, 0}, {11, 1}, {20, 1}, {21, 2}, {40, 2}, {41, 3}, {1 << 40, 3}} {
		if got := h.bucket(tc.d); got != tc.want {
			t.Errorf("bucket(%d) = %d, want %d", tc.d, got, tc.want)
		}
	}
	if h.Percentile(50) != 0 || h.Mean() != 0 || h.String() != "(no samples)\n" {
		t.Errorf("empty histogram: p50 %v, mean %v, %q", h.Percentile(50), h.Mean(), h.String())
	}
	// 10 samples uniform in bucket (10, 20]: the percentiles interpolate.
	for range 10 {
		h.Add(15)
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{0, 10}, {50, 15}, {100, 20}, {-5, 10}, {200, 20}} {
		if got := h.Percentile(tc.p); got != tc.want {
			t.Errorf("Percentile(%v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	h.Add(1000) // in the unbounded bucket: reported as the last bound
	if got := h.Percentile(100); got != 40 {
		t.Errorf("Percentile(100) with an overflow = %v, want 40", got)
	}
	var d Histogram
	old := &Histogram{Bounds: h.Bounds, Counts: []uint64{0, 4, 0, 0}, Sum: 60}
	d.Sub(h, old)
	if !slices.Equal(d.Counts, []uint64{0, 6, 0, 1}) || d.Sum != 1150-60 {
		t.Errorf("Sub = %v sum %v", d.Counts, d.Sum)
	}
}

// TestBucketRandom compares Histogram.bucket, the twin of sk_lat_bucket,
// with a linear search.
func TestBucketRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		n := 1 + rng.IntN(MaxBounds)
		b := make([]time.Duration, n)
		v := time.Duration(0)
		for i := range b {
			v += time.Duration(1 + rng.IntN(1000))
			b[i] = v
		}
		h, err := NewHistogram(b)
		if err != nil {
			t.Fatal(err)
		}
		for range 100 {
			d := time.Duration(rng.Int64N(int64(v) + 10))
			want := len(b)
			for i, x := range b {
				if d <= x {
					want = i
					break
				}
			}
			if got := h.bucket(d); got != want {
				t.Fatalf("bounds %v: bucket(%d) = %d, want %d", b, d, got, want)
			}
		}
	}
}

// TestPercentileWideBounds checks percentiles whose bucket is far wider
// than the durations in it: 1000 waits of 1 ms, bounds of 1 h and 2 h.
// Interpolating within the bucket alone gives a median of 30 minutes next
// to a mean of 1 ms; Sum bounds every percentile.
func TestPercentileWideBounds(t *testing.T) {
	h, err := NewHistogram([]time.Duration{time.Hour, 2 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for range 1000 {
		h.Add(time.Millisecond)
	}
	for _, tc := range []struct {
		p   float64
		max time.Duration // what Sum allows the duration of that rank
	}{{50, time.Second / 501}, {90, time.Second / 101}, {99, time.Second / 11}, {100, time.Second}} {
		if got := h.Percentile(tc.p); got > tc.max {
			t.Errorf("Percentile(%v) = %v, above %v, the most a duration of that rank can be with Sum %v", tc.p, got, tc.max, h.Sum)
		}
	}
	// A Sum of 0 is unknown (histograms built from counts alone):
	// interpolation as before.
	counts := &Histogram{Bounds: []time.Duration{10, 20}, Counts: []uint64{0, 10, 0}}
	if got := counts.Percentile(50); got != 15 {
		t.Errorf("Percentile(50) without Sum = %v, want 15", got)
	}
	// Inconsistent Sum: never below the bucket's lower bound.
	low := &Histogram{Bounds: []time.Duration{10, 20}, Counts: []uint64{0, 10, 0}, Sum: 1}
	if got := low.Percentile(50); got != 10 {
		t.Errorf("Percentile(50) with Sum 1 = %v, want 10", got)
	}
}

// TestPercentileRandom checks on random samples that the estimate stays in
// the bucket of the true percentile and never above the largest value the
// Sum allows, which is at least the true value.
func TestPercentileRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for range 300 {
		bounds := []time.Duration{time.Duration(1 + rng.IntN(100))}
		for range rng.IntN(6) {
			bounds = append(bounds, bounds[len(bounds)-1]+time.Duration(1+rng.IntN(1000)))
		}
		h, _ := NewHistogram(bounds)
		n := 1 + rng.IntN(50)
		samples := make([]time.Duration, n)
		for i := range samples {
			samples[i] = time.Duration(rng.Int64N(int64(bounds[len(bounds)-1]) + 50))
			h.Add(samples[i])
		}
		slices.Sort(samples)
		for _, p := range []float64{0, 10, 50, 90, 99, 100} {
			k := max(int(math.Ceil(p/100*float64(n))), 1)
			truth := samples[k-1]
			b := h.bucket(truth)
			got := h.Percentile(p)
			if b == len(bounds) {
				if got != bounds[len(bounds)-1] {
					t.Fatalf("samples %v bounds %v: p%v = %v, want the last bound", samples, bounds, p, got)
				}
				continue
			}
			if got < h.lower(b) || got > bounds[b] {
				t.Fatalf("samples %v bounds %v: p%v = %v, true %v in bucket %d", samples, bounds, p, got, truth, b)
			}
			var below uint64
			for j := range b {
				below += h.Counts[j]
			}
			if limit := h.sumBound(b, below, p/100*float64(n)); truth > limit+1 {
				t.Fatalf("samples %v bounds %v: p%v true %v above the Sum bound %v", samples, bounds, p, truth, limit)
			}
		}
	}
}
