package percpu

import (
	"encoding/binary"
	"errors"
	"os"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"
	"github.com/google/go-cmp/cmp"
)

type pair struct{ A, B uint64 }

// newMap creates a map on the host kernel, or skips where BPF is not
// allowed (not root), unless CI=true.
func newMap(t *testing.T, spec *ebpf.MapSpec) *ebpf.Map {
	t.Helper()
	if err := rlimit.RemoveMemlock(); err != nil && os.Getenv("CI") != "true" {
		t.Skipf("BPF maps need root: %v", err)
	}
	m, err := ebpf.NewMap(spec)
	if err != nil {
		if os.Getenv("CI") != "true" && errors.Is(err, os.ErrPermission) {
			t.Skipf("BPF maps need root: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func TestLookup(t *testing.T) {
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		t.Fatal(err)
	}
	m := newMap(t, &ebpf.MapSpec{Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 16, MaxEntries: 4})
	want := make([]pair, cpus)
	for i := range want {
		want[i] = pair{A: uint64(i + 1), B: uint64(100 * (i + 1))}
	}
	if err := m.Put(uint32(2), want); err != nil {
		t.Fatal(err)
	}
	r, err := New[uint32, pair](m, cpus)
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.Lookup(2)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Lookup(2) (-want +got):\n%s", diff)
	}
	if got, err := r.Lookup(0); err != nil || got[0] != (pair{}) {
		t.Errorf("Lookup(0) = %v, %v; want zeros", got, err)
	}
	if _, err := r.Lookup(4); err == nil {
		t.Error("Lookup(4) past the end succeeded")
	}
	if n := testing.AllocsPerRun(100, func() { r.Lookup(2) }); n != 0 {
		t.Errorf("Lookup allocates %v times, want 0", n)
	}
}

func TestNewRefuses(t *testing.T) {
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		spec *ebpf.MapSpec
	}{
		{"not per-CPU", &ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 16, MaxEntries: 1}},
		{"value size", &ebpf.MapSpec{Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: 1}},
		{"key size", &ebpf.MapSpec{Type: ebpf.PerCPUHash, KeySize: 8, ValueSize: 16, MaxEntries: 1}},
	} {
		m := newMap(t, c.spec)
		if _, err := New[uint32, pair](m, cpus); !errors.Is(err, ErrLayout) {
			t.Errorf("%s: New = %v, want ErrLayout", c.name, err)
		}
	}
	if _, err := New[uint32, pair](nil, cpus); !errors.Is(err, ErrLayout) {
		t.Errorf("nil map: New = %v, want ErrLayout", err)
	}
	if _, err := New[uint32, struct{ A uint32 }](newMap(t, &ebpf.MapSpec{Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 4, MaxEntries: 1}), cpus); !errors.Is(err, ErrLayout) {
		t.Errorf("4-byte value: New = %v, want ErrLayout (stride is rounded to 8)", err)
	}
}

// TestLookupHash reads a per-CPU hash keyed by 8-byte ids, as smt's
// counters by cgroup id are.
func TestLookupHash(t *testing.T) {
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		t.Fatal(err)
	}
	m := newMap(t, &ebpf.MapSpec{Type: ebpf.PerCPUHash, KeySize: 8, ValueSize: 16, MaxEntries: 4})
	want := make([]pair, cpus)
	want[cpus-1] = pair{A: 7, B: 9}
	const id uint64 = 1 << 40
	if err := m.Put(id, want); err != nil {
		t.Fatal(err)
	}
	r, err := New[uint64, pair](m, cpus)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := r.Lookup(id); err != nil || !cmp.Equal(got, want) {
		t.Errorf("Lookup(%d) = %v, %v; want %v", id, got, err, want)
	}
	if _, err := r.Lookup(1); err == nil {
		t.Error("Lookup of a missing key succeeded")
	}
	if n := testing.AllocsPerRun(100, func() { r.Lookup(id) }); n != 0 {
		t.Errorf("Lookup allocates %v times, want 0", n)
	}
}

func TestRaw(t *testing.T) {
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		t.Fatal(err)
	}
	// 24 bytes: three u64 counters, as a SK_STATS_DEFINE struct.
	m := newMap(t, &ebpf.MapSpec{Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 24, MaxEntries: 1})
	vals := make([][3]uint64, cpus)
	for i := range vals {
		vals[i] = [3]uint64{uint64(i), 2, 3}
	}
	if err := m.Put(uint32(0), vals); err != nil {
		t.Fatal(err)
	}
	r, err := NewRaw(m, cpus)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := r.Lookup(0)
	if err != nil {
		t.Fatal(err)
	}
	if r.Stride() != 24 || len(raw) != 24*cpus {
		t.Fatalf("stride %d, %d bytes; want 24, %d", r.Stride(), len(raw), 24*cpus)
	}
	for i := range cpus {
		if got := binary.NativeEndian.Uint64(raw[i*24:]); got != uint64(i) {
			t.Errorf("CPU %d: first counter %d, want %d", i, got, i)
		}
	}
	if n := testing.AllocsPerRun(100, func() { r.Lookup(0) }); n != 0 {
		t.Errorf("Lookup allocates %v times, want 0", n)
	}
	if _, err := NewRaw(newMap(t, &ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1}), cpus); !errors.Is(err, ErrLayout) {
		t.Errorf("NewRaw of an array = %v, want ErrLayout", err)
	}
}
