package lb

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/bits"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/scxkit/scxkit/dsq"
	"github.com/scxkit/scxkit/internal/percpu"
	"github.com/scxkit/scxkit/scx"
	"golang.org/x/sys/unix"
)

// MaxTrackedDomains is the number of domains lb.bpf.h can track
// (SK_LB_MAX_DOMAINS): a task's allowed domains are a 64-bit mask.
// TestConstantsMatchBPF checks it against the compiler's value.
const MaxTrackedDomains = 64

// A Balancer is a component with periodic work and stats.
var (
	_ scx.Worker   = (*Balancer)(nil)
	_ scx.Reporter = (*Balancer)(nil)
)

// bpfObjects are the maps and globals lb.bpf.h defines, and the DSQ
// layout of dsq.bpf.h whose DSQs are its domains.
type bpfObjects struct {
	Tasks       *ebpf.Map      `ebpf:"sk_lb_tasks"`
	Plan        *ebpf.Map      `ebpf:"sk_lb_plan"`
	Domains     *ebpf.Map      `ebpf:"sk_lb_domains"`
	DomainStats *ebpf.Map      `ebpf:"sk_lb_domain_stats"`
	HalfLife    *ebpf.Variable `ebpf:"sk_lb_half_life_ns"`
	DSQLayout   *ebpf.Variable `ebpf:"sk_dsq_layout"`
}

// bpfHeader is the header a scheduler includes for the lb component.
const bpfHeader = "scxkit/lb.bpf.h"

// component is what a Balancer holds as the component "lb".
type component struct {
	// mu guards the binding and the scratch of the Read and Write
	// methods.
	mu       sync.Mutex
	objs     bpfObjects // nil fields until Bind
	halfLife uint64
	log      *slog.Logger
	perCPU   *percpu.Reader[uint32, lbtypesSkLbDomainCounters]
	domain   lbtypesSkLbDomain
	affinity []uint64 // backs the Affinity of the tasks ReadTasks returns

	// What the rounds reuse; only Work's goroutine touches them.
	round roundState

	// statsMu guards what ReadStats reports of the rounds, and its own
	// scratch. It is taken before mu.
	statsMu       sync.Mutex
	last          roundSummary
	statsCounters []DomainCounters
}

// roundState is the scratch space of the balancing rounds.
type roundState struct {
	tasks    []Task
	affinity []uint64
	loads    []DomainLoad
	domain   lbtypesSkLbDomain
	plan     []Migration
	fromTask []float64 // per domain, for the debug log
	runnable []float64 // per domain, for the debug log
}

// roundSummary is what the stats report of the rounds so far.
type roundSummary struct {
	rounds, moved, crossNode uint64
	before, after            float64   // the last round's imbalance
	runnable, load           []float64 // per domain, at the last round
}

// DomainsOf returns the domains of a DSQ layout, one per DSQ: the domains
// of the BPF side, where a CPU's domain is the index of its DSQ
// (sk_dsq_of_cpu). A DSQ whose CPUs span NUMA nodes counts as node 0.
func DomainsOf(l *dsq.Layout) []Domain {
	doms := make([]Domain, len(l.DSQs))
	for i, d := range l.DSQs {
		doms[i] = Domain{ID: d.Index, Node: max(d.Node, 0), CPUs: d.CPUs.Weight()}
	}
	return doms
}

// Name implements scx.Component: a Balancer is the component "lb".
func (b *Balancer) Name() string { return "lb" }

// Needs implements scx.Component. The balancer builds on the "dsq"
// component, whose DSQs are its domains, and needs the callbacks that
// track tasks and apply its plans (see the package documentation). It
// owns none: the dsq layout decides where ops.enqueue inserts, into the
// domain sk_lb_domain returns.
func (b *Balancer) Needs() scx.Needs {
	return scx.Needs{
		Requires:  []string{"dsq"},
		Callbacks: []string{"enable", "disable", "runnable", "quiescent", "enqueue", "stopping", "set_cpumask"},
		Objects:   (*bpfObjects)(nil),
		Header:    bpfHeader,
	}
}

