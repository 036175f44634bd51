package lb

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Defaults for the zero fields of Options.
const (
	// DefaultPushThreshold makes a domain (or node) a pusher when its load
	// per CPU is more than 10% above the average.
	DefaultPushThreshold = 0.10
	// DefaultPullThreshold makes a domain (or node) a puller when its load
	// per CPU is more than 10% below the average.
	DefaultPullThreshold = 0.10
	// DefaultMaxMigrationsPerDomain bounds the migrations a domain takes
	// part in per round, so a round stays cheap and the BPF half's map of
	// planned migrations stays small; balancing converges over rounds.
	DefaultMaxMigrationsPerDomain = 16
	// DefaultMinTaskLoad leaves tasks whose load is below 5% of the
	// average load per CPU where they are: moving them would cost cache
	// misses and even out next to nothing.
	DefaultMinTaskLoad = 0.05
	// DefaultInterval is the time between two balancing rounds of a
	// bound Balancer: long enough for duty cycles (half-life 100ms) to
	// show a round's moves before the next.
	DefaultInterval = time.Second
)

// Options tune a Balancer. A nil *Options, like the zero value, uses the
// defaults.
type Options struct {
	// Interval is the time between two balancing rounds of the bound
	// balancer (Work). Zero means DefaultInterval.
	Interval time.Duration
	// PushThreshold is how far above the average load per CPU, as a
	// fraction of the average, a domain's load per CPU must be for it to
	// give tasks away; likewise for a node against the machine's average.
	// Zero means DefaultPushThreshold; it must be finite and non-negative.
	// Use a tiny value such as 1e-9 to balance any imbalance.
	PushThreshold float64
	// PullThreshold is how far below the average, as a fraction of it, a
	// domain's (or node's) load per CPU must be for it to take tasks. Zero
	// means DefaultPullThreshold; it must be in [0, 1).
	PullThreshold float64
	// MaxMigrationsPerDomain bounds how many migrations of a round may
	// start or end in one domain. Zero means DefaultMaxMigrationsPerDomain;
	// math.MaxInt means no limit.
	MaxMigrationsPerDomain int
	// MinTaskLoad is the least load of a task worth moving, as a fraction
	// of the average load per CPU of the machine (between nodes) or of the
	// node (between its domains). Zero means DefaultMinTaskLoad; it must
	// be in [0, 1]. Use a tiny value such as 1e-9 to move any task whose
	// move narrows a gap.
	MinTaskLoad float64
}

// Domain is a group of CPUs that share a load figure, typically the CPUs of
// one LLC.
type Domain struct {
	// ID is the domain's id, which Task.Domain, Task.Affinity and
	// Migration refer to. The ids of a Balancer's domains are 0 to n-1, in
	// any order.
	ID int
	// Node is the NUMA node of the domain, any non-negative number;
	// domains with equal Node form a node.
	Node int
	// CPUs is the domain's capacity in CPUs, at least 1. Loads are
	// compared per CPU, so a domain of 8 CPUs is balanced at twice the
	// load of a domain of 4.
	CPUs int
}

// Task is what Balance needs to know about a task.
type Task struct {
	// ID identifies the task in the plan, e.g. its pid.
	ID uint64
	// Domain is the id of the domain the task is in.
	Domain int
	// Weight is the task's scheduling weight, 1 to 10000 (100 for nice 0).
	Weight float64
	// DutyCycle is the fraction of time the task is runnable, in [0, 1].
	DutyCycle float64
	// Affinity is the set of domains the task may run in: bit d%64 of
	// Affinity[d/64] is set if domain d is allowed; domains past the end
	// are not. An empty Affinity allows every domain.
	Affinity []uint64
	// Pinned tasks are never moved, e.g. per-CPU kernel threads or tasks
	// whose affinity is a single domain.
	Pinned bool
}

// Allows reports whether the task may run in domain d.
func (t *Task) Allows(d int) bool {
	if len(t.Affinity) == 0 {
		return true
	}
	w := d / 64
	return d >= 0 && w < len(t.Affinity) && t.Affinity[w]&(1<<(d%64)) != 0
}

