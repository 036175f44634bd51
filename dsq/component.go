package dsq

import (
	"fmt"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/scxkit/scxkit/internal/percpu"
	"github.com/scxkit/scxkit/scx"
)

// A Layout is a component that reports stats.
var _ scx.Reporter = (*Layout)(nil)

// bpfObjects are the globals, maps and programs dsq.bpf.h defines.
type bpfObjects struct {
	Layout *ebpf.Variable `ebpf:"sk_dsq_layout"`
	Depth  *ebpf.Variable `ebpf:"sk_dsq_depth"`
	Stats  *ebpf.Map      `ebpf:"sk_dsq_stats"`
	Depths *ebpf.Program  `ebpf:"sk_dsq_depths"`
}

// bpfHeader is the header a scheduler includes for the dsq component.
const bpfHeader = "scxkit/dsq.bpf.h"

// Name implements scx.Component: a Layout is the component "dsq".
func (l *Layout) Name() string { return "dsq" }

// Needs implements scx.Component. The layout needs one DSQ id per
// (domain, class),
// allocated by scx.Open and written into sk_dsq_layout by Bind; ops.init
// to create the DSQs (sk_dsq_create_all); and, unless Options.FIFO,
// ops.running and ops.stopping for the virtual time (sk_dsq_started,
// sk_dsq_charge). It owns ops.enqueue and ops.dispatch: it decides which
// DSQ a task waits in (sk_dsq_enqueue_vtime or _fifo) and what a CPU
// takes next (sk_dsq_dispatch), so no other component may own them.
func (l *Layout) Needs() scx.Needs {
	cbs := []string{"init"}
	if !l.fifo {
		cbs = append(cbs, "running", "stopping")
	}
	return scx.Needs{
		DSQs:      len(l.DSQs) * l.Classes,
		Callbacks: cbs,
		Owns:      []string{"enqueue", "dispatch"},
		Objects:   (*bpfObjects)(nil),
		Header:    bpfHeader,
	}
}

// Bind implements scx.Component: it gives the layout's DSQs the ids of
// the range scx.Open allocated (b.DSQs(), one per DSQ, in order), checks
// them against the kernel's builtin DSQ ids, and writes the layout into
// sk_dsq_layout, which ops.init reads to create the DSQs
// (sk_dsq_create_all). Load calls it after every load, before attach.
func (l *Layout) Bind(b *scx.Binding) error {
	var objs bpfObjects
	if err := b.Assign(&objs); err != nil {
		return err // names the component and every missing object
	}
	r := b.DSQs()
	if r.Count != len(l.DSQs)*l.Classes {
		return fmt.Errorf("dsq: bind: %d DSQ ids allocated for %d domains of %d classes: %w: bind the layout with the range Needs asks for", r.Count, len(l.DSQs), l.Classes, ErrInvalid)
	}
	if k := b.Kernel(); k != nil {
		if err := checkIDs(k, r); err != nil {
			return err
		}
	}
	if size := uint32(unsafe.Sizeof(dsqtypesSkDsqLayout{})); objs.Layout.Size() != size {
		return fmt.Errorf("dsq: bind: sk_dsq_layout is %d bytes, this package expects %d: rebuild the object against this version of scxkit/dsq.h", objs.Layout.Size(), size)
	}
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		return fmt.Errorf("dsq: bind: %w", err)
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range l.DSQs {
		l.DSQs[i].ID = r.ID(i * l.Classes) // class c: ID + c, contiguous
	}
	st := new(dsqtypesSkDsqLayout)
	l.encode(st)
	if err := objs.Layout.Set(st); err != nil {
		return fmt.Errorf("dsq: bind: write sk_dsq_layout: %w", err)
	}
	l.objs = objs
	if l.perCPU, err = percpu.New[uint32, dsqtypesSkDsqCounters](l.objs.Stats, ncpu); err != nil {
		return fmt.Errorf("dsq: bind: %w", err)
	}
	return nil
}

// checkIDs verifies the allocated ids against the running kernel: none
// may carry the kernel's builtin-DSQ flag (SCX_DSQ_FLAG_BUILTIN, read from
// BTF).
func checkIDs(k *scx.Kernel, r scx.DSQRange) error {
	builtin, err := k.Enums.Value("SCX_DSQ_FLAG_BUILTIN")
	if err != nil {
		return fmt.Errorf("dsq: bind: %w", err)
	}
	if r.Count == 0 {
		return nil
	}
	if first, last := r.First, r.ID(r.Count-1); first&builtin != 0 || last&builtin != 0 || last < first {
		return fmt.Errorf("dsq: bind: DSQ ids %#x to %#x: %w: the kernel reserves ids with bit %#x for builtin DSQs", first, last, ErrInvalid, builtin)
	}
	return nil
}

// encode converts l, with its ids, into the BPF layout.
func (l *Layout) encode(st *dsqtypesSkDsqLayout) {
	st.Nr = uint32(len(l.DSQs))
	st.StealMinQueued = l.StealMinQueued
	st.NrClasses = uint32(l.Classes)
	for i := range st.CpuDsq {
		st.CpuDsq[i] = uint32(dsqtypesSkDsqConstsSK_NONE)
	}
	for cpu, i := range l.cpuDSQ {
		st.CpuDsq[cpu] = uint32(i)
	}
	for i, d := range l.DSQs {
		st.Ids[i] = d.ID
		st.Nodes[i] = int32(dsqtypesSkDsqNodeConstsSK_ANY_NODE)
		if d.Node >= 0 {
			st.Nodes[i] = int32(l.topo.Nodes[d.Node].KernelID)
		}
		st.NrSteal[i] = uint32(len(d.Steal))
		for j, s := range d.Steal {
			st.Steal[i][j] = uint32(s)
		}
	}
}