// Bind implements scx.Component: it finds lb.bpf.h's maps, reads the duty
// cycles' half-life, and checks that the balancer's domains are the DSQs
// of the scheduler's dsq layout, which Bind of the "dsq" component wrote
// before. Its error wraps ErrTooBig for more domains than lb.bpf.h tracks
// (MaxTrackedDomains) and ErrInvalid for domains that are not the DSQs.
func (b *Balancer) Bind(bd *scx.Binding) error {
	n := len(b.domains)
	if n > MaxTrackedDomains {
		return fmt.Errorf("lb: bind: %d domains: %w: lb.bpf.h tracks at most %d (SK_LB_MAX_DOMAINS), as a task's allowed domains are a 64-bit mask", n, ErrTooBig, MaxTrackedDomains)
	}
	var objs bpfObjects
	if err := bd.Assign(&objs); err != nil {
		return err // names the component and every missing object
	}
	var halfLife uint64
	if err := objs.HalfLife.Get(&halfLife); err != nil {
		return fmt.Errorf("lb: bind: sk_lb_half_life_ns: %w", err)
	}
	nr, err := dsqCount(bd, objs.DSQLayout)
	if err != nil {
		return err
	}
	if nr != n {
		return fmt.Errorf("lb: bind: %d domains, but the dsq layout has %d DSQs: %w: build the domains from the layout (lb.DomainsOf) and put the dsq component before lb", n, nr, ErrInvalid)
	}
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		return fmt.Errorf("lb: bind: %w", err)
	}

	perCPU, err := percpu.New[uint32, lbtypesSkLbDomainCounters](objs.DomainStats, ncpu)
	if err != nil {
		return fmt.Errorf("lb: bind: %w", err)
	}
	c := &b.comp
	c.mu.Lock()
	c.objs = objs
	c.halfLife = halfLife
	c.log = bd.Logger()
	c.perCPU = perCPU
	c.mu.Unlock()

	c.statsMu.Lock()
	c.last = roundSummary{runnable: make([]float64, n), load: make([]float64, n)}
	c.statsMu.Unlock()
	return nil
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

// ReadTasks appends to dst[:0] every task the BPF side tracks in one of
// the balancer's domains, with its duty cycle as of now, and returns it.
// Before Bind it fails with scx.ErrNotBound.
//
// A task that may run in only some of the domains gets them as
// Task.Affinity, and Task.Pinned if that is one domain or none; the
// Affinity slices share memory that the next call reuses.
func (b *Balancer) ReadTasks(dst []Task) ([]Task, error) {
	c := &b.comp
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.objs.Tasks == nil {
		return dst[:0], fmt.Errorf("lb: read tasks: %w", scx.ErrNotBound)
	}
	return b.readTasks(dst[:0], &c.affinity, Now())
}

// readTasks appends the tracked tasks to dst, their restricted affinities
// to *affinity[:0]. It reads c.objs and c.halfLife, which Bind sets before
// Work runs.
func (b *Balancer) readTasks(dst []Task, affinity *[]uint64, now uint64) ([]Task, error) {
	c := &b.comp
	n := len(b.domains)
	*affinity = (*affinity)[:0]
	all := ^uint64(0) >> (64 - n)
	var (
		pid int32
		rec lbtypesSkLbTask
	)
	it := c.objs.Tasks.Iterate()
	for it.Next(&pid, &rec) {
		if int(rec.Domain) >= n {
			continue
		}
		dc := DutyCycle{LastNs: rec.Dc.LastNs, Acc: rec.Dc.Acc, Avg: rec.Dc.Avg, Running: rec.Dc.Running}
		task := Task{
			ID:        uint64(pid),
			Domain:    int(rec.Domain),
			Weight:    float64(max(rec.Weight, 1)),
			DutyCycle: float64(dc.Read(now, c.halfLife)) / DutyCycleOne,
		}
		if allowed := rec.Allowed & all; allowed != all {
			i := len(*affinity)
			*affinity = append(*affinity, allowed)
			task.Affinity = (*affinity)[i : i+1 : i+1]
			task.Pinned = bits.OnesCount64(allowed) <= 1
		}
		dst = append(dst, task)
	}
	if err := it.Err(); err != nil {
		return dst, fmt.Errorf("lb: read tasks: sk_lb_tasks: %w", err)
	}
	return dst, nil
}

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

// ReadLoads appends to dst[:0] the loads of the balancer's domains as of
// now, indexed by domain id, and returns it. Before Bind it fails with
// scx.ErrNotBound.
func (b *Balancer) ReadLoads(dst []DomainLoad) ([]DomainLoad, error) {
	c := &b.comp
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.objs.Domains == nil {
		return dst[:0], fmt.Errorf("lb: read loads: %w", scx.ErrNotBound)
	}
	return b.readLoads(dst[:0], &c.domain, Now())
}

// readLoads appends the domains' loads to dst, reading each into *rec.
func (b *Balancer) readLoads(dst []DomainLoad, rec *lbtypesSkLbDomain, now uint64) ([]DomainLoad, error) {
	c := &b.comp
	for d := range b.domains {
		// The record holds a bpf_spin_lock: read it under the lock.
		if err := c.objs.Domains.LookupWithFlags(uint32(d), rec, ebpf.LookupLock); err != nil {
			return dst, fmt.Errorf("lb: read loads: sk_lb_domains[%d]: %w", d, err)
		}
		var l DomainLoad
		for i, r := range rec.Dc.Buckets {
			dc := DutyCycle{LastNs: r.LastNs, Acc: r.Acc, Avg: r.Avg, Running: r.Running}
			v := float64(dc.Read(now, c.halfLife)) / DutyCycleOne
			l.Buckets[i] = v
			l.Runnable += v
			l.Load += v * BucketWeight(i)
		}
		dst = append(dst, l)
	}
	return dst, nil
}

