package dsq

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/scxkit/scxkit/internal/percpu"
	"github.com/scxkit/scxkit/topology"
)

// Limits of the BPF-side layout (bpf/include/scxkit/dsq.h). They equal
// the header's macros; TestConstantsMatchBPF checks them against the
// compiler's values.
const (
	// MaxDSQs is the most DSQs in a layout (SK_DSQ_MAX).
	MaxDSQs = 64
	// MaxCPUs bounds kernel CPU ids (SK_DSQ_MAX_CPUS).
	MaxCPUs = 512
	// MaxSteal is the most DSQs one DSQ's CPUs steal from
	// (SK_DSQ_MAX_STEAL).
	MaxSteal = 16
	// MaxClasses is the most classes per domain (SK_DSQ_MAX_CLASSES).
	MaxClasses = 16
)

// The package's sentinel errors. Errors wrap them with what was wrong and
// how to fix it; match them with errors.Is.
var (
	// ErrInvalid is wrapped by the errors about a layout that cannot
	// work: an unknown kind, empty or overlapping domains, CPUs that are
	// not online, allocated ids that collide with the kernel's builtin
	// DSQs.
	ErrInvalid = errors.New("invalid input")
	// ErrTooBig is wrapped by the errors about a layout beyond the BPF
	// side's limits: more than MaxDSQs DSQs, CPU ids from MaxCPUs on.
	ErrTooBig = errors.New("too big")
)

// Kind says what one DSQ of a layout serves.
type Kind int

// The layout kinds.
const (
	PerLLC  Kind = iota // one DSQ per last-level cache (the usual domain)
	PerCPU              // one DSQ per CPU
	PerNode             // one DSQ per NUMA node
	Global              // one DSQ for the whole machine
	Custom              // one DSQ per CPU mask given in Options.Domains
)

