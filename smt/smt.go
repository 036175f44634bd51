package smt

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"

	"github.com/scxkit/scxkit/dsq"
	"github.com/scxkit/scxkit/internal/percpu"
	"github.com/scxkit/scxkit/scx"
	"github.com/scxkit/scxkit/topology"
)

// Limits of the BPF-side layout (bpf/include/scxkit/smt.h). They follow
// from the header's macros; TestConstantsMatchBPF checks them against the
// compiler's values.
const (
	// MaxCPUs bounds kernel CPU ids (SK_SMT_MAX_CPUS).
	MaxCPUs = 512
	// MaxThreads is the most hardware threads per core (1 +
	// SK_SMT_MAX_SIBLINGS).
	MaxThreads = 4
	// MaxIsolated is the most isolated cgroups, or groups of dsq
	// classes with Options.OnDSQ (SK_SMT_MAX_CLASSES - 1).
	MaxIsolated = 31
	// MaxDSQClasses bounds the dsq classes Options.Groups may name
	// (SK_SMT_MAX_DSQ_CLASSES, dsq's MaxClasses).
	MaxDSQClasses = 16
)

// The package's sentinel errors. Errors wrap them with what was wrong and
// how to fix it; match them with errors.Is.
var (
	// ErrInvalid is wrapped by the errors about Options that cannot
	// work (a negative Hold, a malformed or duplicate cgroup path), about
	// a missing topology, and about a Binding whose DSQ range cannot hold
	// the classes.
	ErrInvalid = errors.New("invalid input")
	// ErrTooBig is wrapped by the errors for a machine or configuration
	// that does not fit the BPF-side layout: more than MaxIsolated
	// cgroups, CPU ids from MaxCPUs on, more than MaxThreads threads in
	// a core.
	ErrTooBig = errors.New("too big")
)

// Options say which cgroups are isolated from each other. A nil *Options
// isolates none: every task is then in the system class, and the threads
// of a core pair freely.
type Options struct {
	// Isolate lists the isolated cgroups, as /proc/PID/cgroup shows them
	// ("/batch", "/tenants/a") or as directories under Root. A task
	// belongs to the nearest isolated cgroup among its cgroup and that
	// cgroup's ancestors; tasks in none of them form the system class.
	// The cgroups must exist.
	Isolate []string
	// Root is where cgroup v2 is mounted; empty means
	// DefaultCgroupRoot.
	Root string
	// Hold bounds how long a class keeps a core while another class
	// waits for it; a sibling then takes the core over and preempts. Zero
	// means 40ms. Shorter means less waiting and more handovers.
	Hold time.Duration
	// OnDSQ makes smt a filter on the dsq component's queues instead of
	// the owner of ops.enqueue and ops.dispatch: tasks wait in dsq's
	// (domain, class) queues, in the class the scheduler or an orderer
	// (preempt with its OnDSQ) gives them, and in ops.dispatch smt tells
	// the orderer which dsq classes the CPU may run now. The classes are
	// then Groups of dsq classes, not cgroups: Isolate must be empty.
	// The scheduler's object includes scxkit/smt.bpf.h after
	// scxkit/dsq.bpf.h and calls the _on hooks.
	OnDSQ bool
	// Groups, with OnDSQ, lists the isolated classes as sets of dsq class
	// numbers: the tasks of the dsq classes of one group may share a
	// core, and no two groups ever do. dsq classes in no group form the
	// system class. A class number appears at most once, below
	// MaxDSQClasses (and below dsq.Options.Classes, which Bind checks).
	Groups [][]int
}

