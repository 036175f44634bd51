package smt

import (
	"fmt"
	"time"

	"github.com/scxkit/scxkit/scx"
)

// Counters are one class's counters, summed over CPUs since attach.
type Counters struct {
	Class Class
	// Runtime is how long the class's tasks ran.
	Runtime time.Duration
	// ForcedIdle is the time sibling CPUs spent forced idle because this
	// class held their core while they had work of another class.
	ForcedIdle time.Duration
	// ForcedIdleEvents counts the forced-idle intervals charged.
	ForcedIdleEvents uint64
	// Handovers counts the times this class took a core over.
	Handovers uint64
	// Preempted counts the takeovers that kicked this class's tasks off a
	// core.
	Preempted uint64
	// Violations counts the times a task of this class started running
	// while a sibling ran another class; it should stay 0.
	Violations uint64
}

// String formats c on one line: name, run time, forced idle (intervals),
// handovers, preemptions and violations.
func (c Counters) String() string {
	return fmt.Sprintf("%s run=%dms fi=%dms fi_n=%d ho=%d pre=%d viol=%d", c.Class.Name(),
		c.Runtime.Milliseconds(), c.ForcedIdle.Milliseconds(), c.ForcedIdleEvents, c.Handovers, c.Preempted, c.Violations)
}

// Read returns every class's counters, in class order, in dst's storage
// (dst[:0] grown as needed): with the dst of the previous call it
// allocates no slice. It may be called from any goroutine; before Bind it
// returns an error wrapping scx.ErrNotBound.
func (l *Layout) Read(dst []Counters) ([]Counters, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.read(dst[:0])
}

// read appends every class's counters to dst. Caller holds l.mu.
func (l *Layout) read(dst []Counters) ([]Counters, error) {
	if !l.bound {
		return dst, fmt.Errorf("smt: read counters: %w", scx.ErrNotBound)
	}
	for _, c := range l.Classes {
		perCPU, err := l.stats.Lookup(c.key())
		if err != nil {
			return dst, fmt.Errorf("smt: read %s: class %s (key %d): %w", bpfStats, c.Name(), c.key(), err)
		}
		out := Counters{Class: c}
		for _, p := range perCPU {
			out.Runtime += time.Duration(p.RuntimeNs)
			out.ForcedIdle += time.Duration(p.ForcedIdleNs)
			out.ForcedIdleEvents += p.ForcedIdleEvents
			out.Handovers += p.Handovers
			out.Preempted += p.Preempted
			out.Violations += p.Violations
		}
		dst = append(dst, out)
	}
	return dst, nil
}

// Violations returns the total violations: tasks of two classes found
// running on siblings at once. It should be 0. Before Bind it returns an
// error wrapping scx.ErrNotBound.
func (l *Layout) Violations() (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.violations()
}

func (l *Layout) violations() (uint64, error) {
	if !l.bound {
		return 0, fmt.Errorf("smt: read violations: %w", scx.ErrNotBound)
	}
	// Into a field: a local would escape through Get and allocate.
	if err := l.objs.Violations.Get(&l.viol); err != nil {
		return 0, fmt.Errorf("smt: read %s: %w", bpfViolations, err)
	}
	return l.viol, nil
}

// Indexes of Stats.
const (
	statRuntime = iota
	statForcedIdle
	statForcedIdleEvents
	statHandovers
	statPreempted
	statClassViolations
	statViolations
)

// Stats implements scx.Reporter: per class (label "class", the cgroup
// path or "system") the fields of Counters, and the total violations.
func (l *Layout) Stats() []scx.StatDesc {
	return []scx.StatDesc{
		statRuntime:          {Name: "runtime_ns", Help: "Time the class's tasks ran.", Kind: scx.Counter, Label: "class"},
		statForcedIdle:       {Name: "forced_idle_ns", Help: "Time sibling CPUs stayed idle with work of another class because this class held their core.", Kind: scx.Counter, Label: "class"},
		statForcedIdleEvents: {Name: "forced_idle_events", Help: "Forced-idle intervals charged to the class.", Kind: scx.Counter, Label: "class"},
		statHandovers:        {Name: "handovers", Help: "Times the class took a core over from another class.", Kind: scx.Counter, Label: "class"},
		statPreempted:        {Name: "preempted", Help: "Takeovers that kicked the class's tasks off a core.", Kind: scx.Counter, Label: "class"},
		statClassViolations:  {Name: "class_violations", Help: "Times a task of the class started running beside a sibling running another class; should stay 0.", Kind: scx.Counter, Label: "class"},
		statViolations:       {Name: "violations", Help: "Times a task started running beside a sibling running another class, all classes; should stay 0.", Kind: scx.Counter},
	}
}

// ReadStats implements scx.Reporter: it appends the values of Stats to
// dst. It may be called from any goroutine.
func (l *Layout) ReadStats(dst []scx.Sample) ([]scx.Sample, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var err error
	if l.buf, err = l.read(l.buf[:0]); err != nil {
		return dst, err
	}
	for i := range l.buf {
		c := &l.buf[i]
		name := c.Class.Name()
		dst = append(dst,
			scx.Sample{Stat: statRuntime, Label: name, Value: float64(c.Runtime)},
			scx.Sample{Stat: statForcedIdle, Label: name, Value: float64(c.ForcedIdle)},
			scx.Sample{Stat: statForcedIdleEvents, Label: name, Value: float64(c.ForcedIdleEvents)},
			scx.Sample{Stat: statHandovers, Label: name, Value: float64(c.Handovers)},
			scx.Sample{Stat: statPreempted, Label: name, Value: float64(c.Preempted)},
			scx.Sample{Stat: statClassViolations, Label: name, Value: float64(c.Violations)})
	}
	v, err := l.violations()
	if err != nil {
		return dst, err
	}
	return append(dst, scx.Sample{Stat: statViolations, Value: float64(v)}), nil
}

var _ scx.Reporter = (*Layout)(nil)
