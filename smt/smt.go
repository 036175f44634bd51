package smt

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"

	"github.com/scxkit/scxkit/scx"
	"github.com/scxkit/scxkit/topology"
)

// Limits of the BPF-side layout (bpf/include/scxkit/smt.h).
const (
	// MaxCPUs bounds kernel CPU ids (SK_SMT_MAX_CPUS).
	MaxCPUs = 512
	// MaxThreads is the most hardware threads per core (1 +
	// SK_SMT_MAX_SIBLINGS).
	MaxThreads = 4
	// MaxIsolated is the most isolated cgroups (SK_SMT_MAX_CLASSES - 1).
	MaxIsolated = 31
	// DSQBase is the first DSQ id of the classes' queues
	// (SK_SMT_DSQ_BASE); class i uses DSQBase + i.
	DSQBase = 0x534d5400
)

// Names of the globals and maps smt.bpf.h defines.
const (
	bpfLayout     = "sk_smt_layout"
	bpfViolations = "sk_smt_violations"
	bpfCgroups    = "sk_smt_cgroups"
	bpfStats      = "sk_smt_stats"
)

// OpsFlags are the sched_ext_ops flags a scheduler using smt.bpf.h must set
// (scx.Config.Flags): the last task of a CPU must come back through
// ops.enqueue so that a CPU whose class lost the core stops running it,
// ops.update_idle is implemented but the kernel's idle tracking is still
// needed, and exiting and migration-disabled tasks must not bypass
// ops.enqueue.
var OpsFlags = []scx.OpsFlag{scx.EnqLast, scx.KeepBuiltinIdle, scx.EnqExiting, scx.EnqMigrationDisabled}

// ErrTooBig is wrapped by the errors for a machine or configuration that
// does not fit the BPF-side layout.
var ErrTooBig = errors.New("too big for the smt BPF layout")

// Config says which cgroups are isolated from each other.
type Config struct {
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
}

// Validate checks cfg without looking at the machine: Hold, the number of
// cgroups, and the form of their paths (a path with a ".." element is
// refused, as it could name a directory outside Root). New checks the
// same and then that the cgroups exist; a command line tool calls
// Validate to refuse a bad configuration before loading a scheduler.
func (c Config) Validate() error {
	root := c.Root
	if root == "" {
		root = DefaultCgroupRoot
	}
	switch {
	case c.Hold < 0:
		return fmt.Errorf("smt: Hold %v is negative: use zero for the default", c.Hold)
	case len(c.Isolate) > MaxIsolated:
		return fmt.Errorf("smt: %d isolated cgroups: %w (at most %d)", len(c.Isolate), ErrTooBig, MaxIsolated)
	}
	for _, p := range c.Isolate {
		if err := checkCgroupPath(root, p); err != nil {
			return fmt.Errorf("smt: isolate %q: %w", p, err)
		}
	}
	return nil
}

// Class is a set of tasks that may share a core.
type Class struct {
	// Index is the class number in BPF: 0 for the system class, then the
	// isolated cgroups in Config.Isolate order.
	Index int
	// Path is the cgroup path as given in Config.Isolate, "" for the
	// system class.
	Path string
	// Dir is the cgroup's directory, "" for the system class.
	Dir string
	// CgroupID is the cgroup's id (the directory's inode number), 0 for
	// the system class.
	CgroupID uint64
}

// Name returns the cgroup path, or "system" for the system class.
func (c Class) Name() string {
	if c.Path == "" {
		return "system"
	}
	return c.Path
}

// Layout is the configuration resolved against the machine: the classes
// with their cgroup ids and the SMT siblings of every CPU. It is plain
// data; WriteBPF hands it to a loaded scheduler.
type Layout struct {
	// Classes are the system class followed by the isolated cgroups.
	Classes []Class
	// Hold is Config.Hold with the default applied.
	Hold time.Duration
	// Siblings maps each online CPU (kernel id) to the other CPUs of its
	// core.
	Siblings map[int][]int

	topo *topology.Topology
}

