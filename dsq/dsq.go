package dsq

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/scxkit/scxkit/scx"
	"github.com/scxkit/scxkit/topology"
)

// Limits of the BPF-side layout (bpf/include/scxkit/dsq.h).
const (
	MaxDSQs  = 64  // SK_DSQ_MAX
	MaxCPUs  = 512 // SK_DSQ_MAX_CPUS: kernel CPU ids below this
	MaxSteal = 16  // SK_DSQ_MAX_STEAL: DSQs one DSQ's CPUs steal from
)

// DefaultBase is the first DSQ id of a layout unless Options.Base says
// otherwise. It leaves the small ids (0, 1, ...) that hand-written
// schedulers tend to use to them.
const DefaultBase = 1 << 32

// ErrInvalid is wrapped by every error about a layout that cannot work.
var ErrInvalid = errors.New("invalid DSQ layout")

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

// Options configures New. The zero value makes one DSQ per LLC.
type Options struct {
	Kind Kind
	// Domains are the CPU masks of a Custom layout, one DSQ each; they
	// must not overlap, and CPUs they leave out get no DSQ.
	Domains []topology.Cpumask
	// Base is the id of the first DSQ; the others follow. Zero means
	// DefaultBase.
	Base uint64
	// StealMinQueued makes CPUs steal only from DSQs holding more than
	// this many tasks.
	StealMinQueued uint32
	// MaxSteal bounds how many other DSQs a DSQ's CPUs try, nearest
	// first; zero means all (at most MaxSteal).
	MaxSteal int
}

// DSQ is one user dispatch queue of a layout.
type DSQ struct {
	Index int              // position in Layout.DSQs, as the BPF side numbers it
	ID    uint64           // the kernel DSQ id
	CPUs  topology.Cpumask // the CPUs it serves first
	Node  int              // dense NUMA node of its CPUs, -1 when they span nodes
	// Steal lists the indexes of the DSQs its CPUs steal from when it is
	// empty, nearest first: same node before other nodes, by node
	// distance, then by index.
	Steal []int
}

// Layout is a set of user DSQs covering a machine's CPUs, built from its
// topology, for a scheduler that includes scxkit/dsq.bpf.h.
type Layout struct {
	Kind           Kind
	DSQs           []DSQ
	StealMinQueued uint32
	cpuDSQ         map[int]int // kernel CPU -> DSQ index
	topo           *topology.Topology
}

