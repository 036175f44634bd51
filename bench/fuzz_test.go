package bench

import (
	"errors"
	"math"
	"testing"
)

// fuzzParse seeds a fuzzer for b's parser with the real outputs and a few
// broken ones, and checks that it never panics, that its errors wrap
// ErrParse, and that what it returns is one finite, non-negative value per
// metric.
func fuzzParse(f *testing.F, b Benchmark, seeds ...string) {
	for _, o := range realOutputs {
		stdout, stderr := readTestdata(f, o.stdout), readTestdata(f, o.stderr)
		f.Add(stdout, stderr)
		f.Add(append(append([]byte{}, stderr...), stdout...), []byte(nil))
	}
	f.Add([]byte(nil), readTestdata(f, "cpu.stderr"))
	for _, s := range seeds {
		f.Add([]byte(s), []byte(nil))
		f.Add([]byte(nil), []byte(s))
	}
	f.Fuzz(func(t *testing.T, stdout, stderr []byte) {
		samples, err := b.Parse(stdout, stderr)
		if err != nil {
			if !errors.Is(err, ErrParse) {
				t.Fatalf("error %v does not wrap ErrParse", err)
			}
			if samples != nil {
				t.Fatalf("samples %v with error %v", samples, err)
			}
			return
		}
		if len(samples) != len(b.Metrics) {
			t.Fatalf("%d samples, want %d: %v", len(samples), len(b.Metrics), samples)
		}
		for i, s := range samples {
			if s.Metric != b.Metrics[i] {
				t.Fatalf("sample %d: metric %v, want %v", i, s.Metric, b.Metrics[i])
			}
			if math.IsNaN(s.Value) || math.IsInf(s.Value, 0) || s.Value < 0 {
				t.Fatalf("sample %d: value %v", i, s.Value)
			}
		}
	})
}

func FuzzParseHackbench(f *testing.F) {
	fuzzParse(f, Hackbench, "Time: 0.5\n", "Time:1\r\n", "Time: 1e3\n", "Time: \n", "Time: 0.1\nTime: 0.2\n")
}

func FuzzParseCyclictest(f *testing.F) {
	fuzzParse(f, Cyclictest,
		"T: 0 (1) P: 0 I:1000 C: 9 Min: 1 Act: 2 Avg: 3 Max: 9\n",
		"T: 0 (1) P: 0 I:1000 C: 9 Min: 1 Act: 2 Avg: 3.5 Max: 9 extra\nT: 1 (2) P:50 I:1500 C: 1 Min: 1 Act: 1 Avg: 99999999999 Max: 1\n",
		"T: 0 (1) P: 0 I:1000 C: 0 Min: 0 Act: 0 Avg: 0 Max: 0\n",
		"T:\n")
}

func FuzzParseSwitch(f *testing.F) {
	fuzzParse(f, Switch,
		"stress-ng: metrc: [1] switch 1 2.00 0.1 1.0 5.0 1.0 2.0 3\nstress-ng: metrc: [1] switch 4.5 nanosecs per context switch (mq method)\n",
		"stress-ng: fail: [8] switch: write failed\nstress-ng: info: [7] unsuccessful run completed in 1.00s\n",
		"stress-ng: metrc: [1] switch\n")
}
