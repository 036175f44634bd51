package scx_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/scxkit/scxkit/scx"
	"github.com/scxkit/scxkit/scx/internal/attachtest"
)

// A complete minimal scheduler: every task goes to the global DSQ in FIFO
// order. The BPF half, fifo.bpf.c:
//
//	#include <scxkit/scx.bpf.h>
//
//	struct fifo_stats {
//		u64 enqueued;
//	};
//	SK_STATS_DEFINE(struct fifo_stats);
//
//	SK_OPS(void, fifo_enqueue, struct task_struct *p, u64 enq_flags)
//	{
//		sk_stat_inc(enqueued);
//		sk_dsq_insert(p, SK_DSQ_GLOBAL, sk_slice(), enq_flags);
//	}
//
//	SK_OPS(void, fifo_exit, struct scx_exit_info *ei)
//	{
//		sk_exit_record(ei);
//	}
//
//	SK_SCHEDULER(fifo_ops,
//		.enqueue = (void *)fifo_enqueue,
//		.exit    = (void *)fifo_exit);
//
// compiled for both kfunc generations by two go:generate lines:
//
//	//go:generate go tool bpf2go -tags linux -target bpfel -no-global-types fifo fifo.bpf.c -- -I<scxkit>/bpf/include
//	//go:generate go tool bpf2go -tags linux -target bpfel -no-global-types fifoV2 fifo.bpf.c -- -I<scxkit>/bpf/include -DSCXKIT_KFUNC_V2
//
// The Go half runs it until SIGINT or SIGTERM, printing its counter's
// total and rate every second.
//
// Running it needs root and a kernel with sched_ext, and it runs until it
// is signalled, so it has no Output and only compiles; attachtest runs the
// same scheduler in a VM.
func Example() {
	// In your package: scx.Objects{Base: loadFifo, V2: loadFifoV2}.
	objs := attachtest.Fifo

	spec, err := scx.Open(objs, scx.Config{Name: "fifo", Slice: 5 * time.Millisecond})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	info, err := scx.Serve(ctx, spec, &scx.ServeOptions{
		Run: &scx.RunOptions{
			StatsInterval: time.Second,
			OnStats: func(s *scx.Scheduler, st *scx.Stats) {
				n, _ := st.Get("enqueued")
				// "fifo: enqueued=1234 (310/s)", the rate over the last
				// StatsInterval.
				rate, _ := st.Rate("enqueued")
				fmt.Printf("%s: enqueued=%d (%.0f/s)\n", s.Name(), n, rate)
			},
		},
	})
	if errors.Is(err, scx.ErrNotSupported) {
		log.Fatalf("this kernel cannot run sched_ext schedulers: %v", err)
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info) // exit unreg: unregistered from user space
}

func ExampleConfig_Validate() {
	cfg := scx.Config{Name: "my-sched", Timeout: 5 * time.Second}
	err := cfg.Validate()
	fmt.Println(errors.Is(err, scx.ErrInvalid))
	fmt.Println(err)
	// Output:
	// true
	// invalid input: config: name "my-sched" has invalid character '-' at byte 2: use letters, digits, '_' and '.'
}

// A scheduler's own stats as OnStats gets them: a counter, whose Delta and
// Rate cover the interval since the previous call, and a gauge, whose
// Level is what the BPF side set last. The BPF half declares them so:
//
//	struct nest_stats { u64 enqueued; };
//	SK_STATS_DEFINE(struct nest_stats);
//	struct nest_gauges { u64 nest_size SK_STAT_HELP("CPUs in the nest."); };
//	SK_GAUGES_DEFINE(struct nest_gauges);
//	...
//	sk_stat_inc(enqueued);
//	sk_gauge_add(nest_size, 1);
//
// Here the Stats is filled by hand, as Run would fill it.
func ExampleStats_Delta() {
	t0 := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	st := &scx.Stats{
		Names:      []string{"enqueued", "nest_size"},
		Kinds:      []scx.StatKind{scx.Counter, scx.Gauge},
		Time:       t0.Add(2 * time.Second),
		Values:     []uint64{1500, 3},
		PrevTime:   t0,
		PrevValues: []uint64{900, 2},
	}
	d, _ := st.Delta("enqueued")
	r, _ := st.Rate("enqueued")
	level, _ := st.Level("nest_size")
	fmt.Printf("enqueued: %d in %v, %.0f/s\n", d, st.Interval(), r)
	fmt.Printf("nest_size: %d\n", level)
	fmt.Println(st)
	// Output:
	// enqueued: 600 in 2s, 300/s
	// nest_size: 3
	// enqueued=1500 nest_size=3
}