// New builds a layout of kind opts.Kind over t's online CPUs.
func New(t *topology.Topology, opts Options) (*Layout, error) {
	base := opts.Base
	if base == 0 {
		base = DefaultBase
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
			return nil, fmt.Errorf("dsq: %w: a custom layout needs Options.Domains", ErrInvalid)
		}
		masks = opts.Domains
	default:
		return nil, fmt.Errorf("dsq: %w: unknown kind %v", ErrInvalid, opts.Kind)
	}
	if len(masks) > MaxDSQs {
		return nil, fmt.Errorf("dsq: %w: %d DSQs, the BPF layout holds %d: use a coarser kind (per-llc, per-node)", ErrInvalid, len(masks), MaxDSQs)
	}
	if base>>63 != 0 || base+uint64(len(masks)) < base || (base+uint64(len(masks))-1)>>63 != 0 {
		return nil, fmt.Errorf("dsq: %w: ids from %#x collide with the kernel's builtin DSQ ids (bit 63)", ErrInvalid, base)
	}
	l := &Layout{Kind: opts.Kind, StealMinQueued: opts.StealMinQueued, cpuDSQ: map[int]int{}, topo: t}
	for i, m := range masks {
		if m.Empty() {
			return nil, fmt.Errorf("dsq: %w: domain %d has no CPU", ErrInvalid, i)
		}
		if !m.Subset(t.Online) {
			return nil, fmt.Errorf("dsq: %w: domain %d (%v) has CPUs that are not online (online: %v)", ErrInvalid, i, m, t.Online)
		}
		if m.Max() >= MaxCPUs {
			return nil, fmt.Errorf("dsq: %w: CPU %d, the BPF layout holds ids below %d", ErrInvalid, m.Max(), MaxCPUs)
		}
		for cpu := range m.All() {
			if j, dup := l.cpuDSQ[cpu]; dup {
				return nil, fmt.Errorf("dsq: %w: CPU %d is in domains %d and %d", ErrInvalid, cpu, j, i)
			}
			l.cpuDSQ[cpu] = i
		}
		l.DSQs = append(l.DSQs, DSQ{Index: i, ID: base + uint64(i), CPUs: m.Clone(), Node: nodeOf(t, m)})
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

// Check verifies the layout against the running kernel: no id may carry
// the kernel's builtin-DSQ flag (SCX_DSQ_FLAG_BUILTIN, read from BTF).
func (l *Layout) Check(k *scx.Kernel) error {
	builtin, err := k.Enums.Value("SCX_DSQ_FLAG_BUILTIN")
	if err != nil {
		return fmt.Errorf("dsq: check: %w", err)
	}
	for _, d := range l.DSQs {
		if d.ID&builtin != 0 {
			return fmt.Errorf("dsq: %w: DSQ %d has id %#x, which the kernel reserves for builtin DSQs", ErrInvalid, d.Index, d.ID)
		}
	}
	return nil
}

// The globals and maps dsq.bpf.h defines.
const (
	bpfLayout   = "sk_dsq_layout"
	bpfDepth    = "sk_dsq_depth"
	bpfStats    = "sk_dsq_stats"
	bpfDepthsFn = "sk_dsq_depths"
)

// WriteBPF hands the layout to a loaded scheduler that includes
// scxkit/dsq.bpf.h; its ops.init creates the DSQs with
// sk_dsq_create_all. Call it after Load and before Attach.
func (l *Layout) WriteBPF(coll *ebpf.Collection) error {
	v := coll.Variables[bpfLayout]
	if v == nil {
		return fmt.Errorf("dsq: write BPF: the object has no %s global: include scxkit/dsq.bpf.h", bpfLayout)
	}
	var st dsqtypesSkDsqLayout
	if size := uint32(unsafe.Sizeof(st)); v.Size() != size {
		return fmt.Errorf("dsq: write BPF: %s is %d bytes, this package expects %d: rebuild the object against this version of scxkit/dsq.h", bpfLayout, v.Size(), size)
	}
	st.Nr = uint32(len(l.DSQs))
	st.StealMinQueued = l.StealMinQueued
	for i := range st.CpuDsq {
		st.CpuDsq[i] = 0xffffffff // SK_DSQ_NONE
	}
	for cpu, i := range l.cpuDSQ {
		st.CpuDsq[cpu] = uint32(i)
	}
	for i, d := range l.DSQs {
		st.Ids[i] = d.ID
		st.Nodes[i] = -1
		if d.Node >= 0 {
			st.Nodes[i] = int32(l.topo.Nodes[d.Node].KernelID)
		}
		st.NrSteal[i] = uint32(len(d.Steal))
		for j, s := range d.Steal {
			st.Steal[i][j] = uint32(s)
		}
	}
	if err := v.Set(&st); err != nil {
		return fmt.Errorf("dsq: write BPF: %w", err)
	}
	return nil
}

// Counters are a DSQ's event counts, summed over CPUs.
type Counters struct {
	Inserted   uint64 // tasks queued on it
	Dispatched uint64 // tasks its own CPUs took
	Stolen     uint64 // tasks other DSQs' CPUs took
}

// ReadCounters returns each DSQ's counters, indexed like l.DSQs, into dst.
func (l *Layout) ReadCounters(dst []Counters, coll *ebpf.Collection) ([]Counters, error) {
	m := coll.Maps[bpfStats]
	if m == nil {
		return dst, fmt.Errorf("dsq: read counters: the object has no %s map: include scxkit/dsq.bpf.h", bpfStats)
	}
	dst = dst[:0]
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		return dst, fmt.Errorf("dsq: read counters: %w", err)
	}
	perCPU := make([]dsqtypesSkDsqCounters, ncpu)
	for i := range l.DSQs {
		if err := m.Lookup(uint32(i), &perCPU); err != nil {
			return dst, fmt.Errorf("dsq: read counters of DSQ %d: %w", i, err)
		}
		var c Counters
		for _, p := range perCPU {
			c.Inserted += p.Inserted
			c.Dispatched += p.Dispatched
			c.Stolen += p.Stolen
		}
		dst = append(dst, c)
	}
	return dst, nil
}

// Depths returns how many tasks each DSQ holds now, indexed like l.DSQs,
// by running the scheduler's sk_dsq_depths program.
func (l *Layout) Depths(dst []uint64, coll *ebpf.Collection) ([]uint64, error) {
	p, v := coll.Programs[bpfDepthsFn], coll.Variables[bpfDepth]
	if p == nil || v == nil {
		return dst, fmt.Errorf("dsq: depths: the object lacks %s or %s: include scxkit/dsq.bpf.h", bpfDepthsFn, bpfDepth)
	}
	if _, err := p.Run(&ebpf.RunOptions{}); err != nil {
		return dst, fmt.Errorf("dsq: depths: run %s: %w", bpfDepthsFn, err)
	}
	var all [MaxDSQs]uint64
	if err := v.Get(&all); err != nil {
		return dst, fmt.Errorf("dsq: depths: %w", err)
	}
	return append(dst[:0], all[:len(l.DSQs)]...), nil
}
