package cpuset

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/scxkit/scxkit/topology"
)

//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -tags linux -target bpfel -no-global-types selftest selftest.bpf.c -- -mcpu=v3 -Wno-missing-declarations -I../bpf/include

// loadSelftest loads selftest.bpf.c, or skips without the privileges.
func loadObjects(t *testing.T) *selftestObjects {
	t.Helper()
	var objs selftestObjects
	if err := loadSelftestObjects(&objs, nil); err != nil {
		t.Skipf("load selftest.bpf.c (needs root and BPF): %v", err)
	}
	t.Cleanup(func() { objs.Close() })
	return &objs
}

func run(t *testing.T, p *ebpf.Program) {
	t.Helper()
	ret, err := p.Run(&ebpf.RunOptions{})
	if err != nil {
		t.Fatalf("run %v: %v", p, err)
	}
	if ret != 0 {
		t.Fatalf("run %v: returned %d", p, ret)
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

func write(t *testing.T, v *ebpf.Variable, m topology.Cpumask) {
	t.Helper()
	if err := Write(v, m); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, v *ebpf.Variable) topology.Cpumask {
	t.Helper()
	m, err := Read(v)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestCapacity checks the set's size, from the object's BTF, against the
// topology component's bound: both headers must agree.
func TestCapacity(t *testing.T) {
	o := loadObjects(t)
	n, err := Capacity(o.SetA)
	if err != nil {
		t.Fatal(err)
	}
	if n != topology.MaxBPFCPUs {
		t.Errorf("Capacity = %d, topology.MaxBPFCPUs = %d: SK_CPUSET_MAX_CPUS must follow SK_TOPO_MAX_CPUS", n, topology.MaxBPFCPUs)
	}
}

// edgeCPUs are the CPUs where a word boundary or the end of the set
// would show an off-by-one.
var edgeCPUs = []int{0, 1, 63, 64, 65, 127, 128, 300, topology.MaxBPFCPUs - 2, topology.MaxBPFCPUs - 1}

// TestAtomicOps runs set, clear, test-and-set and test-and-clear in BPF
// on each edge CPU and reads the set back through Read, which must see
// exactly the CPUs BPF added.
func TestAtomicOps(t *testing.T) {
	o := loadObjects(t)
	var want topology.Cpumask
	for _, cpu := range edgeCPUs {
		set(t, o.InCpu, int32(cpu))
		run(t, o.StSet)
		want.Set(cpu)
		if got := read(t, o.SetA); !got.Equal(want) {
			t.Fatalf("after set(%d): %v, want %v", cpu, got, want)
		}
		run(t, o.StQuery)
		if get[uint32](t, o.OutTest) != 1 {
			t.Errorf("test(%d) after set = false", cpu)
		}
		run(t, o.StTestAndSet)
		if get[int32](t, o.OutRet) != 1 {
			t.Errorf("test_and_set(%d) on a member returned false", cpu)
		}
	}
	run(t, o.StQuery)
	if w := get[uint32](t, o.OutWeight); w != uint32(len(edgeCPUs)) {
		t.Errorf("weight = %d, want %d", w, len(edgeCPUs))
	}
	for _, cpu := range edgeCPUs {
		set(t, o.InCpu, int32(cpu))
		run(t, o.StTestAndClear)
		if get[int32](t, o.OutRet) != 1 {
			t.Errorf("test_and_clear(%d) on a member returned false", cpu)
		}
		run(t, o.StTestAndClear)
		if get[int32](t, o.OutRet) != 0 {
			t.Errorf("test_and_clear(%d) on a non-member returned true", cpu)
		}
		run(t, o.StTestAndSet)
		if get[int32](t, o.OutRet) != 0 {
			t.Errorf("test_and_set(%d) on a non-member returned true", cpu)
		}
		run(t, o.StClear)
		want.Clear(cpu)
		if got := read(t, o.SetA); !got.Equal(want) {
			t.Fatalf("after clear(%d): %v, want %v", cpu, got, want)
		}
	}
	run(t, o.StQuery)
	if get[uint32](t, o.OutEmpty) != 1 || get[uint32](t, o.OutWeight) != 0 || get[int32](t, o.OutFirst) != -1 {
		t.Errorf("emptied set: empty %d, weight %d, first %d; want 1, 0, -1",
			get[uint32](t, o.OutEmpty), get[uint32](t, o.OutWeight), get[int32](t, o.OutFirst))
	}

	// CPUs out of range are never members and change nothing.
	write(t, o.SetA, topology.MaskOf(5))
	for _, cpu := range []int32{-1, -64, topology.MaxBPFCPUs, topology.MaxBPFCPUs + 63, 1 << 30} {
		set(t, o.InCpu, cpu)
		run(t, o.StSet)
		run(t, o.StClear)
		run(t, o.StQuery)
		if get[uint32](t, o.OutTest) != 0 {
			t.Errorf("test(%d) = true for a CPU out of range", cpu)
		}
		run(t, o.StTestAndSet)
		if get[int32](t, o.OutRet) != 1 {
			t.Errorf("test_and_set(%d) = false out of range; want true (nothing to set)", cpu)
		}
		run(t, o.StTestAndClear)
		if get[int32](t, o.OutRet) != 0 {
			t.Errorf("test_and_clear(%d) = true out of range", cpu)
		}
		if got := read(t, o.SetA); !got.Equal(topology.MaskOf(5)) {
			t.Errorf("CPU %d out of range changed the set to %v", cpu, got)
		}
	}
	run(t, o.StZero)
	if got := read(t, o.SetA); !got.Empty() {
		t.Errorf("after zero: %v", got)
	}
}

// randomMask returns a mask of CPUs below topology.MaxBPFCPUs, dense,
// sparse or empty, with the edge CPUs likelier.
func randomMask(r *rand.Rand) topology.Cpumask {
	var m topology.Cpumask
	switch r.IntN(4) {
	case 0: // empty
	case 1:
		for range r.IntN(4) + 1 {
			m.Set(edgeCPUs[r.IntN(len(edgeCPUs))])
		}
	case 2:
		for range r.IntN(20) {
			m.Set(r.IntN(topology.MaxBPFCPUs))
		}
	default:
		for c := range topology.MaxBPFCPUs {
			if r.IntN(3) > 0 {
				m.Set(c)
			}
		}
	}
	return m
}

// TestQueryIterate compares weight, empty, first, next, first_and and the
// documented iteration loop with topology.Cpumask on random sets.
func TestQueryIterate(t *testing.T) {
	o := loadObjects(t)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		a, b := randomMask(r), randomMask(r)
		if i%5 == 0 {
			b = a.Clone() // first_and of a set with itself
		}
		write(t, o.SetA, a)
		write(t, o.SetB, b)
		from := r.IntN(topology.MaxBPFCPUs+20) - 10
		if i%3 == 0 && !a.Empty() {
			from = a.Slice()[r.IntN(a.Weight())] // exactly on a member
		}
		set(t, o.InCpu, int32(from))
		run(t, o.StQuery)
		run(t, o.StIterate)

		wantNext := -1
		for c := range a.All() {
			if c >= from {
				wantNext = c
				break
			}
		}
		empty := uint32(0)
		if a.Empty() {
			empty = 1
		}
		for _, c := range []struct {
			name      string
			got, want int
		}{
			{"weight", int(get[uint32](t, o.OutWeight)), a.Weight()},
			{"empty", int(get[uint32](t, o.OutEmpty)), int(empty)},
			{"first", int(get[int32](t, o.OutFirst)), a.First()},
			{"next", int(get[int32](t, o.OutNext)), wantNext},
			{"first_and", int(get[int32](t, o.OutFirstAnd)), a.And(b).First()},
		} {
			if c.got != c.want {
				t.Errorf("set %v, b %v, from %d: %s = %d, want %d", a, b, from, c.name, c.got, c.want)
			}
		}
		n := get[uint32](t, o.OutN)
		cpus := get[[topology.MaxBPFCPUs]int32](t, o.OutCpus)
		var it []int
		for _, c := range cpus[:min(n, topology.MaxBPFCPUs)] {
			it = append(it, int(c))
		}
		if !slices.Equal(it, a.Slice()) {
			t.Errorf("iterating %v gave %d CPUs, %v", a, len(it), shorten(it))
		}
	}
}

// TestFromCpumask converts a kernel cpumask (a bpf_cpumask, which holds
// only CPUs below nr_cpu_ids) into a set, reading no CPU at or above the
// bound it is given.
func TestFromCpumask(t *testing.T) {
	o := loadObjects(t)
	possible, err := ebpf.PossibleCPU()
	if err != nil {
		t.Fatal(err)
	}
	in := topology.MaskOf(0, 1, possible-1, 64, 511)
	for _, nr := range []int{possible, 1, 0, 64, topology.MaxBPFCPUs + 100} {
		write(t, o.SetA, in)
		write(t, o.OutSet, topology.MaskOf(7, 100)) // overwritten whole
		set(t, o.InCpu, int32(nr))
		run(t, o.StFromCpumask)
		var want topology.Cpumask
		for c := range in.All() {
			if c < possible && c < nr {
				want.Set(c)
			}
		}
		if got := read(t, o.OutSet); !got.Equal(want) {
			t.Errorf("from cpumask of %v (%d possible CPUs), bound %d = %v, want %v", in, possible, nr, got, want)
		}
	}
}

// TestClaim runs sk_cpuset_claim against a stand-in for the kernel's idle
// bits (fake_idle): the view says which CPUs looked idle, fake_idle which
// still are when claimed.
func TestClaim(t *testing.T) {
	o := loadObjects(t)
	for _, tt := range []struct {
		name               string
		set, view, idle    topology.Cpumask
		second             topology.Cpumask // the set tried next with the same view
		prev               int
		want, wantSecond   int
		wantView, wantIdle topology.Cpumask
	}{
		{name: "prev wins", set: topology.MaskOf(1, 5, 64), view: topology.MaskOf(1, 5, 64), idle: topology.MaskOf(1, 5, 64),
			prev: 64, want: 64, wantSecond: -1, wantView: topology.MaskOf(1, 5), wantIdle: topology.MaskOf(1, 5)},
		{name: "lowest otherwise", set: topology.MaskOf(5, 64, 511), view: topology.MaskOf(0, 5, 64, 511), idle: topology.MaskOf(0, 5, 64, 511),
			prev: 0, want: 5, wantSecond: -1, wantView: topology.MaskOf(0, 64, 511), wantIdle: topology.MaskOf(0, 64, 511)},
		{name: "prev outside set", set: topology.MaskOf(511), view: topology.MaskOf(3, 511), idle: topology.MaskOf(3, 511),
			prev: 3, want: 511, wantSecond: -1, wantView: topology.MaskOf(3), wantIdle: topology.MaskOf(3)},
		{name: "taken meanwhile", set: topology.MaskOf(2, 63, 64, 200), view: topology.MaskOf(2, 63, 64, 200), idle: topology.MaskOf(200),
			prev: 63, want: 200, wantSecond: -1, wantView: nil0(), wantIdle: nil0()},
		{name: "no candidate in set", set: topology.MaskOf(1, 2), view: topology.MaskOf(3), idle: topology.MaskOf(1, 2, 3),
			prev: 1, want: -1, wantSecond: -1, wantView: topology.MaskOf(3), wantIdle: topology.MaskOf(1, 2, 3)},
		{name: "second set", set: topology.MaskOf(0, 1), second: topology.MaskOf(1, 2, 300), view: topology.MaskOf(1, 2, 300), idle: topology.MaskOf(2, 300),
			prev: 1, want: -1, wantSecond: 2, wantView: topology.MaskOf(300), wantIdle: topology.MaskOf(300)},
		{name: "prev out of range", set: topology.MaskOf(0), view: topology.MaskOf(0), idle: topology.MaskOf(0),
			prev: -1, want: 0, wantSecond: -1, wantView: nil0(), wantIdle: nil0()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			write(t, o.SetA, tt.set)
			write(t, o.OutSet, tt.second)
			write(t, o.SetB, tt.view)
			write(t, o.FakeIdle, tt.idle)
			set(t, o.InCpu, int32(tt.prev))
			run(t, o.StClaim)
			if got := get[int32](t, o.OutRet); int(got) != tt.want {
				t.Errorf("claim = %d, want %d", got, tt.want)
			}
			if got := get[int32](t, o.OutFirst); int(got) != tt.wantSecond {
				t.Errorf("claim in the second set = %d, want %d", got, tt.wantSecond)
			}
			if got := read(t, o.SetB); !got.Equal(tt.wantView) {
				t.Errorf("view after = %v, want %v", got, tt.wantView)
			}
			if got := read(t, o.FakeIdle); !got.Equal(tt.wantIdle) {
				t.Errorf("idle after = %v, want %v", got, tt.wantIdle)
			}
		})
	}
}

// shorten keeps the first 20 CPUs of a list for a failure message.
func shorten(cpus []int) []int { return cpus[:min(len(cpus), 20)] }

func nil0() topology.Cpumask { return topology.Cpumask{} }

// TestTimer starts a periodic timer from a syscall program and waits for
// its callback to fire again and again: each firing re-arms it.
func TestTimer(t *testing.T) {
	for _, pinned := range []bool{false, true} {
		name := "any CPU"
		if pinned {
			name = "pinned"
		}
		t.Run(name, func(t *testing.T) {
			o := loadObjects(t)
			if pinned {
				set(t, o.InCpu, int32(1))
			}
			run(t, o.StTimerStart)
			if err := get[int32](t, o.OutRet); err != 0 {
				t.Fatalf("sk_timer_start = %d", err)
			}
			// A 1ms timer fires 5 times in 5ms; 30s bounds the wait on
			// a loaded host, and only the count decides.
			deadline := time.Now().Add(30 * time.Second)
			for {
				run(t, o.StTimerRead)
				fires := get[uint32](t, o.OutWeight)
				body := get[uint64](t, o.TimerBodyRuns)
				if fires >= 5 && body >= 5 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("timer fired %d times (body ran %d) in 30s, want 5: not re-armed?", fires, body)
				}
				time.Sleep(5 * time.Millisecond)
			}
			run(t, o.StTimerStart)
			if err := get[int32](t, o.OutRet); err == 0 {
				t.Error("starting a started timer succeeded; want an error (bpf_timer_init: -EBUSY)")
			}
		})
	}
}