// Balancer balances load between domains. Balance plans one round of
// migrations from plain data, without a kernel, as tests and simulations
// use it. A Balancer is also the scheduler component "lb" (scx.Component,
// scx.Worker, scx.Reporter), the Go half of scxkit/lb.bpf.h: once bound,
// its Work runs a round every Options.Interval, reading the tasks the BPF
// side tracks (ReadTasks), planning (Balance) and handing the plan over
// (WritePlan).
//
// Balance keeps scratch space between calls, so that a round allocates
// nothing once the space has grown to the number of tasks; calls of
// Balance are serialized. The Read and Write methods and ReadStats may be
// called from any goroutine, also while Work runs.
type Balancer struct {
	opts    Options
	nrCPUs  int
	domains []Domain // as given to New, indexed by id
	labels  []string // domain ids, for the stats

	comp component // the binding, the rounds and the stats

	// mu serializes Balance, which uses what follows.
	mu sync.Mutex

	// Per domain, indexed by id.
	domCPUs []float64
	domNode []int // dense node index
	domLoad []float64
	budget  []int
	start   []int32 // tasks of domain d are at positions start[d]:start[d+1]
	inHead  []int32 // first task moved into the domain this round, or -1

	// Per node, indexed by dense node index.
	nodeDoms [][]int
	nodeCPUs []float64
	nodeLoad []float64

	// Per task, indexed by the task's position in tasks.
	weight, duty, adj []float64
	inNext            []int32 // next task moved into the same domain, or -1

	// Per position: tasks grouped by domain, with their loads, or
	// posPinned and posMoved, so that a scan reads sequential memory.
	// posTask holds the task's index, complemented (^i) if its affinity is
	// restricted.
	posTask []int32
	posLoad []float64

	// Group lists and the failed domain-pair bitmap of a stage.
	push, pull, srcs, dsts []int
	failed                 []uint64
}

// New returns a Balancer for domains, whose ids must be 0 to
// len(domains)-1; nil opts means the defaults. Its errors wrap ErrInvalid.
//
// New takes plain Domains rather than a dsq.Layout so that a Balancer
// plans for any set of domains, without a topology or a kernel: tests and
// simulations describe machines by their domains' CPU counts and nodes.
// A scheduler builds them from its DSQ layout with DomainsOf.
func New(domains []Domain, opts *Options) (*Balancer, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	opts = &o
	if opts.PushThreshold == 0 {
		opts.PushThreshold = DefaultPushThreshold
	}
	if opts.PullThreshold == 0 {
		opts.PullThreshold = DefaultPullThreshold
	}
	if opts.MaxMigrationsPerDomain == 0 {
		opts.MaxMigrationsPerDomain = DefaultMaxMigrationsPerDomain
	}
	if opts.MinTaskLoad == 0 {
		opts.MinTaskLoad = DefaultMinTaskLoad
	}
	if opts.Interval == 0 {
		opts.Interval = DefaultInterval
	}
	switch {
	case !(opts.PushThreshold >= 0) || math.IsInf(opts.PushThreshold, 1):
		return nil, fmt.Errorf("lb: Options.PushThreshold is %v: %w: use a fraction of the average load such as 0.10", opts.PushThreshold, ErrInvalid)
	case !(opts.PullThreshold >= 0 && opts.PullThreshold < 1):
		return nil, fmt.Errorf("lb: Options.PullThreshold is %v: %w: use a fraction of the average load in [0, 1), such as 0.10", opts.PullThreshold, ErrInvalid)
	case !(opts.MinTaskLoad >= 0 && opts.MinTaskLoad <= 1):
		return nil, fmt.Errorf("lb: Options.MinTaskLoad is %v: %w: use a fraction of the average load per CPU in [0, 1], such as 0.05", opts.MinTaskLoad, ErrInvalid)
	case opts.MaxMigrationsPerDomain < 0:
		return nil, fmt.Errorf("lb: Options.MaxMigrationsPerDomain is %d: %w: use zero for the default or math.MaxInt for no limit", opts.MaxMigrationsPerDomain, ErrInvalid)
	case opts.Interval < 0:
		return nil, fmt.Errorf("lb: Options.Interval is %v: %w: use a positive interval such as 1s, or zero for the default", opts.Interval, ErrInvalid)
	case len(domains) == 0:
		return nil, fmt.Errorf("lb: no domains: %w: pass at least one, e.g. one per LLC", ErrInvalid)
	}
	n := len(domains)
	b := &Balancer{
		opts:    *opts,
		domains: make([]Domain, n),
		labels:  make([]string, n),
		domCPUs: make([]float64, n),
		domNode: make([]int, n),
		domLoad: make([]float64, n),
		budget:  make([]int, n),
		start:   make([]int32, n+1),
		inHead:  make([]int32, n),
		failed:  make([]uint64, (n*n+63)/64),
	}
	seen := make([]bool, n)
	var nodeIDs []int
	for i, d := range domains {
		switch {
		case d.ID < 0 || d.ID >= n:
			return nil, fmt.Errorf("lb: domains[%d].ID is %d: %w: number the %d domains 0 to %d", i, d.ID, ErrInvalid, n, n-1)
		case seen[d.ID]:
			return nil, fmt.Errorf("lb: domains[%d].ID %d is used twice: %w: give each domain its own id", i, d.ID, ErrInvalid)
		case d.Node < 0:
			return nil, fmt.Errorf("lb: domains[%d].Node is %d: %w: use the NUMA node number, 0 or more", i, d.Node, ErrInvalid)
		case d.CPUs < 1:
			return nil, fmt.Errorf("lb: domains[%d].CPUs is %d: %w: a domain needs at least one CPU", i, d.CPUs, ErrInvalid)
		}
		seen[d.ID] = true
		b.domains[d.ID] = d
		b.labels[d.ID] = strconv.Itoa(d.ID)
		b.domCPUs[d.ID] = float64(d.CPUs)
		b.nrCPUs += d.CPUs
		if !slices.Contains(nodeIDs, d.Node) {
			nodeIDs = append(nodeIDs, d.Node)
		}
	}
	slices.Sort(nodeIDs)
	b.nodeDoms = make([][]int, len(nodeIDs))
	b.nodeCPUs = make([]float64, len(nodeIDs))
	b.nodeLoad = make([]float64, len(nodeIDs))
	for id, d := range b.domains {
		k, _ := slices.BinarySearch(nodeIDs, d.Node)
		b.domNode[id] = k
		b.nodeDoms[k] = append(b.nodeDoms[k], id)
		b.nodeCPUs[k] += float64(d.CPUs)
	}
	maxGroup := len(nodeIDs)
	for _, ds := range b.nodeDoms {
		maxGroup = max(maxGroup, len(ds))
	}
	b.push = make([]int, 0, maxGroup)
	b.pull = make([]int, 0, maxGroup)
	b.srcs = make([]int, 0, maxGroup)
	b.dsts = make([]int, 0, maxGroup)
	return b, nil
}