// Validate checks o without looking at the machine: Hold, the number of
// cgroups, and the form of their paths (a path with a ".." element is
// refused, as it could name a directory outside Root). New checks the
// same and then that the cgroups exist; a command line tool calls
// Validate to refuse a bad configuration before loading a scheduler.
// Errors wrap ErrInvalid, or ErrTooBig for too many cgroups.
func (o Options) Validate() error {
	root := o.root()
	switch {
	case o.Hold < 0:
		return fmt.Errorf("smt: Hold %v is negative: %w: use zero for the default", o.Hold, ErrInvalid)
	case len(o.Isolate) > MaxIsolated:
		return fmt.Errorf("smt: %d isolated cgroups: %w: at most %d fit the BPF layout; isolate fewer, or raise SK_SMT_MAX_CLASSES in scxkit/smt.h and rebuild", len(o.Isolate), ErrTooBig, MaxIsolated)
	}
	switch {
	case len(o.Groups) > 0 && !o.OnDSQ:
		return fmt.Errorf("smt: %d Groups without OnDSQ: %w: groups of dsq classes need OnDSQ; isolate cgroups with Isolate", len(o.Groups), ErrInvalid)
	case o.OnDSQ && len(o.Isolate) > 0:
		return fmt.Errorf("smt: Isolate %q with OnDSQ: %w: on dsq's queues the classes are Groups of dsq classes; give the cgroups their own dsq class (e.g. a preempt class with Cgroups) and list it in Groups", o.Isolate, ErrInvalid)
	case len(o.Groups) > MaxIsolated:
		return fmt.Errorf("smt: %d groups: %w: at most %d fit the BPF layout", len(o.Groups), ErrTooBig, MaxIsolated)
	}
	seen := map[int]int{}
	for i, g := range o.Groups {
		if len(g) == 0 {
			return fmt.Errorf("smt: group %d is empty: %w: list at least one dsq class, or drop it", i+1, ErrInvalid)
		}
		for _, c := range g {
			if c < 0 || c >= MaxDSQClasses {
				return fmt.Errorf("smt: group %d: dsq class %d: %w: dsq classes are numbered 0 to %d", i+1, c, ErrInvalid, MaxDSQClasses-1)
			}
			if j, ok := seen[c]; ok {
				return fmt.Errorf("smt: dsq class %d is in group %d and group %d: %w: a class belongs to one group", c, j+1, i+1, ErrInvalid)
			}
			seen[c] = i
		}
	}
	for _, p := range o.Isolate {
		if err := checkCgroupPath(root, p); err != nil {
			// The sentinel goes last, so that err's message (what is
			// wrong and the fix) follows the path, as
			// smt/cgroup_test.go expects.
			return fmt.Errorf("smt: isolate %q: %w (%w)", p, err, ErrInvalid)
		}
	}
	return nil
}

// root is Root with its default applied.
func (o Options) root() string {
	if o.Root == "" {
		return DefaultCgroupRoot
	}
	return o.Root
}

// Class is a set of tasks that may share a core.
type Class struct {
	// Index is the class number in BPF: 0 for the system class, then the
	// isolated cgroups in Options.Isolate order, or the Options.Groups
	// in order.
	Index int
	// Path is the cgroup path as given in Options.Isolate, "" for the
	// system class and for groups.
	Path string
	// Dir is the cgroup's directory, "" for the system class and for
	// groups.
	Dir string
	// CgroupID is the cgroup's id (the directory's inode number), 0 for
	// the system class and for groups.
	CgroupID uint64
	// DSQClasses are the dsq classes of a group (Options.Groups), in
	// ascending order; nil for cgroups and for the system class.
	DSQClasses []int
}

// Name returns the cgroup path, "system" for the system class, or for a
// group "dsq" and its dsq classes joined by "+" ("dsq2", "dsq1+3"). It is
// the value of the "class" label of the component's stats.
func (c Class) Name() string {
	switch {
	case c.Path != "":
		return c.Path
	case len(c.DSQClasses) > 0:
		var b strings.Builder
		b.WriteString("dsq")
		for i, d := range c.DSQClasses {
			if i > 0 {
				b.WriteByte('+')
			}
			b.WriteString(strconv.Itoa(d))
		}
		return b.String()
	}
	return "system"
}

// key is the class's key in sk_smt_stats: the cgroup id, or for a group
// its index (there are no cgroups to clash with then).
func (c Class) key() uint64 {
	if len(c.DSQClasses) > 0 {
		return uint64(c.Index)
	}
	return c.CgroupID
}

// Layout is the smt component: the Options resolved against the machine
// (the classes with their cgroup ids, the SMT siblings of every CPU),
// which it hands to the BPF half, scxkit/smt.bpf.h, when it is bound, and
// the counters it reads back. It implements scx.Component and
// scx.Reporter; add it to scx.Config.Components.
type Layout struct {
	// Classes are the system class followed by the isolated cgroups.
	Classes []Class
	// Hold is Options.Hold with the default applied.
	Hold time.Duration
	// Siblings maps each online CPU (kernel id) to the other CPUs of its
	// core.
	Siblings map[int][]int

	topo  *topology.Topology
	onDSQ bool

	mu    sync.Mutex // guards what follows: Bind, Read and ReadStats
	objs  objects
	dobjs dsqObjects // with OnDSQ: objs and the groups
	bound bool
	stats *percpu.Reader[uint64, smttypesSkSmtCounters] // reads sk_smt_stats
	viol  uint64                                        // reads sk_smt_violations
	buf   []Counters                                    // what ReadStats reads into
}

