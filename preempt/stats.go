package preempt

import (
	"fmt"
	"slices"
	"time"

	"github.com/scxkit/scxkit/latency"
	"github.com/scxkit/scxkit/scx"
)

// ClassStats are one class's counters, summed over CPUs, since the
// scheduler was loaded (a class keeps its counters across Write calls as
// long as it keeps its name).
type ClassStats struct {
	Class string
	// Kicks counts preemption kicks sent for its waking tasks.
	Kicks uint64
	// Preempted counts its tasks stopped while runnable before their
	// slice ran out, other than by their own sched_yield: by a kick, or
	// by a configuration change that shortened the slice. Preemption by
	// higher scheduling classes (RT, deadline) is not counted.
	Preempted uint64
	// Kept counts preemption kicks that landed on its no-preempt tasks,
	// which ran on.
	Kept uint64
	// RunOns counts slices it got past the first under TickRunOn.
	RunOns uint64
	// Starved counts the times it was boosted above all classes for
	// 100ms because none of its queued tasks had run for 500ms (the
	// starvation bound).
	Starved uint64
	// Runtime is how long its tasks ran.
	Runtime time.Duration
	// Wakeups is the number of wakeup-to-run waits of its tasks; Wait
	// their histogram (bounds latency.Log2Bounds) and sum.
	Wakeups uint64
	Wait    latency.Histogram
}

// String summarizes s on one line.
func (s *ClassStats) String() string {
	return fmt.Sprintf("%s: run=%dms wakeups=%d wait_p50=%dus wait_p99=%dus kicks=%d preempted=%d kept=%d run_ons=%d starved=%d",
		s.Class, s.Runtime.Milliseconds(), s.Wakeups, s.Wait.Percentile(50).Microseconds(), s.Wait.Percentile(99).Microseconds(),
		s.Kicks, s.Preempted, s.Kept, s.RunOns, s.Starved)
}

// Read returns the counters of every class in force, in priority order,
// reusing dst's storage (its elements' histograms included): a caller
// that passes the last result back allocates nothing. Before Bind it
// fails with scx.ErrNotBound.
func (c *Controller) Read(dst []ClassStats) ([]ClassStats, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.read(dst[:0])
}

// read appends the counters of every class to dst; c.mu is held.
func (c *Controller) read(dst []ClassStats) ([]ClassStats, error) {
	if !c.bound {
		return dst, fmt.Errorf("preempt: read counters: %w", scx.ErrNotBound)
	}
	nb := len(c.bounds) + 1
	for _, k := range c.cfg.Classes {
		perCPU, err := c.stats.Lookup(uint32(c.ids[k.Name]))
		if err != nil {
			return dst, fmt.Errorf("preempt: read counters of class %q: %w", k.Name, err)
		}
		// Grow dst by one, keeping the storage of an element beyond
		// its length (the caller's last result).
		if len(dst) < cap(dst) {
			dst = dst[:len(dst)+1]
		} else {
			dst = append(dst, ClassStats{})
		}
		s := &dst[len(dst)-1]
		counts := s.Wait.Counts
		if cap(counts) < nb {
			counts = make([]uint64, nb)
		}
		counts = counts[:nb]
		clear(counts)
		*s = ClassStats{Class: k.Name, Wait: latency.Histogram{Bounds: c.bounds, Counts: counts}}
		for i := range perCPU {
			v := &perCPU[i]
			s.Kicks += v.Preempts
			s.Preempted += v.Preempted
			s.Kept += v.Kept
			s.RunOns += v.RunOns
			s.Starved += v.Starved
			s.Runtime += time.Duration(v.RuntimeNs)
			s.Wakeups += v.Wakeups
			s.Wait.Sum += time.Duration(v.WaitNs)
			for b, n := range v.WaitBuckets {
				counts[b] += n
			}
		}
	}
	return dst, nil
}

// The stats of Stats, by index.
const (
	statGeneration = iota
	statKicks
	statPreempted
	statKept
	statRunOns
	statStarved
	statRuntime
	statWakeups
	statWait
	statWaitP50
	statWaitP99
)

