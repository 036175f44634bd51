package smt

import (
	"fmt"
	"time"

	"github.com/cilium/ebpf"
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

// Reader reads the counters of a loaded scheduler that includes
// scxkit/smt.bpf.h. It is not safe for concurrent use.
type Reader struct {
	layout     *Layout
	stats      *ebpf.Map
	violations *ebpf.Variable
	perCPU     []smttypesSkSmtCounters
}

// NewReader finds smt.bpf.h's counters in coll; l maps them back to
// cgroup paths.
func NewReader(coll *ebpf.Collection, l *Layout) (*Reader, error) {
	r := &Reader{layout: l, stats: coll.Maps[bpfStats], violations: coll.Variables[bpfViolations]}
	if r.stats == nil || r.violations == nil {
		return nil, fmt.Errorf("smt: reader: the object lacks %s or %s: include scxkit/smt.bpf.h", bpfStats, bpfViolations)
	}
	n, err := ebpf.PossibleCPU()
	if err != nil {
		return nil, fmt.Errorf("smt: reader: %w", err)
	}
	r.perCPU = make([]smttypesSkSmtCounters, n)
	return r, nil
}

// Read appends every class's counters to dst[:0], in class order, and
// returns it.
func (r *Reader) Read(dst []Counters) ([]Counters, error) {
	dst = dst[:0]
	for _, c := range r.layout.Classes {
		if err := r.stats.Lookup(c.CgroupID, &r.perCPU); err != nil {
			return dst, fmt.Errorf("smt: read %s: cgroup %s (id %d): %w", bpfStats, c.Name(), c.CgroupID, err)
		}
		out := Counters{Class: c}
		for _, p := range r.perCPU {
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
// running on siblings at once. It should be 0.
func (r *Reader) Violations() (uint64, error) {
	var v uint64
	if err := r.violations.Get(&v); err != nil {
		return 0, fmt.Errorf("smt: read %s: %w", bpfViolations, err)
	}
	return v, nil
}

// String formats c on one line: name, run time, forced idle (intervals),
// handovers, preemptions and violations.
func (c Counters) String() string {
	return fmt.Sprintf("%s run=%dms fi=%dms fi_n=%d ho=%d pre=%d viol=%d", c.Class.Name(),
		c.Runtime.Milliseconds(), c.ForcedIdle.Milliseconds(), c.ForcedIdleEvents, c.Handovers, c.Preempted, c.Violations)
}