// objects are the maps and globals of smt.bpf.h the Go side uses.
type objects struct {
	Layout     *ebpf.Variable `ebpf:"sk_smt_layout"`
	Violations *ebpf.Variable `ebpf:"sk_smt_violations"`
	Cgroups    *ebpf.Map      `ebpf:"sk_smt_cgroups"`
	Stats      *ebpf.Map      `ebpf:"sk_smt_stats"`
	DSQBase    *ebpf.Variable `ebpf:"sk_smt_dsq_base"`
}

// dsqObjects are what the filter on dsq's queues uses besides: the dsq
// class groups, which smt.bpf.h defines only when it is included after
// dsq.bpf.h.
type dsqObjects struct {
	objects
	Groups *ebpf.Variable `ebpf:"sk_smt_groups"`
}

// New resolves opts against the topology topo: it finds the cgroups' ids
// and every core's threads. It fails for Options that Validate refuses,
// a cgroup that does not exist (the error wraps fs.ErrNotExist), a path
// that is not a cgroup v2 directory (ErrNotCgroup), a cgroup listed twice
// (ErrInvalid), or a machine beyond the BPF layout's limits (ErrTooBig).
// A nil opts isolates no cgroup.
//
// The layout is read once: cgroups isolated later, or CPUs brought
// online, need a new Layout and a reload (runner.Command.Setup builds the
// components again before every restart).
func New(topo *topology.Topology, opts *Options) (*Layout, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	root := o.root()
	switch {
	case topo == nil || len(topo.CPUs) == 0:
		return nil, fmt.Errorf("smt: no topology: %w: pass topology.Discover's result", ErrInvalid)
	case topo.Online.Max() >= MaxCPUs:
		return nil, fmt.Errorf("smt: CPU %d: %w: the BPF layout holds kernel ids below %d; raise SK_SMT_MAX_CPUS in scxkit/smt.h and rebuild", topo.Online.Max(), ErrTooBig, MaxCPUs)
	}
	l := &Layout{Hold: o.Hold, Siblings: map[int][]int{}, topo: topo, onDSQ: o.OnDSQ}
	if l.Hold == 0 {
		l.Hold = 40 * time.Millisecond
	}
	l.Classes = append(l.Classes, Class{Index: int(smttypesSkSmtConstsSK_SYSTEM)})
	for _, p := range o.Isolate {
		dir, err := cgroupDir(root, p)
		if err != nil {
			return nil, fmt.Errorf("smt: isolate %q: %w", p, err)
		}
		id, err := CgroupID(dir)
		if err != nil {
			if notExist(err) {
				return nil, fmt.Errorf("smt: isolate %q: no such cgroup under %s: %w", p, root, os.ErrNotExist)
			}
			return nil, fmt.Errorf("smt: isolate %q: %w", p, err)
		}
		if i := slices.IndexFunc(l.Classes, func(c Class) bool { return c.CgroupID == id }); i >= 0 {
			return nil, fmt.Errorf("smt: isolate %q: %w: the same cgroup as %q; list it once", p, ErrInvalid, l.Classes[i].Path)
		}
		l.Classes = append(l.Classes, Class{Index: len(l.Classes), Path: p, Dir: dir, CgroupID: id})
	}
	for _, g := range o.Groups {
		l.Classes = append(l.Classes, Class{Index: len(l.Classes), DSQClasses: slices.Sorted(slices.Values(g))})
	}
	for _, core := range topo.Cores {
		cpus := core.CPUs.Slice()
		if len(cpus) > MaxThreads {
			return nil, fmt.Errorf("smt: core %d has %d threads: %w: the BPF layout holds %d per core; raise SK_SMT_MAX_SIBLINGS in scxkit/smt.h and rebuild", core.ID, len(cpus), ErrTooBig, MaxThreads)
		}
		for _, c := range cpus {
			l.Siblings[c] = slices.DeleteFunc(slices.Clone(cpus), func(o int) bool { return o == c })
		}
	}
	return l, nil
}

// Class returns the class of cgroup id, and whether there is one.
func (l *Layout) Class(cgroupID uint64) (Class, bool) {
	i := slices.IndexFunc(l.Classes, func(c Class) bool { return c.CgroupID == cgroupID })
	if i < 0 {
		return Class{}, false
	}
	return l.Classes[i], true
}