// WritePlan hands plan to the BPF side: each task moves to its
// Migration.To domain at its next enqueue, where the BPF side checks the
// move against the task's affinity again. Entries for tasks that exited
// in between are dropped by the BPF side when the task is disabled.
// Before Bind it fails with scx.ErrNotBound.
func (b *Balancer) WritePlan(plan []Migration) error {
	c := &b.comp
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.objs.Plan == nil {
		return fmt.Errorf("lb: write plan: %w", scx.ErrNotBound)
	}
	return b.writePlan(plan)
}

func (b *Balancer) writePlan(plan []Migration) error {
	var errs []error
	for _, m := range plan {
		pid, to := int32(m.Task), uint32(m.To)
		if err := b.comp.objs.Plan.Put(&pid, &to); err != nil {
			errs = append(errs, fmt.Errorf("task %d: %w", m.Task, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("lb: write plan: %w", err)
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

// ReadCounters appends to dst[:0] the counters of the balancer's
// domains, indexed by domain id, and returns it. Before Bind it fails with
// scx.ErrNotBound.
func (b *Balancer) ReadCounters(dst []DomainCounters) ([]DomainCounters, error) {
	c := &b.comp
	c.mu.Lock()
	defer c.mu.Unlock()
	return b.readCounters(dst[:0])
}

// readCounters appends the counters to dst; c.mu is held.
func (b *Balancer) readCounters(dst []DomainCounters) ([]DomainCounters, error) {
	c := &b.comp
	if c.objs.DomainStats == nil {
		return dst, fmt.Errorf("lb: read counters: %w", scx.ErrNotBound)
	}
	for d := range b.domains {
		perCPU, err := c.perCPU.Lookup(uint32(d))
		if err != nil {
			return dst, fmt.Errorf("lb: read counters: sk_lb_domain_stats[%d]: %w", d, err)
		}
		var dc DomainCounters
		for _, p := range perCPU {
			dc.RuntimeNs += p.RuntimeNs
			dc.MigratedIn += p.MigratedIn
			dc.Refused += p.Refused
		}
		dst = append(dst, dc)
	}
	return dst, nil
}

// Work implements scx.Worker: a balancing round every Options.Interval.
func (b *Balancer) Work() []scx.Periodic {
	return []scx.Periodic{{Name: "balance", Every: b.opts.Interval, Func: b.round}}
}

// round reads the tasks and the domains' loads, plans and writes the
// plan, and keeps what the stats report. With debug logging it logs the
// round, with each domain's runnable tasks two ways: summed over the
// tasks' own duty cycles, and from the domain's buckets.
func (b *Balancer) round(ctx context.Context, _ *scx.Scheduler) error {
	c := &b.comp
	r := &c.round
	now := Now()
	var err error
	if r.tasks, err = b.readTasks(r.tasks[:0], &r.affinity, now); err != nil {
		return err
	}
	if r.loads, err = b.readLoads(r.loads[:0], &r.domain, now); err != nil {
		return err
	}
	var st RoundStats
	if r.plan, st, err = b.Balance(r.plan, r.tasks); err != nil {
		return err
	}
	if err := b.writePlan(r.plan); err != nil {
		return err
	}

	c.statsMu.Lock()
	c.last.rounds++
	c.last.moved += uint64(st.Moved)
	c.last.crossNode += uint64(st.CrossNode)
	c.last.before, c.last.after = st.ImbalanceBefore, st.ImbalanceAfter
	for d, l := range r.loads {
		c.last.runnable[d], c.last.load[d] = l.Runnable, l.Load
	}
	c.statsMu.Unlock()

	if c.log.Enabled(ctx, slog.LevelDebug) {
		r.fromTask = append(r.fromTask[:0], make([]float64, len(b.domains))...)
		for _, t := range r.tasks {
			r.fromTask[t.Domain] += t.DutyCycle
		}
		r.runnable = r.runnable[:0]
		for _, l := range r.loads {
			r.runnable = append(r.runnable, l.Runnable)
		}
		c.log.Debug("balance", "tasks", len(r.tasks), "round", st,
			"runnable_tasks", floats(r.fromTask), "runnable_buckets", floats(r.runnable))
	}
	return nil
}

// floats formats v as comma-separated numbers with two decimals.
func floats(v []float64) string {
	var sb strings.Builder
	for i, f := range v {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, "%.2f", f)
	}
	return sb.String()
}

// The stats of a Balancer, in the order of Stats.
const (
	statRounds = iota
	statMoved
	statCrossNode
	statImbalanceBefore
	statImbalanceAfter
	statRuntime
	statRunnable
	statLoad
	statMigratedIn
	statRefused
)

// Stats implements scx.Reporter: the rounds, the tasks they moved and the
// imbalance of the last one, and per domain (label "domain", its id) the
// run time, runnable tasks and load, and the moves the BPF side applied
// and refused.
func (b *Balancer) Stats() []scx.StatDesc {
	return []scx.StatDesc{
		statRounds:          {Name: "rounds", Help: "Balancing rounds run.", Kind: scx.Counter},
		statMoved:           {Name: "moved_tasks", Help: "Migrations the rounds planned: tasks moved to another domain.", Kind: scx.Counter},
		statCrossNode:       {Name: "cross_node_moved_tasks", Help: "Migrations the rounds planned between domains of different NUMA nodes.", Kind: scx.Counter},
		statImbalanceBefore: {Name: "imbalance_before", Help: "Spread of load per CPU between the domains (highest minus lowest) before the last round's plan.", Kind: scx.Gauge},
		statImbalanceAfter:  {Name: "imbalance_after", Help: "Spread of load per CPU between the domains once the last round's plan is applied.", Kind: scx.Gauge},
		statRuntime:         {Name: "runtime_ns", Help: "Time the domain's tasks ran.", Kind: scx.Counter, Label: "domain"},
		statRunnable:        {Name: "runnable_tasks", Help: "Average number of runnable tasks in the domain, the sum of their duty cycles, at the last round.", Kind: scx.Gauge, Label: "domain"},
		statLoad:            {Name: "load", Help: "Load of the domain, weight times duty cycle of its runnable tasks from its weight buckets, at the last round.", Kind: scx.Gauge, Label: "domain"},
		statMigratedIn:      {Name: "migrated_in_tasks", Help: "Tasks a plan moved into the domain.", Kind: scx.Counter, Label: "domain"},
		statRefused:         {Name: "refused_moves", Help: "Planned moves out of the domain that the BPF side refused, as the task may no longer run in the destination.", Kind: scx.Counter, Label: "domain"},
	}
}

// ReadStats implements scx.Reporter. It may be called from any goroutine,
// also while Work runs, and allocates nothing once dst has grown.
func (b *Balancer) ReadStats(dst []scx.Sample) ([]scx.Sample, error) {
	c := &b.comp
	c.statsMu.Lock()
	defer c.statsMu.Unlock()
	c.mu.Lock()
	counters, err := b.readCounters(c.statsCounters[:0])
	c.mu.Unlock()
	if err != nil {
		return dst, err
	}
	c.statsCounters = counters
	last := &c.last
	dst = append(dst,
		scx.Sample{Stat: statRounds, Value: float64(last.rounds)},
		scx.Sample{Stat: statMoved, Value: float64(last.moved)},
		scx.Sample{Stat: statCrossNode, Value: float64(last.crossNode)},
		scx.Sample{Stat: statImbalanceBefore, Value: last.before},
		scx.Sample{Stat: statImbalanceAfter, Value: last.after},
	)
	for d, dc := range counters {
		dst = append(dst, scx.Sample{Stat: statRuntime, Label: b.labels[d], Value: float64(dc.RuntimeNs)})
	}
	for d, v := range last.runnable {
		dst = append(dst, scx.Sample{Stat: statRunnable, Label: b.labels[d], Value: v})
	}
	for d, v := range last.load {
		dst = append(dst, scx.Sample{Stat: statLoad, Label: b.labels[d], Value: v})
	}
	for d, dc := range counters {
		dst = append(dst, scx.Sample{Stat: statMigratedIn, Label: b.labels[d], Value: float64(dc.MigratedIn)})
	}
	for d, dc := range counters {
		dst = append(dst, scx.Sample{Stat: statRefused, Label: b.labels[d], Value: float64(dc.Refused)})
	}
	return dst, nil
}

// dsqCount returns the number of DSQs of the layout lb balances: from the
// "dsq" component bound before it in a scheduler, or, bound outside one
// (scx.NewBinding), from sk_dsq_layout, whose struct starts with nr.
func dsqCount(bd *scx.Binding, v *ebpf.Variable) (int, error) {
	if c, ok := bd.Required("dsq"); ok {
		if l, ok := c.(*dsq.Layout); ok {
			return len(l.DSQs), nil
		}
	}
	var layout []byte
	if err := v.Get(&layout); err != nil {
		return 0, fmt.Errorf("lb: bind: sk_dsq_layout: %w", err)
	}
	if len(layout) < 4 {
		return 0, fmt.Errorf("lb: bind: sk_dsq_layout is %d bytes: rebuild the object against this version of scxkit/dsq.h", len(layout))
	}
	return int(binary.NativeEndian.Uint32(layout)), nil
}
