package idle

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"golang.org/x/sys/unix"

	"github.com/scxkit/scxkit/scx"
)

// ErrInvalid is wrapped by Bind's error for an object whose
// sk_idle_cpus is not the layout this package reads.
var ErrInvalid = errors.New("invalid idle layout")

// bpfHeader is the header a scheduler includes for the component.
const bpfHeader = "scxkit/idle.bpf.h"

// bpfObjects are the globals idle.bpf.h defines.
type bpfObjects struct {
	CPUs *ebpf.Variable `ebpf:"sk_idle_cpus"`
}

// CPU is one CPU's idle state. Times are CLOCK_MONOTONIC nanoseconds
// (bpf_ktime_get_ns), the clock Now reads.
type CPU struct {
	IdleSince uint64 // when it went idle; 0 while busy or unknown
	BusySince uint64 // when it left idle; 0 while idle or unknown
}

// Idle reports whether the CPU is idle.
func (c CPU) Idle() bool { return c.IdleSince != 0 }

// Busy reports whether the CPU is running a task.
func (c CPU) Busy() bool { return c.BusySince != 0 }

// IdleFor returns how long the CPU has been idle at now (from Now), 0 if
// it is busy or unknown.
func (c CPU) IdleFor(now uint64) time.Duration {
	if c.IdleSince == 0 || now <= c.IdleSince {
		return 0
	}
	return time.Duration(now - c.IdleSince)
}

// Now returns the current CLOCK_MONOTONIC time in nanoseconds, the clock
// of CPU's times.
func Now() (uint64, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0, fmt.Errorf("idle: clock_gettime(CLOCK_MONOTONIC): %w", err)
	}
	return uint64(ts.Nano()), nil
}

// Tracker is the idle component ("idle"). The zero value is not usable;
// call New. It is safe for concurrent use.
type Tracker struct {
	mu     sync.Mutex
	objs   bpfObjects
	layout layout
	ncpu   int    // entries Read returns: possible CPUs, at most layout.n
	buf    []byte // one copy of sk_idle_cpus
	bound  bool
}

// New returns a Tracker, to be listed in scx.Config.Components.
func New() *Tracker { return &Tracker{} }

// Name implements scx.Component.
func (t *Tracker) Name() string { return "idle" }

// Needs implements scx.Component: ops.update_idle, which must call
// sk_idle_update, and SCX_OPS_KEEP_BUILTIN_IDLE, so that the kernel's
// idle tracking (and every kfunc built on it) keeps working beside it.
func (t *Tracker) Needs() scx.Needs {
	return scx.Needs{
		Flags:     []scx.OpsFlag{scx.KeepBuiltinIdle},
		Callbacks: []string{"update_idle"},
		Objects:   (*bpfObjects)(nil),
		Header:    bpfHeader,
	}
}

// Bind implements scx.Component: it finds sk_idle_cpus and checks its
// layout against the object's BTF. Load calls it after every load.
func (t *Tracker) Bind(b *scx.Binding) error {
	var objs bpfObjects
	if err := b.Assign(&objs); err != nil {
		return err
	}
	l, err := newLayout(objs.CPUs)
	if err != nil {
		return err
	}
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		return fmt.Errorf("idle: bind: %w", err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.objs, t.layout, t.ncpu = objs, l, min(ncpu, l.n)
	t.buf = make([]byte, objs.CPUs.Size())
	t.bound = true
	return nil
}

// Read appends the state of every possible CPU (at most as many as
// idle.bpf.h tracks, SK_IDLE_MAX_CPUS), indexed by kernel CPU id, to
// dst[:0] and returns it. Before Bind it fails with scx.ErrNotBound.
// Each CPU's two times are read together, from one copy of the global.
func (t *Tracker) Read(dst []CPU) ([]CPU, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.bound {
		return dst[:0], fmt.Errorf("idle: read: %w", scx.ErrNotBound)
	}
	if err := t.objs.CPUs.Get(t.buf); err != nil {
		return dst[:0], fmt.Errorf("idle: read sk_idle_cpus: %w", err)
	}
	dst = dst[:0]
	for i := range t.ncpu {
		dst = append(dst, t.layout.decode(t.buf, i))
	}
	return dst, nil
}

// layout is where struct sk_idle_cpu's fields are, from BTF.
type layout struct {
	n, stride  int // entries, bytes per entry
	idle, busy int // field offsets
}

func (l layout) decode(buf []byte, i int) CPU {
	e := buf[i*l.stride:]
	return CPU{IdleSince: binary.NativeEndian.Uint64(e[l.idle:]), BusySince: binary.NativeEndian.Uint64(e[l.busy:])}
}

// newLayout reads the layout of v, an array of struct sk_idle_cpu.
func newLayout(v *ebpf.Variable) (layout, error) {
	bad := func(what string) (layout, error) {
		return layout{}, fmt.Errorf("idle: bind: sk_idle_cpus %s: %w: rebuild the object against this version of %s", what, ErrInvalid, bpfHeader)
	}
	if v.Type() == nil {
		return bad("has no BTF")
	}
	arr, ok := btf.UnderlyingType(v.Type().Type).(*btf.Array)
	if !ok || arr.Nelems == 0 {
		return bad("is not an array")
	}
	st, ok := btf.UnderlyingType(arr.Type).(*btf.Struct)
	if !ok || st.Name != "sk_idle_cpu" {
		return bad("is not an array of struct sk_idle_cpu")
	}
	l := layout{n: int(arr.Nelems), stride: int(st.Size), idle: -1, busy: -1}
	for _, m := range st.Members {
		in, ok := btf.UnderlyingType(m.Type).(*btf.Int)
		if !ok || in.Size != 8 || m.Offset%8 != 0 || int(m.Offset/8)+8 > l.stride {
			continue
		}
		switch m.Name {
		case "idle_since":
			l.idle = int(m.Offset / 8)
		case "busy_since":
			l.busy = int(m.Offset / 8)
		}
	}
	if l.idle < 0 || l.busy < 0 {
		return bad("lacks the u64 fields idle_since and busy_since")
	}
	if int(v.Size()) != l.n*l.stride {
		return bad(fmt.Sprintf("is %d bytes, not %d entries of %d", v.Size(), l.n, l.stride))
	}
	return l, nil
}
