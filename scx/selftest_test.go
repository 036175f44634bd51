package scx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math/bits"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
)

//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -tags linux -target bpfel -no-global-types selftest selftest.bpf.c -- -mcpu=v3 -Wno-missing-declarations -I../bpf/include

// loadSelftestAgainst loads selftest.bpf.c with CO-RE relocated against
// kernel (a matrix kernel's BTF: the host has no sched_ext types).
func loadSelftestAgainst(t *testing.T, kernel *btf.Spec, slice time.Duration) (*ebpf.CollectionSpec, *ebpf.Collection) {
	t.Helper()
	spec, err := loadSelftest()
	if err != nil {
		t.Fatal(err)
	}
	if slice > 0 {
		if err := spec.Variables[varSliceNs].Set(uint64(slice)); err != nil {
			t.Fatal(err)
		}
	}
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{
		Programs: ebpf.ProgramOptions{KernelTypes: kernel},
	})
	if err != nil {
		t.Fatalf("load selftest.bpf.c: %v", err)
	}
	t.Cleanup(func() { coll.Close() })
	return spec, coll
}

func runSyscall(t *testing.T, p *ebpf.Program) uint32 {
	t.Helper()
	ret, err := p.Run(&ebpf.RunOptions{})
	if err != nil {
		t.Fatalf("run %v: %v", p, err)
	}
	return ret
}

