package behavior_test

import (
	"fmt"
	"log"
	"slices"
	"time"

	"github.com/scxkit/scxkit/behavior"
	"github.com/scxkit/scxkit/scx"
)

// Add wakeup preemption for latency-sensitive tasks to a scheduler whose
// object includes scxkit/behavior.bpf.h and calls its hooks, as
// examples/responsive does. The component owns no callback: the
// scheduler's ops.enqueue asks sk_behavior_preempt_wakeup first and
// queues the task itself when that declines.
func Example() {
	tracker, err := behavior.New(&behavior.Options{ShortBurst: 300 * time.Microsecond})
	if err != nil {
		log.Fatal(err)
	}
	n := tracker.Needs()
	fmt.Println("callbacks:", n.Callbacks)
	fmt.Println("owns:", len(n.Owns), "DSQs:", n.DSQs)
	cfg := scx.Config{Name: "mysched", Components: []scx.Component{tracker}}
	_ = cfg // scx.Open(objects, cfg), or return it from runner.Command.Setup

	// Once loaded, its stats come with the scheduler's snapshot
	// (behavior.wakeups, behavior.preempted, ...), or with
	//	c, err := tracker.Read()
	var names []string
	for _, d := range tracker.Stats() {
		names = append(names, d.Name)
	}
	fmt.Println("stats:", slices.Contains(names, "preempted"), len(names))
	// Output:
	// callbacks: [select_cpu enqueue running stopping]
	// owns: 0 DSQs: 0
	// stats: true 6
}