func (k Kind) String() string {
	switch k {
	case PerLLC:
		return "per-llc"
	case PerCPU:
		return "per-cpu"
	case PerNode:
		return "per-node"
	case Global:
		return "global"
	case Custom:
		return "custom"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Options configures New. A nil *Options, like the zero value, makes one
// DSQ per LLC ordered by weighted virtual time.
type Options struct {
	Kind Kind
	// Domains are the CPU masks of a Custom layout, one DSQ each; they
	// must not overlap, and CPUs they leave out get no DSQ.
	Domains []topology.Cpumask
	// StealMinQueued makes CPUs steal only from DSQs holding more than
	// this many tasks.
	StealMinQueued uint32
	// MaxSteal bounds how many other DSQs a DSQ's CPUs try, nearest
	// first; zero means all (at most MaxSteal).
	MaxSteal int
	// FIFO says the scheduler queues tasks only in arrival order
	// (sk_dsq_enqueue_fifo). By default it orders them by weighted
	// virtual time (sk_dsq_enqueue_vtime), which needs ops.running and
	// ops.stopping to call sk_dsq_started and sk_dsq_charge: Needs
	// asks for those callbacks unless FIFO is set.
	FIFO bool
	// Classes is the number of classes per domain: every domain gets one
	// DSQ per class, ids [domain][class] from the range scx.Open
	// allocates, and the BPF side inserts with sk_dsq_insert_class and
	// takes with sk_dsq_take(cpu, class) in the class order the scheduler
	// (or an orderer such as package preempt with OnDSQ) chooses. 0 means
	// 1; at most MaxClasses. The single-class BPF calls
	// (sk_dsq_enqueue_vtime, sk_dsq_dispatch, ...) use class 0.
	Classes int
}

// DSQ is one user dispatch queue of a layout.
type DSQ struct {
	Index int // position in Layout.DSQs, as the BPF side numbers it
	// ID is the kernel DSQ id of its class 0, from the range scx.Open
	// allocated to the component; class c has ID + c. Bind sets it, and
	// it is 0 until then.
	ID   uint64
	CPUs topology.Cpumask // the CPUs it serves first
	Node int              // dense NUMA node of its CPUs, -1 when they span nodes
	// Steal lists the indexes of the DSQs its CPUs steal from when it is
	// empty, nearest first: same node before other nodes, by node
	// distance, then by index.
	Steal []int
}

// Layout is a set of user DSQs covering a machine's CPUs, built from its
// topology, for a scheduler that includes scxkit/dsq.bpf.h. It is the
// scheduler component "dsq" (scx.Component, scx.Reporter): Bind writes it
// into the BPF side with the DSQ ids scx.Open allocated, and its Read
// methods and stats read the DSQs' counters and depths back.
//
// Its Read methods and ReadStats may be called from any goroutine.
type Layout struct {
	Kind Kind
	// DSQs are the domains, each with Classes DSQs.
	DSQs []DSQ
	// Classes is the number of classes per domain (Options.Classes, at
	// least 1).
	Classes        int
	StealMinQueued uint32
	fifo           bool
	cpuDSQ         map[int]int // kernel CPU -> DSQ index
	topo           *topology.Topology

	mu       sync.Mutex // guards what follows: the binding and the read scratch
	objs     bpfObjects // nil fields until Bind
	perCPU   *percpu.Reader[uint32, dsqtypesSkDsqCounters]
	depths   [dsqtypesSkDsqConstsSK_MAX * dsqtypesSkDsqConstsSK_MAX_CLASSES]uint64 // sk_dsq_depth, per (domain, class)
	counters []Counters
	runOpts  ebpf.RunOptions
	labels   []string // DSQ indexes, for the stats
}

// New builds a layout of kind opts.Kind over t's online CPUs; nil opts
// means one DSQ per LLC. Its errors wrap ErrInvalid for a layout that
// cannot work, and ErrTooBig for one beyond the BPF side's limits
// (MaxDSQs, MaxCPUs). The DSQs get their ids when the layout is bound.
func New(t *topology.Topology, opts *Options) (*Layout, error) {
	if opts == nil {
		opts = &Options{}
	}
	var masks []topology.Cpumask
	switch opts.Kind {
	case PerLLC:
		for _, l := range t.LLCs {
			masks = append(masks, l.CPUs)
		}
	case PerCPU:
		for _, c := range t.CPUs {
			masks = append(masks, topology.MaskOf(c.KernelID))
		}
	case PerNode:
		for _, n := range t.Nodes {
			masks = append(masks, n.CPUs)
		}
	case Global:
		masks = []topology.Cpumask{t.Online}
	case Custom:
		if len(opts.Domains) == 0 {
			return nil, fmt.Errorf("dsq: Options.Domains: %w: a custom layout needs one CPU mask per DSQ", ErrInvalid)
		}
		masks = opts.Domains
	default:
		return nil, fmt.Errorf("dsq: Options.Kind %v: %w: want PerLLC, PerCPU, PerNode, Global or Custom", opts.Kind, ErrInvalid)
	}
	classes := opts.Classes
	if classes == 0 {
		classes = 1
	}
	if classes < 0 {
		return nil, fmt.Errorf("dsq: Options.Classes %d: %w: want 0 (one class) to %d", opts.Classes, ErrInvalid, MaxClasses)
	}
	if classes > MaxClasses {
		return nil, fmt.Errorf("dsq: Options.Classes %d: %w: the BPF layout holds %d classes per domain (SK_DSQ_MAX_CLASSES)", opts.Classes, ErrTooBig, MaxClasses)
	}
	if len(masks) > MaxDSQs {
		return nil, fmt.Errorf("dsq: %d DSQs (%v): %w: the BPF layout holds %d; use a coarser kind (per-llc, per-node) or fewer domains", len(masks), opts.Kind, ErrTooBig, MaxDSQs)
	}
	l := &Layout{Kind: opts.Kind, Classes: classes, StealMinQueued: opts.StealMinQueued, fifo: opts.FIFO, cpuDSQ: map[int]int{}, topo: t}
	for i, m := range masks {
		if m.Empty() {
			return nil, fmt.Errorf("dsq: domain %d: %w: it has no CPU; give every domain at least one", i, ErrInvalid)
		}
		if !m.Subset(t.Online) {
			return nil, fmt.Errorf("dsq: domain %d (%v): %w: CPUs %v are not online (online: %v); leave them out", i, m, ErrInvalid, m.AndNot(t.Online), t.Online)
		}
		if m.Max() >= MaxCPUs {
			return nil, fmt.Errorf("dsq: domain %d: CPU %d: %w: the BPF layout holds kernel ids below %d; raise SK_DSQ_MAX_CPUS in scxkit/dsq.h and rebuild", i, m.Max(), ErrTooBig, MaxCPUs)
		}
		for cpu := range m.All() {
			if j, dup := l.cpuDSQ[cpu]; dup {
				return nil, fmt.Errorf("dsq: domain %d: CPU %d: %w: it is also in domain %d; give each CPU one domain", i, cpu, ErrInvalid, j)
			}
			l.cpuDSQ[cpu] = i
		}
		l.DSQs = append(l.DSQs, DSQ{Index: i, CPUs: m.Clone(), Node: nodeOf(t, m)})
		l.labels = append(l.labels, strconv.Itoa(i))
	}
	limit := opts.MaxSteal
	if limit <= 0 || limit > MaxSteal {
		limit = MaxSteal
	}
	for i := range l.DSQs {
		l.DSQs[i].Steal = l.stealOrder(i, limit)
	}
	return l, nil
}

// nodeOf returns the dense node holding all of m, or -1.
func nodeOf(t *topology.Topology, m topology.Cpumask) int {
	node := -1
	for cpu := range m.All() {
		c, ok := t.CPU(cpu)
		if !ok || (node >= 0 && c.Node != node) {
			return -1
		}
		node = c.Node
	}
	return node
}

// distance is the NUMA distance between the nodes of DSQs a and b; DSQs
// spanning nodes count as remote.
func (l *Layout) distance(a, b int) int {
	na, nb := l.DSQs[a].Node, l.DSQs[b].Node
	switch {
	case na >= 0 && na == nb:
		return 0
	case na < 0 || nb < 0:
		return 1 << 20
	}
	if d := l.topo.Nodes[na].Distances; nb < len(d) {
		return d[nb]
	}
	return 1 << 20
}

func (l *Layout) stealOrder(i, limit int) []int {
	var order []int
	for j := range l.DSQs {
		if j != i {
			order = append(order, j)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(l.distance(i, a), l.distance(i, b)) })
	return order[:min(len(order), limit)]
}

// Of returns the index of the DSQ that serves kernel CPU cpu.
func (l *Layout) Of(cpu int) (int, bool) {
	i, ok := l.cpuDSQ[cpu]
	return i, ok
}