// TestStatsCounters runs sk_stat_inc/sk_stat_add in BPF and reads them back
// through the reader Scheduler.Stats uses.
func TestStatsCounters(t *testing.T) {
	p := matrixKernels[len(matrixKernels)-1].get(t)
	spec, coll := loadSelftestAgainst(t, p.spec, 0)
	r, err := newStatsReader(coll.Maps[mapStats], spec.Maps[mapStats].Value)
	if err != nil {
		t.Fatal(err)
	}
	var st Stats
	if err := r.read(&st); err != nil {
		t.Fatal(err)
	}
	if got := st.String(); got != "runs=0 doubled=0 untouched=0" {
		t.Errorf("before any run: %q", got)
	}
	const n = 25
	for range n {
		runSyscall(t, coll.Programs["count_stats"])
	}
	if err := r.read(&st); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]uint64{"runs": n, "doubled": 2 * n, "untouched": 0} {
		if got, ok := st.Get(name); !ok || got != want {
			t.Errorf("counter %s = %d, %t; want %d", name, got, ok, want)
		}
	}
	if _, ok := st.Get("nope"); ok {
		t.Error(`Get("nope") found a counter`)
	}
	allocs := testing.AllocsPerRun(20, func() {
		if err := r.read(&st); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("allocations per stats read: %.0f", allocs)
}

// TestSliceCORE checks that sk_slice() returns the configured slice, and
// otherwise the kernel's SCX_SLICE_DFL resolved by a CO-RE enum relocation
// against each kernel's BTF.
func TestSliceCORE(t *testing.T) {
	forEachMatrixKernel(t, func(t *testing.T, name string, p *matrixProbe) {
		dfl, err := p.kernel.Enums.Value("SCX_SLICE_DFL")
		if err != nil {
			t.Fatal(err)
		}
		_, coll := loadSelftestAgainst(t, p.spec, 0)
		if got := runSyscall(t, coll.Programs["slice_ms"]); uint64(got) != dfl/1e6 {
			t.Errorf("default slice: %d ms; want SCX_SLICE_DFL = %d ms", got, dfl/1e6)
		}
		_, coll = loadSelftestAgainst(t, p.spec, 7*time.Millisecond)
		if got := runSyscall(t, coll.Programs["slice_ms"]); got != 7 {
			t.Errorf("configured slice: %d ms; want 7", got)
		}
	})
}

// TestExitDecode decodes hand-made sk_exit_info records, laid out by the
// struct in the compiled object, with each kernel's enum values.
func TestExitDecode(t *testing.T) {
	spec, err := loadSelftest()
	if err != nil {
		t.Fatal(err)
	}
	layout, err := newExitLayout(spec.Variables[varExitInfo].Type.Type)
	if err != nil {
		t.Fatal(err)
	}
	forEachMatrixKernel(t, func(t *testing.T, name string, p *matrixProbe) {
		consts, err := newExitConsts(p.kernel.Enums)
		if err != nil {
			t.Fatal(err)
		}
		value := func(name string) uint64 {
			v, err := p.kernel.Enums.Value(name)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		record := func(kind, code uint64, cpu int32, reason, msg, dump string) []byte {
			raw := make([]byte, layout.size)
			binary.NativeEndian.PutUint32(layout.kind.in(raw), uint32(kind))
			binary.NativeEndian.PutUint32(layout.cpu.in(raw), uint32(cpu))
			binary.NativeEndian.PutUint64(layout.code.in(raw), code)
			copy(layout.reason.in(raw), reason)
			copy(layout.msg.in(raw), msg)
			copy(layout.dump.in(raw), dump)
			return raw
		}

		if _, ok := layout.decode(make([]byte, layout.size), consts); ok {
			t.Error("an all-zero record decodes as an exit")
		}

		stall := record(value("SCX_EXIT_ERROR_STALL"), 0, 1, "runnable task stall", "kworker/0:1[11] failed to run for 3.460s", "dump line 1\ndump line 2")
		info, ok := layout.decode(stall, consts)
		if !ok {
			t.Fatal("stall record not decoded")
		}
		if info.Kind != "error_stall" || !info.IsError() || info.ShouldRestart() || info.CPU != 1 ||
			info.Reason != "runnable task stall" || info.Dump != "dump line 1\ndump line 2" {
			t.Errorf("stall: %+v", info)
		}
		var ee *ExitError
		if err := info.Err(); !errors.As(err, &ee) || errors.Is(err, ErrRestart) {
			t.Errorf("stall Err() = %v; want *ExitError, not ErrRestart", err)
		}
		if r := info.Report(); !strings.Contains(r, "runnable task stall") || !strings.Contains(r, "debug dump:\ndump line 1") {
			t.Errorf("report:\n%s", r)
		}

		restart := value("SCX_ECODE_ACT_RESTART") | value("SCX_ECODE_RSN_HOTPLUG")
		hotplug := record(value("SCX_EXIT_UNREG_KERN"), restart, -1, "unregistered from the main kernel", "CPU 1 going offline, restarting", "")
		info, _ = layout.decode(hotplug, consts)
		if info.Kind != "unreg_kern" || info.IsError() || !info.ShouldRestart() || info.CPU != -1 {
			t.Errorf("hotplug: %+v", info)
		}
		if err := info.Err(); !errors.Is(err, ErrRestart) {
			t.Errorf("hotplug Err() = %v; want a match for ErrRestart", err)
		}

		unreg := record(value("SCX_EXIT_UNREG"), 0, -1, "unregistered from user space", "", "")
		info, _ = layout.decode(unreg, consts)
		if info.Kind != "unreg" || info.Err() != nil {
			t.Errorf("unreg: %+v, Err() = %v; want an orderly exit", info, info.Err())
		}

		// Strings that fill their buffer without a NUL are kept whole.
		long := strings.Repeat("r", layout.reason.size)
		info, _ = layout.decode(record(value("SCX_EXIT_ERROR_BPF"), 0, 0, long, "", ""), consts)
		if info.Reason != long {
			t.Errorf("unterminated reason: %d bytes, want %d", len(info.Reason), len(long))
		}

		info, _ = layout.decode(record(4242, 0, 0, "", "", ""), consts)
		if info.Kind != "kind_4242" || !info.IsError() {
			t.Errorf("unknown kind: %+v", info)
		}
	})
}

func TestExitLayoutErrors(t *testing.T) {
	u32 := &btf.Int{Name: "u32", Size: 4}
	for _, tt := range []struct {
		name string
		typ  btf.Type
		want string
	}{
		{"not a struct", u32, "not a struct"},
		{"missing msg", &btf.Struct{Name: "sk_exit_info", Size: 16, Members: []btf.Member{
			{Name: "kind", Type: u32}, {Name: "exit_code", Type: &btf.Int{Size: 8}, Offset: 64}, {Name: "reason", Type: &btf.Array{Type: &btf.Int{Size: 1}, Nelems: 4}, Offset: 128},
		}}, "no field msg"},
	} {
		if _, err := newExitLayout(tt.typ); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v; want an error containing %q", tt.name, err, tt.want)
		}
	}
}

// TestExitPollAllocates nothing: Run reads sk_exit_info every 50ms.
func TestExitPollAllocates(t *testing.T) {
	p := matrixKernels[len(matrixKernels)-1].get(t)
	spec, coll := loadSelftestAgainst(t, p.spec, 0)
	layout, err := newExitLayout(spec.Variables[varExitInfo].Type.Type)
	if err != nil {
		t.Fatal(err)
	}
	consts, err := newExitConsts(p.kernel.Enums)
	if err != nil {
		t.Fatal(err)
	}
	s := &Scheduler{coll: coll, exitVar: coll.Variables[varExitInfo], exitLayout: layout, exitConsts: consts}
	s.exitBuf = make([]byte, s.exitVar.Size())
	s.exitOut = s.exitBuf
	allocs := testing.AllocsPerRun(100, func() {
		if _, ok := s.exitedLocked(); ok {
			t.Fatal("exit recorded without an exit")
		}
	})
	if allocs != 0 {
		t.Errorf("polling for an exit allocates %.1f times", allocs)
	}
}

// loadCpumaskKfuncs loads only cpumask_kfuncs of selftest.bpf.c, against
// the host kernel: the other programs need sched_ext's types.
func loadCpumaskKfuncs(t *testing.T) (*ebpf.CollectionSpec, *ebpf.Collection) {
	t.Helper()
	spec, err := loadSelftest()
	if err != nil {
		t.Fatal(err)
	}
	for name := range spec.Programs {
		if name != "cpumask_kfuncs" {
			delete(spec.Programs, name)
		}
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		t.Fatalf("load cpumask_kfuncs: %v", err)
	}
	t.Cleanup(func() { coll.Close() })
	return spec, coll
}

// TestCpumaskKfuncs runs every generic cpumask kfunc compat.bpf.h declares
// on the host, on two masks within its CPUs (the kfuncs ignore CPUs the
// machine cannot have) and a spare CPU outside the first, and checks each result
// against the same operation on the bits in Go.
func TestCpumaskKfuncs(t *testing.T) {
	n, err := ebpf.PossibleCPU()
	if err != nil {
		t.Fatal(err)
	}
	n = min(n, 64)
	if n < 2 {
		t.Skip("needs two CPUs: one in the masks and a spare")
	}
	// The spare CPU need only be outside a, whose copy test-and-set and
	// test-and-clear work on; b may hold it, so that on 2 CPUs a is {0}
	// and b {0, 1}, and and, or and xor still differ.
	spare := n - 1
	all := uint64(1)<<n - 1
	if n == 64 {
		all = ^uint64(0)
	}
	a := uint64(0b1011_0101) & (all >> 1) // CPUs below the spare
	b := (uint64(0b0110_0111) | 1<<spare) & all
	_, coll := loadCpumaskKfuncs(t)
	for name, v := range map[string]any{"in_cpus_a": a, "in_cpus_b": b, "in_spare": uint32(spare)} {
		if err := coll.Variables[name].Set(v); err != nil {
			t.Fatal(err)
		}
	}
	if ret := runSyscall(t, coll.Programs["cpumask_kfuncs"]); ret != 0 {
		t.Fatalf("cpumask_kfuncs returned %d: a mask could not be created", ret)
	}
	u64 := func(name string) uint64 {
		var v uint64
		if err := coll.Variables[name].Get(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	u32 := func(name string) uint32 {
		var v uint32
		if err := coll.Variables[name].Get(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	b2u := func(v bool) uint32 {
		if v {
			return 1
		}
		return 0
	}
	firstA := uint32(bits.TrailingZeros64(a)) // a holds CPU 0
	for name, want := range map[string]uint64{
		"out_and":     a & b,
		"out_or":      a | b,
		"out_xor":     a ^ b,
		"out_copy":    a,
		"out_cleared": a &^ (1 << firstA), // the copy of a without its first CPU
	} {
		if got := u64(name); got != want {
			t.Errorf("%s = %#b, want %#b (a %#b, b %#b, %d CPUs)", name, got, want, a, b, n)
		}
	}
	for name, want := range map[string]uint32{
		"out_weight_a":     uint32(bits.OnesCount64(a)),
		"out_first_a":      firstA,
		"out_first_zero_a": uint32(bits.TrailingZeros64(^a)),
		"out_first_and":    uint32(bits.TrailingZeros64(a & b)),
		"out_equal":        b2u(a == b),
		"out_intersects":   b2u(a&b != 0),
		"out_subset":       b2u(a&^b == 0),
		"out_empty":        b2u(a == 0) | 0b10,   // then the cleared mask is empty
		"out_full":         b2u(a == all) | 0b10, // then the mask after setall is full
		"out_and_nonempty": b2u(a&b != 0),
		// The spare CPU: the first test-and-set finds it clear, the second
		// set; the first test-and-clear finds it set, the second clear.
		"out_test_and_set":   0b10,
		"out_test_and_clear": 0b01,
		"out_acquired":       1,
	} {
		if got := u32(name); got != want {
			t.Errorf("%s = %#b, want %#b (a %#b, b %#b, %d CPUs)", name, got, want, a, b, n)
		}
	}
	if any := u32("out_any_a"); any >= 64 || a&(1<<any) == 0 {
		t.Errorf("out_any_a = %d, not a CPU of a (%#b)", any, a)
	}
	if any := u32("out_any_and"); any >= 64 || a&b&(1<<any) == 0 {
		t.Errorf("out_any_and = %d, not a CPU of a&b (%#b)", any, a&b)
	}
}

// TestCpumaskKfuncsMatchKernels checks each bpf_cpumask_* kfunc the
// selftest object calls, as compat.bpf.h declares it, against the BTF of
// every pinned kernel: the kernel has it, with as many parameters, and the
// same types once qualifiers are dropped. A declaration that drifts from
// a kernel would make the verifier refuse every program that calls it.
func TestCpumaskKfuncsMatchKernels(t *testing.T) {
	spec, err := loadSelftest()
	if err != nil {
		t.Fatal(err)
	}
	ours := map[string]*btf.Func{}
	for typ, err := range spec.Types.All() {
		if err != nil {
			t.Fatal(err)
		}
		if fn, ok := typ.(*btf.Func); ok && strings.HasPrefix(fn.Name, "bpf_cpumask_") && fn.Linkage == btf.ExternFunc {
			ours[fn.Name] = fn
		}
	}
	// Every kfunc of the family compat.bpf.h declares, bar
	// bpf_cpumask_populate, which 6.16 has but nothing here uses.
	if len(ours) < 24 {
		t.Fatalf("the selftest object calls %d bpf_cpumask_* kfuncs, want the 24 of compat.bpf.h: %v", len(ours), slices.Sorted(maps.Keys(ours)))
	}
	forEachMatrixKernel(t, func(t *testing.T, name string, p *matrixProbe) {
		for fname, fn := range ours {
			var kfn *btf.Func
			if err := p.spec.TypeByName(fname, &kfn); err != nil {
				t.Errorf("%s: %s: %v", name, fname, err)
				continue
			}
			if got, want := protoString(fn), protoString(kfn); got != want {
				t.Errorf("%s: %s declared as %s, the kernel has %s", name, fname, got, want)
			}
		}
	})
}

// protoString renders a function's prototype with qualifiers dropped and
// integer typedefs resolved to their size and signedness, e.g.
// "(u32, *struct bpf_cpumask) void".
func protoString(fn *btf.Func) string {
	proto, ok := fn.Type.(*btf.FuncProto)
	if !ok {
		return fmt.Sprintf("%T", fn.Type)
	}
	var b strings.Builder
	b.WriteByte('(')
	for i, p := range proto.Params {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(typeString(p.Type))
	}
	b.WriteString(") ")
	b.WriteString(typeString(proto.Return))
	return b.String()
}

func typeString(typ btf.Type) string {
	typ = btf.UnderlyingType(btf.QualifiedType(typ))
	switch t := typ.(type) {
	case *btf.Pointer:
		return "*" + typeString(t.Target)
	case *btf.Struct:
		return "struct " + t.Name
	case *btf.Int:
		if t.Encoding&btf.Bool != 0 {
			return "bool"
		}
		sign := "u"
		if t.Encoding&btf.Signed != 0 {
			sign = "s"
		}
		return fmt.Sprintf("%s%d", sign, t.Size*8)
	case *btf.Void:
		return "void"
	case nil:
		return "void"
	}
	return fmt.Sprintf("%T", typ)
}
