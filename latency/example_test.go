package latency_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/scxkit/scxkit/latency"
)

func ExampleParseBounds() {
	b, err := latency.ParseBounds("50us, 1ms,10ms")
	fmt.Println(b, err)
	_, err = latency.ParseBounds("10ms,1ms")
	fmt.Println(err)
	// Output:
	// [50µs 1ms 10ms] <nil>
	// latency: bucket bound 1 (1ms) is not above bound 0 (10ms): invalid input: bounds must be strictly increasing
}

func ExampleHistogram_Percentile() {
	h, _ := latency.NewHistogram([]time.Duration{time.Millisecond, 2 * time.Millisecond, 4 * time.Millisecond})
	for _, d := range []time.Duration{100 * time.Microsecond, 500 * time.Microsecond, 1500 * time.Microsecond, 3 * time.Millisecond} {
		h.Add(d)
	}
	fmt.Println(h.Counts, h.Count(), h.Mean())
	fmt.Println(h.Percentile(50), h.Percentile(75), h.Percentile(100))
	fmt.Print(h)
	// Output:
	// [2 1 1 0] 4 1.275ms
	// 1ms 2ms 4ms
	//            0 .. 1ms                   2 |****************************************|
	//          1ms .. 2ms                   1 |********************                    |
	//          2ms .. 4ms                   1 |********************                    |
}

// Profile two cgroups for ten seconds and print their queueing delay. It
// needs root and a kernel with BTF, and what it prints depends on the
// machine's load, so it has no Output and only compiles; the profiler
// tests run the same calls against cpu.stat.
func ExampleStart() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := latency.Start(ctx, &latency.Options{
		Cgroups:          []string{"/system.slice", "/user.slice"},
		OutlierThreshold: 50 * time.Millisecond,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	go func() {
		for o := range p.Outliers() {
			fmt.Printf("%s[%d] in %s waited %v\n", o.Comm, o.PID, o.Cgroup, o.Delay)
		}
	}()
	<-ctx.Done()
	stats, err := p.Read(nil)
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range stats {
		fmt.Printf("%s: %d waits, p99 %v, %.0f%% behind other cgroups\n", s.Path, s.Waits(),
			s.QueueDelay.Percentile(99), 100*s.OtherCgroupWait.Seconds()/s.QueueDelay.Sum.Seconds())
	}
}

// Count delays in a histogram with the default bounds and read it back.
func ExampleLog2Bounds() {
	h, _ := latency.NewHistogram(latency.Log2Bounds())
	h.Add(3 * time.Microsecond)
	h.Add(3 * time.Second)
	fmt.Println(len(h.Bounds), h.Bounds[0], h.Bounds[len(h.Bounds)-1], h.Count())
	// Output:
	// 26 1µs 33.554432s 2
}
