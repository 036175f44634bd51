//go:build linux

package workload

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// String summarizes r for people: the total time, the slowest thread, and
// per kind of thread the work each had to do and the minimum, median and
// maximum of their times, e.g.
//
//	workload: 4 threads in 412.3ms, slowest spin 1 (410.9ms)
//	  spin x2 (2200 units): min 398.1ms, median 404.5ms, max 410.9ms
//	  pingpong x2 (2000 round trips): min 101.2ms, median 101.3ms, max 101.4ms
//
// A kind's line ends with the number of unfinished threads if there are any.
func (r *Report) String() string {
	if r == nil {
		return "workload: no report"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "workload: %d threads in %v", len(r.Threads), roundDuration(r.Elapsed))
	if len(r.Threads) > 0 {
		slowest := r.Threads[0]
		for _, t := range r.Threads[1:] {
			if t.Elapsed > slowest.Elapsed {
				slowest = t
			}
		}
		fmt.Fprintf(&b, ", slowest %s %d (%v)", slowest.Kind, slowest.ID, roundDuration(slowest.Elapsed))
	}
	for _, kind := range []string{KindSpin, KindPingPong} {
		var times []time.Duration
		unfinished, want := 0, 0
		for _, t := range r.Threads {
			if t.Kind != kind {
				continue
			}
			times = append(times, t.Elapsed)
			want = max(want, t.Want)
			if !t.Finished() {
				unfinished++
			}
		}
		if len(times) == 0 {
			continue
		}
		slices.Sort(times)
		unit := "units"
		if kind == KindPingPong {
			unit = "round trips"
		}
		median := times[len(times)/2]
		if len(times)%2 == 0 {
			median = (times[len(times)/2-1] + median) / 2
		}
		fmt.Fprintf(&b, "\n  %s x%d (%d %s): min %v, median %v, max %v", kind, len(times), want, unit,
			roundDuration(times[0]), roundDuration(median), roundDuration(times[len(times)-1]))
		if unfinished > 0 {
			fmt.Fprintf(&b, ", %d unfinished", unfinished)
		}
	}
	return b.String()
}
