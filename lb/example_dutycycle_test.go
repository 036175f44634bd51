package lb_test

import (
	"fmt"
	"time"

	"github.com/scxkit/scxkit/lb"
)

// A task runnable for 1 ms of every 4 ms, tracked with a 50 ms half-life
// the way a scheduler's ops.runnable and ops.quiescent would, then idle
// for one half-life.
func ExampleDutyCycle() {
	const halfLife = uint64(50 * time.Millisecond)
	var d lb.DutyCycle
	now := uint64(time.Second) // any monotonic clock, in ns
	for range 250 {            // one second
		d.Update(now, true, halfLife)
		now += uint64(time.Millisecond)
		d.Update(now, false, halfLife)
		now += uint64(3 * time.Millisecond)
	}
	// Fraction is the average as of the last update, the end of a runnable ms.
	fmt.Printf("after 1s: %.1f%%\n", 100*d.Fraction())
	fmt.Printf("one half-life later: %.1f%%\n", 100*float64(d.Read(now+halfLife, halfLife))/lb.DutyCycleOne)

	// A domain tracks its runnable tasks by weight bucket: the bucket's
	// average is the sum of their duty cycles.
	var dom lb.DutyCycleDom
	b := lb.DutyCycleBucket(100) // nice 0
	dom.Update(b, now, +1, halfLife)
	dom.Update(b, now, +1, halfLife)
	now += 10 * halfLife
	fmt.Printf("bucket %d, two tasks always runnable: %.3f tasks\n", b, float64(dom.Read(b, now, halfLife))/lb.DutyCycleOne)
	// Output:
	// after 1s: 25.5%
	// one half-life later: 12.2%
	// bucket 6, two tasks always runnable: 1.998 tasks
}