// Name implements scx.Component: "smt".
func (l *Layout) Name() string { return "smt" }

// Needs implements scx.Component. The scheduler's object includes
// scxkit/smt.bpf.h and calls its hooks from the callbacks below (see the
// header's comment); smt decides alone where ops.enqueue queues a task and
// what ops.dispatch runs, and needs one DSQ per class. With
// Options.OnDSQ it owns nothing and needs no DSQ ids: it Requires "dsq",
// whose queues it filters, and the object's sk_smt_groups (defined when
// smt.bpf.h is included after dsq.bpf.h).
//
// The flags: SCX_OPS_ENQ_LAST, so that a CPU whose class lost the core
// does not keep running its last task; SCX_OPS_KEEP_BUILTIN_IDLE, as
// ops.update_idle is implemented but the kernel's idle tracking is still
// used; SCX_OPS_ENQ_EXITING and SCX_OPS_ENQ_MIGRATION_DISABLED, so that
// every task goes through ops.enqueue rather than straight to a local DSQ.
func (l *Layout) Needs() scx.Needs {
	flags := []scx.OpsFlag{scx.EnqLast, scx.KeepBuiltinIdle, scx.EnqExiting, scx.EnqMigrationDisabled}
	if l.onDSQ {
		return scx.Needs{
			Flags:     flags,
			Callbacks: []string{"select_cpu", "enqueue", "dispatch", "running", "stopping", "update_idle", "disable"},
			Requires:  []string{"dsq"},
			Objects:   &l.dobjs,
			Header:    "scxkit/smt.bpf.h",
		}
	}
	return scx.Needs{
		Flags:     flags,
		Callbacks: []string{"init", "select_cpu", "running", "stopping", "update_idle", "disable"},
		Owns:      []string{"enqueue", "dispatch"},
		DSQs:      len(l.Classes),
		DSQBase:   bpfDSQBase,
		Objects:   &l.objs,
		Header:    "scxkit/smt.bpf.h",
	}
}

// Names of the globals and maps smt.bpf.h defines.
const (
	bpfLayout     = "sk_smt_layout"
	bpfViolations = "sk_smt_violations"
	bpfCgroups    = "sk_smt_cgroups"
	bpfStats      = "sk_smt_stats"
	bpfDSQBase    = "sk_smt_dsq_base"
	bpfGroups     = "sk_smt_groups"
)

// Bind implements scx.Component: it writes the layout (sk_smt_layout),
// the isolated cgroups' ids (sk_smt_cgroups) and a zeroed counter entry
// per class (sk_smt_stats), which ops.init (sk_smt_init) reads to create
// the classes' DSQs. Load calls it after every load, before attach. Tests
// that load smt.bpf.h in a plain collection bind with scx.NewBinding and
// a DSQ range of at least len(Classes) ids, whose first id they wrote into
// the sk_smt_dsq_base constant before load; Bind refuses a range that is
// not the object's.
func (l *Layout) Bind(b *scx.Binding) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.bound = false
	if l.onDSQ {
		if err := l.bindGroups(b); err != nil {
			return err
		}
	} else if err := l.bindOwnQueues(b); err != nil {
		return err
	}
	var st smttypesSkSmtLayout
	if size := uint32(unsafe.Sizeof(st)); l.objs.Layout.Size() != size {
		return fmt.Errorf("smt: bind: %s is %d bytes, this package expects %d: rebuild the object against this version of scxkit/smt.h", bpfLayout, l.objs.Layout.Size(), size)
	}
	l.encodeBPF(&st)
	if err := l.objs.Layout.Set(&st); err != nil {
		return fmt.Errorf("smt: bind: %s: %w", bpfLayout, err)
	}
	n, err := ebpf.PossibleCPU()
	if err != nil {
		return fmt.Errorf("smt: bind: %w", err)
	}
	zero := make([]smttypesSkSmtCounters, n)
	for _, c := range l.Classes {
		if c.Index > 0 {
			if err := l.objs.Cgroups.Put(c.CgroupID, uint32(c.Index)); err != nil {
				return fmt.Errorf("smt: bind: %s: cgroup %s: %w", bpfCgroups, c.Name(), err)
			}
		}
		if err := l.objs.Stats.Put(c.key(), zero); err != nil {
			return fmt.Errorf("smt: bind: %s: cgroup %s: %w", bpfStats, c.Name(), err)
		}
	}
	if l.stats, err = percpu.New[uint64, smttypesSkSmtCounters](l.objs.Stats, n); err != nil {
		return fmt.Errorf("smt: bind: %w", err)
	}
	l.bound = true
	return nil
}

