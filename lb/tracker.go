package lb

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// Names of the maps and constants lb.bpf.h defines.
const (
	bpfTasks    = "sk_lb_tasks"
	bpfPlan     = "sk_lb_plan"
	bpfDomStats = "sk_lb_domain_stats"
	bpfHalfLife = "sk_lb_half_life_ns"
)

// Tracker connects the balancer to a loaded scheduler that includes
// schedkit/lb.bpf.h: it reads the tasks the BPF side tracks (duty cycle,
// domain, weight) and writes migration plans for the BPF side to apply on
// each task's next enqueue.
type Tracker struct {
	tasks, plan, stats *ebpf.Map
	halfLife           uint64
	ncpu               int
	perCPU             []lbtypesSkLbDomainCounters
}

// NewTracker finds lb.bpf.h's maps in coll.
func NewTracker(coll *ebpf.Collection) (*Tracker, error) {
	t := &Tracker{tasks: coll.Maps[bpfTasks], plan: coll.Maps[bpfPlan], stats: coll.Maps[bpfDomStats]}
	hl := coll.Variables[bpfHalfLife]
	if t.tasks == nil || t.plan == nil || t.stats == nil || hl == nil {
		return nil, fmt.Errorf("lb: tracker: the object lacks %s, %s, %s or %s: include schedkit/lb.bpf.h", bpfTasks, bpfPlan, bpfDomStats, bpfHalfLife)
	}
	if err := hl.Get(&t.halfLife); err != nil {
		return nil, fmt.Errorf("lb: tracker: %s: %w", bpfHalfLife, err)
	}
	n, err := ebpf.PossibleCPU()
	if err != nil {
		return nil, fmt.Errorf("lb: tracker: %w", err)
	}
	t.ncpu = n
	t.perCPU = make([]lbtypesSkLbDomainCounters, n)
	return t, nil
}

// Now returns the time on the clock BPF's bpf_ktime_get_ns reads
// (CLOCK_MONOTONIC), in ns: duty cycles are read as of this time.
func Now() uint64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return uint64(ts.Nano())
}

// Tasks appends to dst[:0] every tracked task, with its duty cycle as of
// now, and returns it. Tasks whose domain is not below nrDomains are
// skipped.
func (t *Tracker) Tasks(dst []Task, now uint64, nrDomains int) ([]Task, error) {
	dst = dst[:0]
	var (
		pid int32
		rec lbtypesSkLbTask
	)
	it := t.tasks.Iterate()
	for it.Next(&pid, &rec) {
		if int(rec.Domain) >= nrDomains {
			continue
		}
		dc := DutyCycle{LastNs: rec.Dc.LastNs, Acc: rec.Dc.Acc, Avg: rec.Dc.Avg, Running: rec.Dc.Running}
		dst = append(dst, Task{
			ID:        uint64(pid),
			Domain:    int(rec.Domain),
			Weight:    float64(max(rec.Weight, 1)),
			DutyCycle: float64(dc.Read(now, t.halfLife)) / DutyCycleOne,
			Pinned:    rec.Pinned != 0,
		})
	}
	if err := it.Err(); err != nil {
		return dst, fmt.Errorf("lb: read %s: %w", bpfTasks, err)
	}
	return dst, nil
}

// Apply writes plan for the BPF side: each task moves to its Migration.To
// domain at its next enqueue. Entries for tasks that exited in between are
// dropped by the BPF side when the task is disabled.
func (t *Tracker) Apply(plan []Migration) error {
	var errs []error
	for _, m := range plan {
		pid, to := int32(m.Task), uint32(m.To)
		if err := t.plan.Put(&pid, &to); err != nil {
			errs = append(errs, fmt.Errorf("task %d: %w", m.Task, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("lb: apply plan: %w", err)
	}
	return nil
}

// DomainCounters are a domain's counters, summed over CPUs.
type DomainCounters struct {
	RuntimeNs  uint64 // time the domain's tasks ran
	MigratedIn uint64 // tasks a plan moved into the domain
}

// DomainCounters appends to dst[:0] the counters of domains 0..n-1.
func (t *Tracker) DomainCounters(dst []DomainCounters, n int) ([]DomainCounters, error) {
	dst = dst[:0]
	for d := range n {
		if err := t.stats.Lookup(uint32(d), t.perCPU); err != nil {
			return dst, fmt.Errorf("lb: read %s[%d]: %w", bpfDomStats, d, err)
		}
		var c DomainCounters
		for _, p := range t.perCPU {
			c.RuntimeNs += p.RuntimeNs
			c.MigratedIn += p.MigratedIn
		}
		dst = append(dst, c)
	}
	return dst, nil
}