// Options returns the options in use, with defaults filled in.
func (b *Balancer) Options() Options { return b.opts }

// Balance plans one round of migrations for tasks and returns the plan in
// dst, overwritten (dst[:0] extended; reallocated only when too small),
// with statistics. It does not modify tasks.
//
// A round adjusts infeasible weights (AdjustWeights over all CPUs of the
// domains), sums each domain's load, then evens out load per CPU first
// between NUMA nodes, then between the domains of each node. At each level
// a group (node or domain) whose load per CPU is above the average of its
// level by more than Options.PushThreshold pushes, one below it by more
// than Options.PullThreshold pulls. Pushers, heaviest first, give to
// pullers, lightest first: each step moves the one task that leaves the
// smallest gap between the two, among the tasks whose move narrows the gap
// without taking either side past the other's former load, leaving alone
// those lighter than Options.MinTaskLoad. A pinned task,
// a task whose affinity excludes the destination, and a task already moved
// this round are never chosen. A pair is done when no task qualifies, when
// either side reaches its threshold, or when a domain has taken part in
// Options.MaxMigrationsPerDomain migrations. Between nodes, the task comes
// from the most loaded domain of the pushing node that has one to give and
// goes to the least loaded domain of the pulling node that will take it.
//
// Each migration narrows the gap between its two domains without crossing
// it, so the spread of per-CPU domain load never grows.
func (b *Balancer) Balance(dst []Migration, tasks []Task) ([]Migration, RoundStats, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var st RoundStats
	plan := dst[:0]
	nd := len(b.domLoad)
	for i := range tasks {
		t := &tasks[i]
		switch {
		case t.Domain < 0 || t.Domain >= nd:
			return plan, st, fmt.Errorf("lb: tasks[%d] (id %d) is in domain %d: %w: the balancer has domains 0 to %d", i, t.ID, t.Domain, ErrInvalid, nd-1)
		case !validWeight(t.Weight):
			return plan, st, fmt.Errorf("lb: tasks[%d] (id %d) has weight %v: %w: %s", i, t.ID, t.Weight, ErrInvalid, weightRange)
		case !validDutyCycle(t.DutyCycle):
			return plan, st, fmt.Errorf("lb: tasks[%d] (id %d) has duty cycle %v: %w: %s", i, t.ID, t.DutyCycle, ErrInvalid, dutyCycleRange)
		}
	}

	n := len(tasks)
	b.weight = resize(b.weight, n)
	b.duty = resize(b.duty, n)
	for i := range tasks {
		b.weight[i] = tasks[i].Weight
		b.duty[i] = tasks[i].DutyCycle
	}
	b.adj = adjustWeights(b.adj, b.weight, b.duty, b.nrCPUs)
	// From here on, weight holds each task's adjusted load.
	load := b.weight
	for i := range load {
		if b.adj[i] < load[i] {
			st.Clamped++
		}
		load[i] = b.adj[i] * b.duty[i]
	}

	// Group tasks by domain (a counting sort) and sum the loads.
	clear(b.domLoad)
	clear(b.start)
	for i := range tasks {
		b.start[tasks[i].Domain+1]++
		b.domLoad[tasks[i].Domain] += load[i]
	}
	for d := range nd {
		b.start[d+1] += b.start[d]
	}
	b.posTask = resize(b.posTask, n)
	b.posLoad = resize(b.posLoad, n)
	b.inNext = resize(b.inNext, n)
	for i := range tasks {
		d := tasks[i].Domain
		p := b.start[d]
		b.start[d]++
		b.posTask[p] = int32(i)
		if len(tasks[i].Affinity) > 0 {
			b.posTask[p] = ^int32(i)
		}
		b.posLoad[p] = load[i]
		if tasks[i].Pinned {
			b.posLoad[p] = posPinned
		}
	}
	copy(b.start[1:], b.start[:nd]) // each start[d] advanced to start[d+1]; shift back
	b.start[0] = 0
	for d := range nd {
		b.inHead[d] = -1
		b.budget[d] = b.opts.MaxMigrationsPerDomain
	}
	clear(b.nodeLoad)
	for d, l := range b.domLoad {
		b.nodeLoad[b.domNode[d]] += l
		st.TotalLoad += l
	}
	st.ImbalanceBefore = b.spread()

	if len(b.nodeDoms) > 1 {
		plan = b.balanceNodes(plan, tasks, &st)
	}
	for k := range b.nodeDoms {
		plan = b.balanceDomains(plan, tasks, k, &st)
	}
	st.ImbalanceAfter = b.spread()
	return plan, st, nil
}