// TestErrors checks that Read, Write and Capacity refuse what is not a
// set, and masks that do not fit, with errors naming the variable and
// the fix.
func TestErrors(t *testing.T) {
	o := loadObjects(t)
	for _, tt := range []struct {
		name string
		err  error
		want []string
	}{
		{"nil", func() error { _, err := Read(nil); return err }(), []string{"nil variable"}},
		{"u64 array", func() error { _, err := Read(o.NotA_set); return err }(), []string{`"not_a_set"`, "not struct sk_cpuset", "struct sk_cpuset not_a_set"}},
		{"scalar", func() error { _, err := Capacity(o.InCpu); return err }(), []string{`"in_cpu"`, "not struct sk_cpuset"}},
		{"read-only", Write(o.ConstSet, topology.MaskOf(1)), []string{`"const_set"`, "read-only"}},
		{"too big", Write(o.SetA, topology.MaskOf(3, topology.MaxBPFCPUs)), []string{`"set_a"`, "CPU 512", "SK_TOPO_MAX_CPUS"}},
		{"write u64 array", Write(o.NotA_set, topology.MaskOf(1)), []string{`"not_a_set"`}},
	} {
		if !errors.Is(tt.err, ErrInvalid) {
			t.Errorf("%s: %v, want an error wrapping ErrInvalid", tt.name, tt.err)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(tt.err.Error(), w) {
				t.Errorf("%s: %q lacks %q", tt.name, tt.err, w)
			}
		}
	}
	// The refused write changed nothing; a read-only set reads fine.
	write(t, o.SetA, topology.MaskOf(9))
	_ = Write(o.SetA, topology.MaskOf(1, topology.MaxBPFCPUs))
	if got := read(t, o.SetA); !got.Equal(topology.MaskOf(9)) {
		t.Errorf("a refused Write changed the set to %v", got)
	}
	if got, err := Read(o.ConstSet); err != nil || !got.Empty() {
		t.Errorf("Read of the const set = %v, %v; want empty, nil", got, err)
	}
}
