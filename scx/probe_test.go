package scx

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf/btf"
	"github.com/google/go-cmp/cmp"

	"github.com/scxkit/scxkit/internal/kbtf"
	"github.com/scxkit/scxkit/vmtest"
)

// matrixKernel is a kernel of vmtest.Matrix whose BTF the tests read. Each
// image holds a 64 MB ELF with about 6 MB of BTF, so it is decompressed,
// parsed and probed at most once per test binary.
type matrixKernel struct {
	vmtest.Kernel
	load func() (*matrixProbe, error)
}

// matrixProbe is what loading a matrix kernel yields.
type matrixProbe struct {
	spec        *btf.Spec
	kernel      *Kernel
	unavailable error         // the image could not be had; spec and kernel are nil
	loadTime    time.Duration // decompressing the image and parsing its BTF
	probeTime   time.Duration // Probe on the parsed BTF
}

var matrixKernels = func() []*matrixKernel {
	var ks []*matrixKernel
	for _, k := range vmtest.Matrix {
		ks = append(ks, &matrixKernel{
			Kernel: k,
			load:   sync.OnceValues(func() (*matrixProbe, error) { return loadMatrixKernel(k) }),
		})
	}
	return ks
}()

func loadMatrixKernel(k vmtest.Kernel) (*matrixProbe, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	vmlinuz, err := k.Vmlinuz(ctx)
	if err != nil {
		return &matrixProbe{unavailable: err}, nil
	}
	start := time.Now()
	spec, err := kbtf.LoadSpec(vmlinuz)
	if err != nil {
		return nil, err
	}
	loaded := time.Now()
	kern, err := Probe(&ProbeOptions{KernelBTF: spec, Release: k.Release, SysFS: sysfsFiles(nil)})
	if err != nil {
		return nil, fmt.Errorf("probe %s: %w", k, err)
	}
	return &matrixProbe{
		spec:      spec,
		kernel:    kern,
		loadTime:  loaded.Sub(start),
		probeTime: time.Since(loaded),
	}, nil
}

// get returns the loaded kernel. It skips the test when the image is not
// available, unless CI=true, where that is a failure.
func (mk *matrixKernel) get(t testing.TB) *matrixProbe {
	t.Helper()
	if vmtest.InGuest() {
		t.Skip("the kernel images are on the host")
	}
	p, err := mk.load()
	if err != nil {
		t.Fatalf("kernel %s: %v", mk.Kernel, err)
	}
	if p.unavailable != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("kernel %s: image unavailable with CI=true: %v", mk.Kernel, p.unavailable)
		}
		t.Skipf("kernel %s: image unavailable: %v", mk.Kernel, p.unavailable)
	}
	return p
}

// forEachMatrixKernel runs f in a subtest per kernel of vmtest.Matrix.
func forEachMatrixKernel(t *testing.T, f func(t *testing.T, name string, p *matrixProbe)) {
	t.Helper()
	if vmtest.InGuest() {
		t.Skip("the kernel images are on the host")
	}
	for _, mk := range matrixKernels {
		t.Run(mk.Name, func(t *testing.T) {
			f(t, mk.Name, mk.get(t))
		})
	}
}

func TestKfuncGenString(t *testing.T) {
	for g, want := range map[KfuncGen]string{
		KfuncBase:   "base",
		KfuncV2:     "v2",
		0:           "KfuncGen(0)",
		KfuncV2 + 1: "KfuncGen(3)",
		-1:          "KfuncGen(-1)",
	} {
		if got := g.String(); got != want {
			t.Errorf("KfuncGen(%d).String() = %q, want %q", int(g), got, want)
		}
	}
}