// Counters are a DSQ's event counts, summed over CPUs.
type Counters struct {
	Inserted   uint64 // tasks queued on it
	Dispatched uint64 // tasks its own CPUs took
	Stolen     uint64 // tasks other DSQs' CPUs took
}

// ReadCounters appends each domain's counters, summed over its classes
// and indexed like l.DSQs, to dst[:0] and returns it. Before Bind it
// fails with scx.ErrNotBound.
func (l *Layout) ReadCounters(dst []Counters) ([]Counters, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.readCounters(dst[:0], false)
}

// ReadClassCounters appends the counters of every (domain, class) DSQ to
// dst[:0], domain-major: element d*l.Classes+c is domain d's class c.
// Before Bind it fails with scx.ErrNotBound.
func (l *Layout) ReadClassCounters(dst []Counters) ([]Counters, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.readCounters(dst[:0], true)
}

// readCounters appends the counters to dst, per (domain, class) if
// byClass, else per domain; l.mu is held.
func (l *Layout) readCounters(dst []Counters, byClass bool) ([]Counters, error) {
	if l.objs.Stats == nil {
		return dst, fmt.Errorf("dsq: read counters: %w", scx.ErrNotBound)
	}
	for i := range l.DSQs {
		var c Counters
		for cls := range l.Classes {
			perCPU, err := l.perCPU.Lookup(uint32(i*MaxClasses + cls))
			if err != nil {
				return dst, fmt.Errorf("dsq: read counters of domain %d class %d: %w", i, cls, err)
			}
			for _, p := range perCPU {
				c.Inserted += p.Inserted
				c.Dispatched += p.Dispatched
				c.Stolen += p.Stolen
			}
			if byClass {
				dst = append(dst, c)
				c = Counters{}
			}
		}
		if !byClass {
			dst = append(dst, c)
		}
	}
	return dst, nil
}

// ReadDepths appends how many tasks each domain's DSQs hold now (all
// classes), indexed like l.DSQs, to dst[:0] and returns it; it runs the scheduler's
// sk_dsq_depths program, which reads them in the kernel. Before Bind it
// fails with scx.ErrNotBound.
func (l *Layout) ReadDepths(dst []uint64) ([]uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.readDepths(); err != nil {
		return dst[:0], err
	}
	dst = dst[:0]
	for i := range l.DSQs {
		dst = append(dst, l.domainDepth(i))
	}
	return dst, nil
}

// domainDepth sums domain i's depths over its classes; l.mu is held and
// l.depths read.
func (l *Layout) domainDepth(i int) uint64 {
	var n uint64
	for _, d := range l.depths[i*MaxClasses : i*MaxClasses+l.Classes] {
		n += d
	}
	return n
}

// readDepths fills l.depths; l.mu is held.
func (l *Layout) readDepths() error {
	if l.objs.Depths == nil {
		return fmt.Errorf("dsq: read depths: %w", scx.ErrNotBound)
	}
	if _, err := l.objs.Depths.Run(&l.runOpts); err != nil {
		return fmt.Errorf("dsq: read depths: run sk_dsq_depths: %w", err)
	}
	if err := l.objs.Depth.Get(&l.depths); err != nil {
		return fmt.Errorf("dsq: read depths: %w", err)
	}
	return nil
}

// The stats of a Layout, in the order of Stats.
const (
	statInserted = iota
	statDispatched
	statStolen
	statDepth
)

// Stats implements scx.Reporter: per DSQ (label "dsq", its index), the
// tasks inserted, dispatched to its own CPUs and stolen by others'
// (counters), and its depth now (a gauge).
func (l *Layout) Stats() []scx.StatDesc {
	return []scx.StatDesc{
		statInserted:   {Name: "inserted", Help: "Tasks queued on the DSQ.", Kind: scx.Counter, Label: "dsq"},
		statDispatched: {Name: "dispatched", Help: "Tasks the DSQ's own CPUs took from it.", Kind: scx.Counter, Label: "dsq"},
		statStolen:     {Name: "stolen", Help: "Tasks CPUs of other DSQs took from it when their own ran dry.", Kind: scx.Counter, Label: "dsq"},
		statDepth:      {Name: "depth", Help: "Tasks waiting in the DSQ now.", Kind: scx.Gauge, Label: "dsq"},
	}
}

// ReadStats implements scx.Reporter. It may be called from any goroutine
// and allocates nothing once dst has grown.
func (l *Layout) ReadStats(dst []scx.Sample) ([]scx.Sample, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var err error
	if l.counters, err = l.readCounters(l.counters[:0], false); err != nil {
		return dst, err
	}
	if err := l.readDepths(); err != nil {
		return dst, err
	}
	for i, c := range l.counters {
		dst = append(dst, scx.Sample{Stat: statInserted, Label: l.labels[i], Value: float64(c.Inserted)})
	}
	for i, c := range l.counters {
		dst = append(dst, scx.Sample{Stat: statDispatched, Label: l.labels[i], Value: float64(c.Dispatched)})
	}
	for i, c := range l.counters {
		dst = append(dst, scx.Sample{Stat: statStolen, Label: l.labels[i], Value: float64(c.Stolen)})
	}
	for i := range l.counters {
		dst = append(dst, scx.Sample{Stat: statDepth, Label: l.labels[i], Value: float64(l.domainDepth(i))})
	}
	return dst, nil
}