// bindOwnQueues finds the objects of smt's own queues and checks their
// DSQ range.
func (l *Layout) bindOwnQueues(b *scx.Binding) error {
	if err := b.Assign(&l.objs); err != nil {
		return err // "bind smt: ...", listing every missing object
	}
	r := b.DSQs()
	if r.Count < len(l.Classes) {
		return fmt.Errorf("smt: bind: %d DSQ ids for %d classes: %w: bind with the range scx.Open allocated (Spec.DSQs(%q))", r.Count, len(l.Classes), ErrInvalid, l.Name())
	}
	// The loader wrote the range's first id into the object before load;
	// a Binding made by hand must say the same.
	var base uint64
	if err := l.objs.DSQBase.Get(&base); err != nil {
		return fmt.Errorf("smt: bind: %s: %w", bpfDSQBase, err)
	}
	if base != r.First {
		return fmt.Errorf("smt: bind: %s is %#x, but the binding's DSQ range starts at %#x: %w: set the constant to the range's first id before load", bpfDSQBase, base, r.First, ErrInvalid)
	}
	return nil
}

// bindGroups finds the objects of the filter on dsq's queues, checks the
// groups against the dsq layout's classes, and writes sk_smt_groups.
func (l *Layout) bindGroups(b *scx.Binding) error {
	if err := b.Assign(&l.dobjs); err != nil {
		return err // names sk_smt_groups if smt.bpf.h came before dsq.bpf.h
	}
	l.objs = l.dobjs.objects
	classes := MaxDSQClasses
	if c, ok := b.Required("dsq"); ok {
		if d, ok := c.(*dsq.Layout); ok {
			classes = d.Classes
		}
	}
	var g smttypesSkSmtGroups
	if size := uint32(unsafe.Sizeof(g)); l.dobjs.Groups.Size() != size {
		return fmt.Errorf("smt: bind: %s is %d bytes, this package expects %d: rebuild the object against this version of scxkit/smt.h", bpfGroups, l.dobjs.Groups.Size(), size)
	}
	if err := l.encodeGroups(&g, classes); err != nil {
		return err
	}
	if err := l.dobjs.Groups.Set(&g); err != nil {
		return fmt.Errorf("smt: bind: %s: %w", bpfGroups, err)
	}
	return nil
}

// encodeGroups converts the groups into the BPF layout for a dsq layout
// of classes classes per domain: each dsq class's smt class, and each smt
// class's dsq classes as a mask (the system class holds those of no
// group), which ops.dispatch reads each time.
func (l *Layout) encodeGroups(g *smttypesSkSmtGroups, classes int) error {
	*g = smttypesSkSmtGroups{Nr: uint32(classes)}
	for _, c := range l.Classes {
		for _, d := range c.DSQClasses {
			if d >= classes {
				return fmt.Errorf("smt: bind: group %s names dsq class %d, but dsq has %d classes per domain: %w: raise dsq.Options.Classes or fix Options.Groups", c.Name(), d, classes, ErrInvalid)
			}
			g.OfClass[d] = uint32(c.Index)
		}
	}
	for d := range classes {
		g.Mask[g.OfClass[d]] |= 1 << d
	}
	return nil
}

// encodeBPF converts l into the BPF layout.
func (l *Layout) encodeBPF(st *smttypesSkSmtLayout) {
	*st = smttypesSkSmtLayout{
		NrCpuIds:  uint32(l.topo.Online.Max() + 1),
		NrClasses: uint32(len(l.Classes)),
		HoldNs:    uint64(l.Hold.Nanoseconds()),
	}
	const none = int32(smttypesSkSmtConstsSK_NO_CPU)
	for i := range st.Cpus {
		e := &st.Cpus[i]
		e.Core = none
		for j := range e.Siblings {
			e.Siblings[j] = none
		}
	}
	for _, c := range l.topo.CPUs {
		e := &st.Cpus[c.KernelID]
		e.Core = int32(c.Core)
		for i, s := range l.Siblings[c.KernelID] {
			e.Siblings[i] = int32(s)
		}
	}
	for _, c := range l.Classes {
		st.ClassCgroup[c.Index] = c.key()
	}
}