func resize[S ~[]E, E any](s S, n int) S {
	return slices.Grow(s[:0], n)[:n]
}

// spread returns the highest minus the lowest per-CPU domain load.
func (b *Balancer) spread() float64 {
	lo, hi := math.Inf(1), math.Inf(-1)
	for d, l := range b.domLoad {
		v := l / b.domCPUs[d]
		lo, hi = min(lo, v), max(hi, v)
	}
	return hi - lo
}

func (b *Balancer) domPer(d int) float64  { return b.domLoad[d] / b.domCPUs[d] }
func (b *Balancer) nodePer(k int) float64 { return b.nodeLoad[k] / b.nodeCPUs[k] }

// classify fills b.push with the groups above avg by the push threshold,
// heaviest first, and b.pull with those below it by the pull threshold,
// lightest first. per gives a group's load per CPU.
func (b *Balancer) classify(groups []int, avg float64, per func(int) float64) {
	b.push, b.pull = b.push[:0], b.pull[:0]
	if !(avg > 0) {
		return
	}
	for _, g := range groups {
		switch v := per(g); {
		case v > avg*(1+b.opts.PushThreshold):
			b.push = append(b.push, g)
		case v < avg*(1-b.opts.PullThreshold):
			b.pull = append(b.pull, g)
		}
	}
	sortBy(b.push, per, true)
	sortBy(b.pull, per, false)
}

// sortBy sorts the few groups in s by per, descending if desc; an
// insertion sort, stable, allocating nothing.
func sortBy(s []int, per func(int) float64, desc bool) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0; j-- {
			a, c := per(s[j-1]), per(s[j])
			if (desc && a >= c) || (!desc && a <= c) {
				break
			}
			s[j-1], s[j] = s[j], s[j-1]
		}
	}
}

func (b *Balancer) balanceNodes(plan []Migration, tasks []Task, st *RoundStats) []Migration {
	nodes := b.srcs[:0]
	for k := range b.nodeDoms {
		nodes = append(nodes, k)
	}
	b.classify(nodes, st.TotalLoad/float64(b.nrCPUs), b.nodePer)
	avg := st.TotalLoad / float64(b.nrCPUs)
	clear(b.failed)
	for _, p := range b.push {
		for _, q := range b.pull {
			for b.nodePer(p) > avg*(1+b.opts.PushThreshold) && b.nodePer(q) < avg*(1-b.opts.PullThreshold) {
				var ok bool
				if plan, ok = b.moveBetweenNodes(plan, tasks, p, q, avg, st); !ok {
					break
				}
			}
		}
	}
	return plan
}

