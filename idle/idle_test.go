package idle

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/scxkit/scxkit/scx"
)

//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -tags linux -target bpfel -no-global-types selftest selftest.bpf.c -- -mcpu=v3 -Wno-missing-declarations -I../bpf/include

// loadObjects loads selftest.bpf.c, or skips without the privileges. If
// tr is not nil, it binds tr first (Assign takes the objects out of the
// collection).
func loadObjects(t *testing.T, tr *Tracker) *selftestObjects {
	t.Helper()
	spec, err := loadSelftest()
	if err != nil {
		t.Fatal(err)
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		t.Skipf("load selftest.bpf.c (needs root and BPF): %v", err)
	}
	t.Cleanup(coll.Close)
	if tr != nil {
		if _, err := tr.Read(nil); !errors.Is(err, scx.ErrNotBound) {
			t.Fatalf("Read before Bind = %v; want ErrNotBound", err)
		}
		if err := tr.Bind(scx.NewBinding("idle", coll, nil, scx.DSQRange{})); err != nil {
			t.Fatal(err)
		}
	}
	var objs selftestObjects
	if err := coll.Assign(&objs); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { objs.Close() })
	return &objs
}

func run(t *testing.T, p *ebpf.Program) {
	t.Helper()
	if ret, err := p.Run(&ebpf.RunOptions{}); err != nil || ret != 0 {
		t.Fatalf("run %v: %d, %v", p, ret, err)
	}
}

func set[T any](t *testing.T, v *ebpf.Variable, x T) {
	t.Helper()
	if err := v.Set(x); err != nil {
		t.Fatal(err)
	}
}

func get[T any](t *testing.T, v *ebpf.Variable) T {
	t.Helper()
	var x T
	if err := v.Get(&x); err != nil {
		t.Fatal(err)
	}
	return x
}

// TestNeeds checks what the component asks of the scheduler: the
// callback it is fed from and the flag that keeps builtin idle tracking.
func TestNeeds(t *testing.T) {
	n := New().Needs()
	if !slices.Equal(n.Callbacks, []string{"update_idle"}) || !slices.Equal(n.Flags, []scx.OpsFlag{scx.KeepBuiltinIdle}) {
		t.Errorf("Needs = %+v; want callback update_idle and flag %s", n, scx.KeepBuiltinIdle)
	}
	if n.Header != "scxkit/idle.bpf.h" || len(n.Owns) != 0 {
		t.Errorf("Needs = %+v; want header scxkit/idle.bpf.h, owning no callback", n)
	}
}

// TestTrack plays transitions through sk_idle_update and reads them back
// from BPF (sk_idle_since, sk_idle_busy_since, sk_idle_for) and from Go
// (Tracker.Read).
func TestTrack(t *testing.T) {
	tr := New()
	o := loadObjects(t, tr)
	possible, err := ebpf.PossibleCPU()
	if err != nil {
		t.Fatal(err)
	}
	cpus, err := tr.Read(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cpus) != min(possible, 512) {
		t.Fatalf("Read returned %d CPUs, want the %d possible", len(cpus), possible)
	}
	for i, c := range cpus {
		if c.Idle() || c.Busy() {
			t.Errorf("CPU %d before any update: %+v, want unknown (both 0)", i, c)
		}
	}

	last := possible - 1
	update := func(cpu int, idle bool) {
		t.Helper()
		set(t, o.InCpu, int32(cpu))
		v := uint32(0)
		if idle {
			v = 1
		}
		set(t, o.InIdle, v)
		run(t, o.StUpdate)
	}
	query := func(cpu int, now uint64) (idleSince, busySince, idleFor uint64) {
		t.Helper()
		set(t, o.InCpu, int32(cpu))
		set(t, o.InNow, now)
		run(t, o.StQuery)
		return get[uint64](t, o.OutIdleSince), get[uint64](t, o.OutBusySince), get[uint64](t, o.OutIdleFor)
	}

	before, err := Now()
	if err != nil {
		t.Fatal(err)
	}
	update(0, true)
	update(last, false)
	after, _ := Now()

	is, bs, _ := query(0, 0)
	if is < before || is > after || bs != 0 {
		t.Errorf("CPU 0 after going idle: idle_since %d, busy_since %d; want idle_since in [%d, %d] (CLOCK_MONOTONIC), busy_since 0", is, bs, before, after)
	}
	if _, _, f := query(0, is+5000); f != 5000 {
		t.Errorf("sk_idle_for(0, idle_since+5000) = %d, want 5000", f)
	}
	if _, _, f := query(0, is-1); f != 0 {
		t.Errorf("sk_idle_for before idle_since = %d, want 0", f)
	}
	is, bs, f := query(last, after)
	if is != 0 || bs < before || bs > after || f != 0 {
		t.Errorf("CPU %d after leaving idle: idle_since %d, busy_since %d, idle_for %d; want 0, in [%d, %d], 0", last, is, bs, f, before, after)
	}
	if is, bs, _ := query(-1, 0); is != 0 || bs != 0 {
		t.Errorf("CPU -1: %d, %d; want 0, 0", is, bs)
	}
	update(512, true) // out of range: ignored

	cpus, err = tr.Read(cpus)
	if err != nil {
		t.Fatal(err)
	}
	if c := cpus[0]; !c.Idle() || c.Busy() || c.IdleSince < before || c.IdleSince > after {
		t.Errorf("Go reads CPU 0 as %+v; want idle since [%d, %d]", c, before, after)
	}
	if c := cpus[last]; c.Idle() || !c.Busy() || c.IdleFor(after) != 0 {
		t.Errorf("Go reads CPU %d as %+v; want busy", last, c)
	}
	if got := cpus[0].IdleFor(cpus[0].IdleSince + uint64(time.Millisecond)); got != time.Millisecond {
		t.Errorf("IdleFor = %v, want 1ms", got)
	}

	// Back to busy: idle_since is cleared, busy_since set.
	update(0, false)
	cpus, _ = tr.Read(cpus)
	if c := cpus[0]; c.Idle() || !c.Busy() || c.BusySince < after {
		t.Errorf("CPU 0 after leaving idle: %+v; want busy since after %d", c, after)
	}
}

// TestLayoutErrors checks that a global of another shape is refused with
// an error naming the header to rebuild against.
func TestLayoutErrors(t *testing.T) {
	o := loadObjects(t, nil)
	for _, v := range []*ebpf.Variable{o.NotIdleCpus, o.InCpu} {
		if _, err := newLayout(v); !errors.Is(err, ErrInvalid) {
			t.Errorf("newLayout(%v) = %v; want ErrInvalid", v, err)
		}
	}
	if _, err := newLayout(o.SkIdleCpus); err != nil {
		t.Errorf("newLayout(sk_idle_cpus): %v", err)
	}
}
