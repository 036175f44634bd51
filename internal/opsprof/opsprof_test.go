package opsprof

import (
	"errors"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/rlimit"
)

// enable turns the statistics on for the test, or skips where that is not
// allowed (not root), unless CI=true.
func enable(t *testing.T) {
	t.Helper()
	if err := rlimit.RemoveMemlock(); err != nil && os.Getenv("CI") != "true" {
		t.Skipf("BPF needs root: %v", err)
	}
	c, err := Enable()
	if err != nil {
		if os.Getenv("CI") != "true" && errors.Is(err, os.ErrPermission) {
			t.Skipf("BPF statistics need root: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
}

// load loads a socket filter that returns 0, its first instruction
// carrying fn as BTF function metadata unless fn is nil.
func load(t *testing.T, name string, fn *btf.Func) *ebpf.Program {
	t.Helper()
	first := asm.Mov.Imm(asm.R0, 0)
	if fn != nil {
		first = btf.WithFuncMetadata(first, fn)
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         name,
		Type:         ebpf.SocketFilter,
		Instructions: asm.Instructions{first, asm.Return()},
		License:      "MIT",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prog.Close() })
	return prog
}

// find reads the socket filters and returns prog's entry.
func find(t *testing.T, prog *ebpf.Program) Program {
	t.Helper()
	info, err := prog.Info()
	if err != nil {
		t.Fatal(err)
	}
	id, ok := info.ID()
	if !ok {
		t.Fatal("the kernel reports no program ID")
	}
	progs, err := Read(nil, ebpf.SocketFilter)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(progs, func(p Program) bool { return p.ID == id })
	if i < 0 {
		t.Fatalf("Read found %d socket filters but not program %d", len(progs), id)
	}
	return progs[i]
}

// TestReadCountsRuns runs a program through BPF_PROG_TEST_RUN, which the
// statistics count like any run, and checks that Read sees the runs and
// some time, and Sub the difference.
func TestReadCountsRuns(t *testing.T) {
	enable(t)
	prog := load(t, "opsprof_runs", nil)
	before := find(t, prog)
	if before.Name != "opsprof_runs" {
		t.Errorf("name %q, want opsprof_runs", before.Name)
	}
	const n = 1000
	if _, _, err := prog.Benchmark(make([]byte, 64), n, nil); err != nil {
		t.Fatal(err)
	}
	after := find(t, prog)
	if after.Runs < before.Runs+n || after.Time <= before.Time {
		t.Errorf("after %d runs: %+v, before %+v: want %d runs more and more time", n, after, before, n)
	}

	other := Program{ID: after.ID + 1000000, Name: "new", Runs: 7, Time: time.Microsecond}
	diff := Sub([]Program{after, other}, []Program{before})
	if len(diff) != 2 || diff[0].ID != after.ID || diff[0].Runs < n || diff[0].Time <= 0 || diff[0].Name != "opsprof_runs" {
		t.Errorf("Sub: %+v, want the program's %d runs and some time first", diff, n)
	}
	if len(diff) == 2 && diff[1] != other {
		t.Errorf("Sub: a program absent before is %+v, want %+v", diff[1], other)
	}
}

// TestReadBTFName: a program's kernel name is cut at 15 characters; with
// BTF function information Read gives the function's whole name.
func TestReadBTFName(t *testing.T) {
	enable(t)
	const long = "opsprof_a_function_name_longer_than_fifteen"
	fn := &btf.Func{
		Name:    long,
		Type:    &btf.FuncProto{Return: &btf.Int{Name: "int", Size: 4, Encoding: btf.Signed}},
		Linkage: btf.GlobalFunc,
	}
	withBTF := find(t, load(t, long, fn))
	if withBTF.Name != long {
		t.Errorf("with BTF: name %q, want %q", withBTF.Name, long)
	}
	without := find(t, load(t, long, nil))
	if want := long[:15]; without.Name != want {
		t.Errorf("without BTF: name %q, want the kernel's %q", without.Name, want)
	}
}

// TestReadFiltersType: Read returns programs of the type asked for only,
// and appends to dst.
func TestReadFiltersType(t *testing.T) {
	enable(t)
	load(t, "opsprof_filter", nil)
	dst := []Program{{Name: "kept"}}
	progs, err := Read(dst, ebpf.XDP)
	if err != nil {
		t.Fatal(err)
	}
	if len(progs) == 0 || progs[0].Name != "kept" {
		t.Fatalf("Read dropped dst's entries: %+v", progs)
	}
	for _, p := range progs[1:] {
		if p.Name == "opsprof_filter" {
			t.Errorf("Read of XDP programs returned socket filter %+v", p)
		}
	}
}

func TestSub(t *testing.T) {
	before := []Program{{ID: 1, Name: "a", Runs: 10, Time: 100}, {ID: 2, Name: "gone", Runs: 5, Time: 50}}
	after := []Program{{ID: 3, Name: "new", Runs: 4, Time: 40}, {ID: 1, Name: "a", Runs: 15, Time: 160}}
	got := Sub(after, before)
	want := []Program{{ID: 3, Name: "new", Runs: 4, Time: 40}, {ID: 1, Name: "a", Runs: 5, Time: 60}}
	if !slices.Equal(got, want) {
		t.Errorf("Sub = %+v, want %+v", got, want)
	}
	// Counters that went backwards (impossible for one program) clamp at zero.
	if got := Sub([]Program{{ID: 1, Runs: 1, Time: 1}}, before); got[0].Runs != 0 || got[0].Time != 0 {
		t.Errorf("Sub of smaller counters = %+v, want zeros", got)
	}
}