// moveBetweenNodes moves one task from a domain of node p to a domain of
// node q and reports whether it found one.
func (b *Balancer) moveBetweenNodes(plan []Migration, tasks []Task, p, q int, avg float64, st *RoundStats) ([]Migration, bool) {
	gap := b.nodePer(p) - b.nodePer(q)
	if !(gap > 0) {
		return plan, false
	}
	k := 1/b.nodeCPUs[p] + 1/b.nodeCPUs[q]
	xmax := gap * min(b.nodeCPUs[p], b.nodeCPUs[q])
	b.srcs = append(b.srcs[:0], b.nodeDoms[p]...)
	b.dsts = append(b.dsts[:0], b.nodeDoms[q]...)
	sortBy(b.srcs, b.domPer, true)
	sortBy(b.dsts, b.domPer, false)
	nd := len(b.domLoad)
	for _, s := range b.srcs {
		if b.budget[s] == 0 {
			continue
		}
		for _, d := range b.dsts {
			dgap := b.domPer(s) - b.domPer(d)
			if !(dgap > 0) {
				break
			}
			bit := s*nd + d
			if b.budget[d] == 0 || b.failed[bit/64]&(1<<(bit%64)) != 0 {
				continue
			}
			bound := min(xmax, dgap*min(b.domCPUs[s], b.domCPUs[d]))
			if p := b.bestTask(tasks, s, d, gap, k, b.opts.MinTaskLoad*avg, bound, st); p >= 0 {
				return b.move(plan, tasks, p, s, d, st), true
			}
			// The bounds only shrink while the stage runs, so the pair
			// stays without a candidate.
			b.failed[bit/64] |= 1 << (bit % 64)
		}
	}
	return plan, false
}

func (b *Balancer) balanceDomains(plan []Migration, tasks []Task, k int, st *RoundStats) []Migration {
	doms := b.nodeDoms[k]
	if len(doms) < 2 {
		return plan
	}
	avg := b.nodePer(k)
	b.classify(doms, avg, b.domPer)
	for _, s := range b.push {
		for _, d := range b.pull {
			for b.budget[s] > 0 && b.budget[d] > 0 &&
				b.domPer(s) > avg*(1+b.opts.PushThreshold) && b.domPer(d) < avg*(1-b.opts.PullThreshold) {
				gap := b.domPer(s) - b.domPer(d)
				cs, cd := b.domCPUs[s], b.domCPUs[d]
				p := b.bestTask(tasks, s, d, gap, 1/cs+1/cd, b.opts.MinTaskLoad*avg, gap*min(cs, cd), st)
				if p < 0 {
					break
				}
				plan = b.move(plan, tasks, p, s, d, st)
			}
		}
	}
	return plan
}

// Markers in posLoad.
const (
	posPinned = -1.0
	posMoved  = -2.0 // moved out of the domain: no longer one of its tasks
)

// bestTask returns the position of the task of domain s whose load x, moved
// to domain d, leaves the smallest |gap - x*k|, among those with
// xmin <= x < xmax (and x > 0) that may move to d; or -1.
func (b *Balancer) bestTask(tasks []Task, s, d int, gap, k, xmin, xmax float64, st *RoundStats) int {
	best, bestRem := -1, gap
	for p := int(b.start[s]); p < int(b.start[s+1]); p++ {
		x := b.posLoad[p]
		if !(x > 0 && x >= xmin && x < xmax) {
			switch x {
			case posMoved:
			case posPinned:
				st.RejectedPinned++
			default:
				st.RejectedNoGain++
			}
			continue
		}
		if ti := b.posTask[p]; ti < 0 && !tasks[^ti].Allows(d) {
			st.RejectedAffinity++
			continue
		}
		if rem := math.Abs(gap - x*k); rem < bestRem {
			best, bestRem = p, rem
		}
	}
	for ti := b.inHead[s]; ti >= 0; ti = b.inNext[ti] {
		st.RejectedAlreadyMoved++
	}
	return best
}

// move moves the task at position p from domain s to d.
func (b *Balancer) move(plan []Migration, tasks []Task, p, s, d int, st *RoundStats) []Migration {
	ti := int(b.posTask[p])
	if ti < 0 {
		ti = ^ti
	}
	x := b.posLoad[p]
	b.posLoad[p] = posMoved
	b.domLoad[s] -= x
	b.domLoad[d] += x
	b.nodeLoad[b.domNode[s]] -= x
	b.nodeLoad[b.domNode[d]] += x
	b.budget[s]--
	b.budget[d]--
	b.inNext[ti] = b.inHead[d]
	b.inHead[d] = int32(ti)
	st.Moved++
	st.LoadMoved += x
	if b.domNode[s] != b.domNode[d] {
		st.CrossNode++
	}
	return append(plan, Migration{Task: tasks[ti].ID, Index: ti, From: s, To: d, Load: x})
}
