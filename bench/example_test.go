package bench_test

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/scxkit/scxkit/bench"
)

func ExampleBenchmark_Args() {
	o := &bench.Options{CPUs: 2, Duration: 6 * time.Second}
	for _, b := range bench.Standard() {
		fmt.Println(strings.Join(b.Args(o), " "))
		if hogs := b.HogArgs(o); hogs != nil {
			fmt.Println("  while:", strings.Join(hogs, " "))
		}
	}
	// Output:
	// hackbench -g 2 -l 200
	// cyclictest -q -m -t 2 -i 1000 -d 0 -D 6
	//   while: stress-ng --cpu 2 --cpu-method matrixprod --timeout 36s
	// stress-ng --switch 2 --switch-method pipe --timeout 6s --metrics-brief
}

func ExampleBenchmark_Parse() {
	stdout := []byte(`# /dev/cpu_dma_latency set to 0us
T: 0 (21617) P: 0 I:1000 C:   1977 Min:      9 Act:   76 Avg:   78 Max:   12938
T: 1 (21618) P: 0 I:1000 C:   1976 Min:     11 Act:   68 Avg:   89 Max:    9120
`)
	samples, err := bench.Cyclictest.Parse(stdout, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range samples {
		fmt.Printf("%v: %v\n", s.Metric, s.Value)
	}
	_, err = bench.Hackbench.Parse([]byte("Time: soon\n"), nil)
	fmt.Println(err)
	// Output:
	// avg_latency (µs): 83.5
	// max_latency (µs): 12938
	// bench: hackbench: unparsable tool output: line "Time: soon": want Time: <seconds>
}

func ExampleSummarize() {
	s := bench.Summarize([]float64{7, 3, 10, 1, 5, 9, 2, 8, 6, 4}, 0.95)
	fmt.Printf("n %d, median %v, interval [%v, %v] covers %.4f\n", s.N, s.Median, s.Lo, s.Hi, s.Coverage)
	s = bench.Summarize([]float64{3, 1, 2}, 0.95)
	fmt.Printf("n %d, median %v, interval [%v, %v] covers %.4f, too few: %v\n", s.N, s.Median, s.Lo, s.Hi, s.Coverage, s.TooFew)
	// Output:
	// n 10, median 5.5, interval [2, 9] covers 0.9785
	// n 3, median 2, interval [1, 3] covers 0.7500, too few: true
}

func ExampleRatio() {
	base := []float64{101.9, 99.8, 103.5, 100.2, 102.7, 98.9, 104.1, 101.1, 100.6, 102.3}
	x := []float64{180.7, 182.3, 179.1, 181.5, 183.9, 178.8, 180.2, 182.8, 181.1, 179.9}
	r := bench.Ratio(x, base, 0.95)
	fmt.Printf("%.2f [%.2f, %.2f], excludes 1 on side %+d\n", r.Ratio, r.Lo, r.Hi, r.Excludes())
	// Output:
	// 1.78 [1.76, 1.81], excludes 1 on side +1
}

func ExampleReport_WriteTable() {
	r := &bench.Report{Kernel: "7.3.4", VCPUs: 2, Repetitions: 6}
	for i, v := range []float64{1.10, 1.08, 1.15, 1.12, 1.09, 1.11} {
		r.Add("hackbench", bench.Default, bench.Sample{Metric: bench.MetricTime, Value: v})
		r.Add("hackbench", "simple", bench.Sample{Metric: bench.MetricTime, Value: v * (1.15 + 0.01*float64(i))})
	}
	if err := r.WriteTable(os.Stdout); err != nil {
		fmt.Println(err)
	}
	// Output:
	// kernel 7.3.4, 2 vCPUs, 6 repetitions
	// medians with 95% intervals; ratio = scheduler/default median, 95% bootstrap interval;
	// better/worse: the ratio's interval excludes 1
	//
	// hackbench time (s), lower is better
	// scheduler  runs  median  95% CI          ratio  95% CI
	// default    6     1.105   [1.080, 1.150]
	// simple     6     1.309   [1.253, 1.345]  1.18   [1.13, 1.22]  worse
}