// TestProbeHost probes the machine the tests run on. Hosts normally lack
// sched_ext, and Probe must say so; inside a vmtest guest the kernel has it.
func TestProbeHost(t *testing.T) {
	spec, err := btf.LoadKernelSpec()
	if errors.Is(err, btf.ErrNotSupported) {
		t.Skipf("host kernel has no BTF: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	release, err := unameRelease()
	if err != nil {
		t.Fatal(err)
	}
	var ops *btf.Struct
	hostHasSchedExt := spec.TypeByName("sched_ext_ops", &ops) == nil

	for name, opts := range map[string]*ProbeOptions{
		"nil options": nil,
		"given BTF":   {KernelBTF: spec},
	} {
		t.Run(name, func(t *testing.T) {
			k, err := Probe(opts)
			if !hostHasSchedExt {
				if !errors.Is(err, ErrNotSupported) {
					t.Fatalf("Probe on a kernel without sched_ext: got (%v, %v), want an error wrapping ErrNotSupported", k, err)
				}
				for _, want := range []string{release, "sched_ext", "CONFIG_SCHED_CLASS_EXT"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not contain %q", err, want)
					}
				}
				t.Logf("host kernel %s: %v", release, err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if k.Release != release {
				t.Errorf("Release = %q, want %q", k.Release, release)
			}
			if !k.HasOp("enqueue") || !k.HasKfunc("scx_bpf_dsq_insert") {
				t.Errorf("kernel %s lacks the enqueue op or scx_bpf_dsq_insert: %+v", release, k)
			}
			if _, err := k.Status(); err != nil {
				t.Errorf("Status on a sched_ext kernel: %v", err)
			}
		})
	}
}

// fakeKernelBTF builds a small kernel BTF with sched_ext: ops members, funcs
// and enums as named.
func fakeKernelBTF(t *testing.T, ops []string, funcs []string, enums ...*btf.Enum) *btf.Spec {
	t.Helper()
	ptr := &btf.Pointer{Target: &btf.Void{}}
	st := &btf.Struct{Name: "sched_ext_ops", Size: uint32(8 * len(ops))}
	for i, name := range ops {
		st.Members = append(st.Members, btf.Member{Name: name, Type: ptr, Offset: btf.Bits(64 * i)})
	}
	types := []btf.Type{st}
	proto := &btf.FuncProto{Return: &btf.Void{}}
	for _, name := range funcs {
		types = append(types, &btf.Func{Name: name, Type: proto, Linkage: btf.GlobalFunc})
	}
	for _, e := range enums {
		types = append(types, e)
	}
	b, err := btf.NewBuilder(types, nil)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := b.Spec()
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

func TestProbeFake(t *testing.T) {
	ops := []string{"select_cpu", "enqueue", "dispatch", "name", "timeout_ms"}
	base := []string{"scx_bpf_dsq_insert", "scx_bpf_dsq_move_to_local", "scx_bpf_reenqueue_local", "bpf_task_acquire"}
	enum := &btf.Enum{Name: "scx_dsq_id_flags", Size: 8, Values: []btf.EnumValue{
		{Name: "SCX_DSQ_FLAG_BUILTIN", Value: 1 << 63},
		{Name: "SCX_DSQ_GLOBAL", Value: 1<<63 | 1},
		{Name: "NOT_SCX_THING", Value: 5},
	}}
	sysfs := sysfsFiles(map[string]string{"state": "enabled\n", "root/ops": "fake\n"})

	tests := []struct {
		name  string
		funcs []string
		gen   KfuncGen
	}{
		{"base", base, KfuncBase},
		// Like 7.0: some ___v2 names, but not move_to_local's.
		{"partial v2", append(slices.Clone(base), "scx_bpf_dsq_insert___v2", "scx_bpf_reenqueue_local___v2"), KfuncBase},
		// Like 7.3.
		{"v2", append(slices.Clone(base), "scx_bpf_dsq_insert___v2", "scx_bpf_dsq_insert___v2_impl",
			"scx_bpf_dsq_move_to_local___v2", "scx_bpf_dsq_move_to_local___v2_impl"), KfuncV2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := Probe(&ProbeOptions{
				KernelBTF: fakeKernelBTF(t, ops, tt.funcs, enum),
				Release:   "1.2.3-test",
				SysFS:     sysfs,
			})
			if err != nil {
				t.Fatal(err)
			}
			if k.Release != "1.2.3-test" {
				t.Errorf("Release = %q", k.Release)
			}
			if k.Gen != tt.gen {
				t.Errorf("Gen = %v, want %v", k.Gen, tt.gen)
			}
			if diff := cmp.Diff(ops, k.Ops); diff != "" {
				t.Errorf("Ops mismatch (-want +got):\n%s", diff)
			}
			for _, op := range ops {
				if !k.HasOp(op) {
					t.Errorf("HasOp(%q) = false", op)
				}
			}
			if k.HasOp("dump") {
				t.Error(`HasOp("dump") = true`)
			}
			for _, f := range tt.funcs {
				if !k.HasKfunc(f) {
					t.Errorf("HasKfunc(%q) = false for a function in BTF", f)
				}
			}
			if diff := cmp.Diff([]string{"SCX_DSQ_FLAG_BUILTIN", "SCX_DSQ_GLOBAL"}, k.Enums.Names("")); diff != "" {
				t.Errorf("Enums.Names mismatch (-want +got):\n%s", diff)
			}
			st, err := k.Status()
			if err != nil {
				t.Fatal(err)
			}
			if st.State != StateEnabled || st.Ops != "fake" {
				t.Errorf("Status() = %v, want the SysFS given to Probe", st)
			}
		})
	}
}

func TestProbeFakeNoSchedExt(t *testing.T) {
	// BTF with kfunc-like names and SCX_ enumerators but no struct
	// sched_ext_ops: the struct decides.
	b, err := btf.NewBuilder([]btf.Type{
		&btf.Struct{Name: "task_struct", Size: 0},
		&btf.Func{Name: "scx_bpf_dsq_insert", Type: &btf.FuncProto{Return: &btf.Void{}}, Linkage: btf.GlobalFunc},
		&btf.Enum{Name: "scx_x", Size: 4, Values: []btf.EnumValue{{Name: "SCX_X", Value: 1}}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := b.Spec()
	if err != nil {
		t.Fatal(err)
	}
	_, err = Probe(&ProbeOptions{KernelBTF: spec, Release: "6.18.0"})
	if !errors.Is(err, ErrNotSupported) {
		t.Fatalf("Probe: got %v, want an error wrapping ErrNotSupported", err)
	}
	if !strings.Contains(err.Error(), "kernel 6.18.0 has no sched_ext") {
		t.Errorf("error %q does not name the kernel", err)
	}
	// The fix it names must work from an author's own module: no command
	// of this repository's checkout.
	if !strings.Contains(err.Error(), "go doc github.com/scxkit/scxkit/vmtest") || strings.Contains(err.Error(), "./cmd/") {
		t.Errorf("error %q: want the fix through package vmtest, not a command of this checkout", err)
	}
}

// wantGen is the kfunc generation of each kernel of vmtest.Matrix.
var wantGen = map[string]KfuncGen{
	"6.16": KfuncBase,
	"7.0":  KfuncBase,
	"7.3":  KfuncV2,
}

// genKfuncs returns the names of the kfuncs that differ between generations,
// as programs for gen must call them.
func genKfuncs(gen KfuncGen) []string {
	names := []string{"scx_bpf_dsq_insert", "scx_bpf_dsq_move_to_local", "scx_bpf_reenqueue_local"}
	if gen == KfuncV2 {
		for i := range names {
			names[i] += "___v2"
		}
	}
	return names
}

func TestProbeMatrix(t *testing.T) {
	forEachMatrixKernel(t, func(t *testing.T, name string, p *matrixProbe) {
		k := p.kernel
		t.Logf("BTF loaded in %v, probed in %v: %d ops members, %d SCX_ enumerators",
			p.loadTime.Round(time.Millisecond), p.probeTime.Round(time.Millisecond), len(k.Ops), k.Enums.Len())
		for _, gen := range []KfuncGen{KfuncBase, KfuncV2} {
			for _, kf := range genKfuncs(gen) {
				// Base names exist everywhere; ___v2 ones only from 7.0 on,
				// and move_to_local___v2 only on v2 kernels.
				want := gen == KfuncBase || (name != "6.16" && (k.Gen == KfuncV2 || !strings.Contains(kf, "move_to_local")))
				if got := k.HasKfunc(kf); got != want {
					t.Errorf("HasKfunc(%q) = %v, want %v", kf, got, want)
				}
			}
		}
		if k.HasKfunc("scx_bpf_no_such_kfunc") {
			t.Error("HasKfunc(scx_bpf_no_such_kfunc) = true")
		}

		want, ok := wantGen[name]
		if !ok {
			t.Fatalf("kernel %s is not in wantGen: add it", name)
		}
		if k.Gen != want {
			t.Errorf("Gen = %v, want %v", k.Gen, want)
		}
		for _, op := range []string{"enqueue", "dispatch", "name", "timeout_ms", "exit_dump_len"} {
			if !k.HasOp(op) {
				t.Errorf("HasOp(%q) = false; ops: %v", op, k.Ops)
			}
		}
		if k.HasOp("no_such_op") {
			t.Error(`HasOp("no_such_op") = true`)
		}
		if !k.HasKfunc("scx_bpf_dsq_insert") || !k.HasKfunc("scx_bpf_dsq_move_to_local") {
			t.Error("base kfunc names missing")
		}
		if got := k.HasKfunc(v2Marker); got != (want == KfuncV2) {
			t.Errorf("HasKfunc(%q) = %t", v2Marker, got)
		}
		if !k.HasKfunc("bpf_task_acquire") {
			t.Error("HasKfunc(bpf_task_acquire) = false: generic kfuncs count too")
		}
	})
}

// TestKfuncGenResolves checks the reason for KfuncGen against the library
// that loads the programs: every kfunc name that Gen tells programs to call
// must resolve in cilium/ebpf the way it looks kfuncs up (Spec.TypeByName
// with a *btf.Func), and on KfuncV2 kernels the base names must not. If a
// cilium/ebpf upgrade makes the base names resolve again, this test says so.
func TestKfuncGenResolves(t *testing.T) {
	forEachMatrixKernel(t, func(t *testing.T, name string, p *matrixProbe) {
		for _, kf := range genKfuncs(p.kernel.Gen) {
			var fn *btf.Func
			if err := p.spec.TypeByName(kf, &fn); err != nil {
				t.Errorf("%s (%v): kfunc %s does not resolve: %v", name, p.kernel.Gen, kf, err)
			}
		}
		if p.kernel.Gen != KfuncV2 {
			return
		}
		var fn *btf.Func
		err := p.spec.TypeByName("scx_bpf_dsq_insert", &fn)
		if !errors.Is(err, btf.ErrMultipleMatches) {
			t.Errorf("%s: base name scx_bpf_dsq_insert: got error %v, want btf.ErrMultipleMatches (has cilium/ebpf fixed AnyTypesByName? then KfuncV2 may be unneeded)", name, err)
		}
	})
}

// wantOpsDiff lists the members of struct sched_ext_ops that some but not
// all kernels of vmtest.Matrix have, with the kernels that have them. When
// a pin in vmtest/kernels.go changes, TestOpsDiff prints the new table:
// check that load.go copes with each change (a member a scheduler sets but
// the kernel lacks must be dropped or refused, see Spec.prepare) and update
// this map.
var wantOpsDiff = map[string][]string{
	"cgroup_set_bandwidth": {"7.0", "7.3"},
	"cgroup_set_idle":      {"7.0", "7.3"},
	"sub_attach":           {"7.3"},
	"sub_detach":           {"7.3"},
	"sub_caps_updated":     {"7.3"},
	"sub_ecaps_updated":    {"7.3"},
	"init_cids":            {"7.3"},
	"cid_shard_size":       {"7.3"},
	"rescue_bandwidth_ppt": {"7.3"},
	"rescue_quantum_us":    {"7.3"},
	"sub_cgroup_id":        {"7.3"},
}

// alwaysOps are the members of struct sched_ext_ops that Spec.prepare
// needs on every kernel: it refuses a kernel without exit and writes the
// data members unconditionally.
var alwaysOps = []string{"exit", "name", "timeout_ms", "flags", "dispatch_max_batch", "exit_dump_len"}

// TestOpsDiff checks Kernel.Ops against the BTF of each kernel of the
// matrix, read independently of Probe (every member of the one struct
// sched_ext_ops, in BTF order), and which members differ between the
// kernels against wantOpsDiff. It logs the table of differences.
func TestOpsDiff(t *testing.T) {
	var (
		names []string
		has   = map[string]map[string]bool{} // member → kernel → present
		order []string                       // members in first-seen BTF order
	)
	for _, mk := range matrixKernels {
		p := mk.get(t)
		names = append(names, mk.Name)

		var members []string
		structs := 0
		for typ, err := range p.spec.All() {
			if err != nil {
				t.Fatal(err)
			}
			if st, ok := typ.(*btf.Struct); ok && st.Name == "sched_ext_ops" {
				structs++
				members = members[:0]
				for _, m := range st.Members {
					members = append(members, m.Name)
				}
			}
		}
		if structs != 1 {
			t.Fatalf("kernel %s: %d structs named sched_ext_ops in BTF, want 1", mk.Name, structs)
		}
		if diff := cmp.Diff(members, p.kernel.Ops); diff != "" {
			t.Errorf("kernel %s: Kernel.Ops differs from the members of struct sched_ext_ops in BTF (-btf +Ops):\n%s", mk.Name, diff)
		}
		seen := map[string]bool{}
		for _, op := range p.kernel.Ops {
			if op == "" || seen[op] {
				t.Errorf("kernel %s: Kernel.Ops has an empty or repeated member %q: %v", mk.Name, op, p.kernel.Ops)
			}
			seen[op] = true
		}

		for _, op := range p.kernel.Ops {
			if has[op] == nil {
				has[op] = map[string]bool{}
				order = append(order, op)
			}
			has[op][mk.Name] = true
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-24s", "sched_ext_ops member")
	for _, n := range names {
		fmt.Fprintf(&b, " %5s", n)
	}
	got := map[string][]string{}
	for _, op := range order {
		if len(has[op]) == len(names) {
			continue
		}
		fmt.Fprintf(&b, "\n%-24s", op)
		for _, n := range names {
			mark := "-"
			if has[op][n] {
				mark = "x"
				got[op] = append(got[op], n)
			}
			fmt.Fprintf(&b, " %5s", mark)
		}
	}
	t.Logf("%d of %d members differ:\n%s", len(got), len(order), b.String())
	if diff := cmp.Diff(wantOpsDiff, got); diff != "" {
		t.Errorf("members of struct sched_ext_ops that differ between kernels (-wantOpsDiff +got):\n%s\n"+
			"if a kernel pin changed, check load.go against the new members and update wantOpsDiff", diff)
	}
	for _, op := range alwaysOps {
		if len(has[op]) != len(names) {
			t.Errorf("sched_ext_ops.%s is on kernels %v only, want all of %v: Spec.prepare relies on it", op, slices.Sorted(maps.Keys(has[op])), names)
		}
	}
}

// ExampleProbe checks what the running kernel offers before loading a
// scheduler, then reads which scheduler is attached now. What it prints
// depends on the running kernel (its release, whether it has sched_ext,
// what is attached), so it has no Output and only compiles; TestProbeHost
// runs the same calls and checks them.
func ExampleProbe() {
	k, err := Probe(nil)
	if errors.Is(err, ErrNotSupported) {
		fmt.Println("no sched_ext here:", err)
		return
	}
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("kernel %s, kfunc generation %v, %d ops members\n", k.Release, k.Gen, len(k.Ops))

	slice, err := k.Enums.Value("SCX_SLICE_DFL")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("default slice:", time.Duration(slice))

	st, err := k.Status()
	if err != nil {
		fmt.Println(err)
		return
	}
	if st.State == StateEnabled {
		fmt.Println("running scheduler:", st.Ops)
	} else {
		fmt.Println("sched_ext is", st.State)
	}
}

// TestEnumTypesComplete checks that enumTypes, which Probe reads by name
// instead of decoding all of BTF, covers every SCX_ enumerator of every
// kernel in the matrix.
func TestEnumTypesComplete(t *testing.T) {
	forEachMatrixKernel(t, func(t *testing.T, name string, p *matrixProbe) {
		for typ, err := range p.spec.All() {
			if err != nil {
				t.Fatal(err)
			}
			e, ok := typ.(*btf.Enum)
			if !ok {
				continue
			}
			for _, v := range e.Values {
				if strings.HasPrefix(v.Name, "SCX_") && !slices.Contains(enumTypes, e.Name) {
					t.Errorf("enum %q declares %s but is not in enumTypes: add it", e.Name, v.Name)
					break
				}
			}
		}
	})
}
