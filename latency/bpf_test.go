package latency

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/cilium/ebpf"
)

//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -tags linux -target bpfel latselftest bucket_selftest.bpf.c -- -mcpu=v3 -Wno-missing-declarations -I../bpf/include

const maxDelays = 1024 // MAX_DELAYS

// TestBPFBucket checks sk_lat_bucket against Histogram.bucket, its Go twin,
// for random bounds (1 to 64 of them) and delays on and around every bound.
func TestBPFBucket(t *testing.T) {
	requireRoot(t)
	rng := rand.New(rand.NewPCG(5, 6))
	for round := range 30 {
		n := 1 + rng.IntN(MaxBounds)
		if round == 0 {
			n = MaxBounds
		}
		b := make([]time.Duration, n)
		var v time.Duration
		for i := range b {
			v += time.Duration(1 + rng.Int64N(1<<uint(rng.IntN(40))))
			b[i] = v
		}
		h, err := NewHistogram(b)
		if err != nil {
			t.Fatal(err)
		}
		var delays [maxDelays]uint64
		nr := 0
		for _, x := range b {
			for _, d := range []time.Duration{x - 1, x, x + 1} {
				delays[nr] = uint64(d)
				nr++
			}
		}
		delays[nr] = 0
		nr++
		for nr < maxDelays {
			delays[nr] = uint64(rng.Int64N(int64(v) + 100))
			nr++
		}

		spec, err := loadLatselftest()
		if err != nil {
			t.Fatal(err)
		}
		var bounds [MaxBounds]uint64
		for i, x := range b {
			bounds[i] = uint64(x)
		}
		if err := spec.Variables["sk_lat_bounds"].Set(bounds); err != nil {
			t.Fatal(err)
		}
		if err := spec.Variables["sk_lat_nr_bounds"].Set(uint32(n)); err != nil {
			t.Fatal(err)
		}
		coll, err := ebpf.NewCollection(spec)
		if err != nil {
			t.Fatalf("load bucket_selftest.bpf.c: %+v", err)
		}
		if err := coll.Variables["delays"].Set(delays); err != nil {
			t.Fatal(err)
		}
		if err := coll.Variables["nr_delays"].Set(uint32(nr)); err != nil {
			t.Fatal(err)
		}
		ret, err := coll.Programs["bucket"].Run(&ebpf.RunOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if int(ret) != nr {
			t.Fatalf("bucket answered %d of %d", ret, nr)
		}
		var got [maxDelays]uint32
		if err := coll.Variables["buckets"].Get(&got); err != nil {
			t.Fatal(err)
		}
		coll.Close()
		want := make([]uint32, nr)
		for i, d := range delays[:nr] {
			want[i] = uint32(h.bucket(time.Duration(d)))
		}
		if !slices.Equal(got[:nr], want) {
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("bounds %v: delay %d in BPF bucket %d, Go bucket %d", b, delays[i], got[i], want[i])
				}
			}
		}
	}
}