// New resolves cfg against the topology topo: it finds the cgroups' ids
// and every core's threads. It fails for a cgroup that does not exist
// (the error wraps fs.ErrNotExist), a path that is not a cgroup v2
// directory (ErrNotCgroup), a cgroup listed twice, or a machine beyond the
// BPF layout's limits (ErrTooBig).
func New(topo *topology.Topology, cfg Config) (*Layout, error) {
	root := cfg.Root
	if root == "" {
		root = DefaultCgroupRoot
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch {
	case topo == nil || len(topo.CPUs) == 0:
		return nil, errors.New("smt: no topology: pass topology.Discover's result")
	case topo.Online.Max() >= MaxCPUs:
		return nil, fmt.Errorf("smt: CPU %d: %w (kernel ids below %d)", topo.Online.Max(), ErrTooBig, MaxCPUs)
	}
	l := &Layout{Hold: cfg.Hold, Siblings: map[int][]int{}, topo: topo}
	if l.Hold == 0 {
		l.Hold = 40 * time.Millisecond
	}
	l.Classes = append(l.Classes, Class{Index: 0})
	for _, p := range cfg.Isolate {
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
			return nil, fmt.Errorf("smt: isolate %q: the same cgroup as %q", p, l.Classes[i].Path)
		}
		l.Classes = append(l.Classes, Class{Index: len(l.Classes), Path: p, Dir: dir, CgroupID: id})
	}
	for _, core := range topo.Cores {
		cpus := core.CPUs.Slice()
		if len(cpus) > MaxThreads {
			return nil, fmt.Errorf("smt: core %d has %d threads: %w (at most %d)", core.ID, len(cpus), ErrTooBig, MaxThreads)
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

// encodeBPF converts l into the BPF layout.
func (l *Layout) encodeBPF(st *smttypesSkSmtLayout) {
	*st = smttypesSkSmtLayout{
		NrCpuIds:  uint32(l.topo.Online.Max() + 1),
		NrClasses: uint32(len(l.Classes)),
		HoldNs:    uint64(l.Hold.Nanoseconds()),
	}
	for i := range st.Cpus {
		st.Cpus[i].Core = -1
		st.Cpus[i].Siblings = [3]int32{-1, -1, -1}
	}
	for _, c := range l.topo.CPUs {
		e := &st.Cpus[c.KernelID]
		e.Core = int32(c.Core)
		for i, s := range l.Siblings[c.KernelID] {
			e.Siblings[i] = int32(s)
		}
	}
	for _, c := range l.Classes {
		st.ClassCgroup[c.Index] = c.CgroupID
	}
}

// WriteBPF hands l to a loaded scheduler that includes
// scxkit/smt.bpf.h: the sk_smt_layout global, the isolated cgroups'
// ids, and a zeroed counter entry per class. Call it after scx.Spec.Load
// and before Attach (ops.init creates the classes' DSQs from it).
func (l *Layout) WriteBPF(coll *ebpf.Collection) error {
	v := coll.Variables[bpfLayout]
	cgroups, stats := coll.Maps[bpfCgroups], coll.Maps[bpfStats]
	if v == nil || cgroups == nil || stats == nil {
		return fmt.Errorf("smt: write BPF: the object lacks one of %s, %s and %s: include scxkit/smt.bpf.h", bpfLayout, bpfCgroups, bpfStats)
	}
	var st smttypesSkSmtLayout
	if size := uint32(unsafe.Sizeof(st)); v.Size() != size {
		return fmt.Errorf("smt: write BPF: %s is %d bytes, this package expects %d: rebuild the object against this version of scxkit/smt.h", bpfLayout, v.Size(), size)
	}
	l.encodeBPF(&st)
	if err := v.Set(&st); err != nil {
		return fmt.Errorf("smt: write BPF: %s: %w", bpfLayout, err)
	}
	n, err := ebpf.PossibleCPU()
	if err != nil {
		return fmt.Errorf("smt: write BPF: %w", err)
	}
	zero := make([]smttypesSkSmtCounters, n)
	for _, c := range l.Classes {
		if c.Index > 0 {
			if err := cgroups.Put(c.CgroupID, uint32(c.Index)); err != nil {
				return fmt.Errorf("smt: write BPF: %s: cgroup %s: %w", bpfCgroups, c.Name(), err)
			}
		}
		if err := stats.Put(c.CgroupID, zero); err != nil {
			return fmt.Errorf("smt: write BPF: %s: cgroup %s: %w", bpfStats, c.Name(), err)
		}
	}
	return nil
}
