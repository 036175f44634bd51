package lb

import (
	"errors"
	"fmt"
	"math"
	"math/bits"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// Names of the maps and constants lb.bpf.h defines.
const (
	bpfTasks    = "sk_lb_tasks"
	bpfPlan     = "sk_lb_plan"
	bpfDomStats = "sk_lb_domain_stats"
	bpfDomains  = "sk_lb_domains"
	bpfHalfLife = "sk_lb_half_life_ns"
)

// Tracker connects the balancer to a loaded scheduler that includes
// scxkit/lb.bpf.h: it reads the tasks the BPF side tracks (duty cycle,
// domain, weight, allowed domains) and the domains' duty cycles, and writes
// migration plans for the BPF side to apply on each task's next enqueue.
//
// Each method keeps its own scratch space, so different methods may run
// on different goroutines at once (a balancing round calling Tasks and
// Apply while a stats loop calls DomainCounters), but one method must not
// run twice at once.
type Tracker struct {
	tasks, plan, stats, domains *ebpf.Map
	halfLife                    uint64
	perCPU                      []lbtypesSkLbDomainCounters
	domain                      lbtypesSkLbDomain
	// affinity backs the Affinity of the tasks Tasks returns.
	affinity []uint64
}

// NewTracker finds lb.bpf.h's maps in coll.
func NewTracker(coll *ebpf.Collection) (*Tracker, error) {
	t := &Tracker{tasks: coll.Maps[bpfTasks], plan: coll.Maps[bpfPlan], stats: coll.Maps[bpfDomStats], domains: coll.Maps[bpfDomains]}
	hl := coll.Variables[bpfHalfLife]
	if t.tasks == nil || t.plan == nil || t.stats == nil || t.domains == nil || hl == nil {
		return nil, fmt.Errorf("lb: tracker: the object lacks one of %s, %s, %s, %s and %s: include scxkit/lb.bpf.h", bpfTasks, bpfPlan, bpfDomains, bpfDomStats, bpfHalfLife)
	}
	if err := hl.Get(&t.halfLife); err != nil {
		return nil, fmt.Errorf("lb: tracker: %s: %w", bpfHalfLife, err)
	}
	n, err := ebpf.PossibleCPU()
	if err != nil {
		return nil, fmt.Errorf("lb: tracker: %w", err)
	}
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
//
// A task that may run in only some of the domains gets them as
// Task.Affinity, and Task.Pinned if that is one domain or none; the
// Affinity slices share memory that the next call reuses.
func (t *Tracker) Tasks(dst []Task, now uint64, nrDomains int) ([]Task, error) {
	if nrDomains < 1 || nrDomains > MaxTrackedDomains {
		return dst[:0], loadErr("Tracker.Tasks: %d domains: lb.bpf.h tracks 1 to %d", nrDomains, MaxTrackedDomains)
	}
	dst = dst[:0]
	t.affinity = t.affinity[:0]
	all := ^uint64(0) >> (64 - nrDomains)
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
		task := Task{
			ID:        uint64(pid),
			Domain:    int(rec.Domain),
			Weight:    float64(max(rec.Weight, 1)),
			DutyCycle: float64(dc.Read(now, t.halfLife)) / DutyCycleOne,
		}
		if allowed := rec.Allowed & all; allowed != all {
			i := len(t.affinity)
			t.affinity = append(t.affinity, allowed)
			task.Affinity = t.affinity[i : i+1 : i+1]
			task.Pinned = bits.OnesCount64(allowed) <= 1
		}
		dst = append(dst, task)
	}
	if err := it.Err(); err != nil {
		return dst, fmt.Errorf("lb: read %s: %w", bpfTasks, err)
	}
	return dst, nil
}

// MaxTrackedDomains is the number of domains lb.bpf.h can track
// (SK_LB_MAX_DOMAINS): a task's allowed domains are a 64-bit mask.
const MaxTrackedDomains = 64

// DomainLoad is a domain's load as the BPF half's per-domain duty cycles
// see it: every runnable task of the domain counts in the bucket of its
// weight (see DutyCycleBucket), without a pass over the tasks.
type DomainLoad struct {
	// Buckets[b] is the average number of runnable tasks of bucket b:
	// the sum of their duty cycles.
	Buckets [DutyCycleBuckets]float64
	// Runnable is the average number of runnable tasks in the domain,
	// the sum of its tasks' duty cycles: the sum of Buckets.
	Runnable float64
	// Load estimates the domain's load, the sum of weight × duty cycle,
	// counting each bucket at BucketWeight: within a factor of √2 of the
	// true load, exact for tasks of weight 2^(b+1/2).
	Load float64
}

// BucketWeight is the weight that DomainLoad.Load counts the tasks of
// bucket b at: 2^(b+1/2), the geometric mean of the bucket's bounds, so
// that no weight in [2^b, 2^(b+1)) is off by more than a factor of √2.
func BucketWeight(b int) float64 {
	return math.Ldexp(math.Sqrt2, b)
}

// DomainLoads appends to dst[:0] the loads of domains 0..n-1 as of now and
// returns it.
func (t *Tracker) DomainLoads(dst []DomainLoad, now uint64, n int) ([]DomainLoad, error) {
	dst = dst[:0]
	for d := range n {
		if err := t.domains.Lookup(uint32(d), &t.domain); err != nil {
			return dst, fmt.Errorf("lb: read %s[%d]: %w", bpfDomains, d, err)
		}
		var l DomainLoad
		for b, rec := range t.domain.Dc.Buckets {
			dc := DutyCycle{LastNs: rec.LastNs, Acc: rec.Acc, Avg: rec.Avg, Running: rec.Running}
			v := float64(dc.Read(now, t.halfLife)) / DutyCycleOne
			l.Buckets[b] = v
			l.Runnable += v
			l.Load += v * BucketWeight(b)
		}
		dst = append(dst, l)
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
	// Refused counts planned moves out of the domain that the BPF side
	// did not apply, as the task may not run in the destination: its
	// affinity changed after the plan was made.
	Refused uint64
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
			c.Refused += p.Refused
		}
		dst = append(dst, c)
	}
	return dst, nil
}