// stats are the descriptions Stats returns.
var stats = []scx.StatDesc{
	statGeneration: {Name: "generation", Kind: scx.Gauge,
		Help: "Generation of the class configuration in force: 1 after the first, one more with every change written."},
	statKicks: {Name: "kicks", Kind: scx.Counter, Label: "class",
		Help: "Preemption kicks sent for the class's waking tasks."},
	statPreempted: {Name: "preempted", Kind: scx.Counter, Label: "class",
		Help: "The class's tasks stopped while runnable before their slice ran out, other than by their own sched_yield."},
	statKept: {Name: "kept", Kind: scx.Counter, Label: "class",
		Help: "Preemption kicks that landed on the class's no-preempt tasks, which ran on."},
	statRunOns: {Name: "run_ons", Kind: scx.Counter, Label: "class",
		Help: "Slices the class's tasks got past their first under tick=runon."},
	statStarved: {Name: "starved", Kind: scx.Counter, Label: "class",
		Help: "Boosts of the class above all others by the starvation bound (100ms after 500ms without progress)."},
	statRuntime: {Name: "runtime_ns", Kind: scx.Counter, Label: "class",
		Help: "How long the class's tasks ran, in nanoseconds."},
	statWakeups: {Name: "wakeups", Kind: scx.Counter, Label: "class",
		Help: "Wakeup-to-run waits of the class's tasks measured (from ops.runnable to ops.running)."},
	statWait: {Name: "wait_ns", Kind: scx.Counter, Label: "class",
		Help: "Sum of the class's wakeup-to-run waits, in nanoseconds."},
	statWaitP50: {Name: "wait_p50_ns", Kind: scx.Gauge, Label: "class",
		Help: "Median wakeup-to-run wait of the class's tasks since the scheduler was loaded, in nanoseconds (from a log2 histogram)."},
	statWaitP99: {Name: "wait_p99_ns", Kind: scx.Gauge, Label: "class",
		Help: "99th percentile wakeup-to-run wait of the class's tasks since the scheduler was loaded, in nanoseconds (from a log2 histogram)."},
}

// Stats implements scx.Reporter: the generation of the configuration
// in force, and per class (Label "class", the class's name) what
// ClassStats holds: kicks, preempted, kept, run_ons, starved, runtime_ns,
// wakeups, wait_ns and the wait's p50 and p99.
func (c *Controller) Stats() []scx.StatDesc { return slices.Clone(stats) }

// ReadStats implements scx.Reporter. It allocates nothing in steady
// state: the class names are the labels, and the counters are read into
// a buffer the Controller keeps.
func (c *Controller) ReadStats(dst []scx.Sample) ([]scx.Sample, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var err error
	c.statBuf, err = c.read(c.statBuf[:0])
	if err != nil {
		return dst, err
	}
	dst = append(dst, scx.Sample{Stat: statGeneration, Value: float64(c.gen)})
	for i := range c.statBuf {
		s := &c.statBuf[i]
		dst = append(dst,
			scx.Sample{Stat: statKicks, Label: s.Class, Value: float64(s.Kicks)},
			scx.Sample{Stat: statPreempted, Label: s.Class, Value: float64(s.Preempted)},
			scx.Sample{Stat: statKept, Label: s.Class, Value: float64(s.Kept)},
			scx.Sample{Stat: statRunOns, Label: s.Class, Value: float64(s.RunOns)},
			scx.Sample{Stat: statStarved, Label: s.Class, Value: float64(s.Starved)},
			scx.Sample{Stat: statRuntime, Label: s.Class, Value: float64(s.Runtime)},
			scx.Sample{Stat: statWakeups, Label: s.Class, Value: float64(s.Wakeups)},
			scx.Sample{Stat: statWait, Label: s.Class, Value: float64(s.Wait.Sum)},
			scx.Sample{Stat: statWaitP50, Label: s.Class, Value: float64(s.Wait.Percentile(50))},
			scx.Sample{Stat: statWaitP99, Label: s.Class, Value: float64(s.Wait.Percentile(99))},
		)
	}
	return dst, nil
}
