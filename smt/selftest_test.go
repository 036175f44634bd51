package smt

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/scxkit/scxkit/scx"
)

//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -tags linux -target bpfel -no-global-types smtselftest selftest.bpf.c -- -mcpu=v3 -Wno-missing-declarations -I../bpf/include

// ownCgroup returns the cgroup v2 path of this process ("/user.slice/...")
// and the directory of cgroup v2's root, or skips.
func ownCgroup(t *testing.T) (path, root string) {
	t.Helper()
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if p, ok := strings.CutPrefix(sc.Text(), "0::"); ok {
			path = p
		}
	}
	for _, r := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		if _, err := CgroupID(r); err == nil {
			root = r
		}
	}
	if path == "" || root == "" {
		t.Skip("no cgroup v2")
	}
	return path, root
}

// selftestDSQs is the DSQ range the tests bind with, as scx.Open would
// allocate it to smt alone: one id for each class smt may have.
var selftestDSQs = scx.DSQRange{First: scx.FirstComponentDSQ, Count: MaxIsolated + 1}

// loadSelftest loads selftest.bpf.c, which includes smt.bpf.h, or skips
// without the privileges.
func loadSelftest(t *testing.T) *ebpf.Collection {
	t.Helper()
	spec, err := loadSmtselftest()
	if err != nil {
		t.Fatal(err)
	}
	// What scx.Load does for a scheduler: the first DSQ id of smt's range.
	if err := spec.Variables[bpfDSQBase].Set(selftestDSQs.First); err != nil {
		t.Fatal(err)
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		t.Skipf("load selftest.bpf.c (needs root and BPF): %v", err)
	}
	t.Cleanup(coll.Close)
	return coll
}

// TestBindStats binds a layout to smt.bpf.h's maps outside a scheduler
// and reads its stats back: every class is reported, with its path as
// the label, at zero; a DSQ range too small for the classes, or other
// than the one the object was loaded with, is refused.
func TestBindStats(t *testing.T) {
	coll := loadSelftest(t)
	dir := cgroup2Root(t)
	l, err := New(twoCores(), &Options{Root: filepath.Dir(dir), Isolate: []string{"/" + filepath.Base(dir)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.ReadStats(nil); !errors.Is(err, scx.ErrNotBound) {
		t.Errorf("ReadStats before Bind: %v, want scx.ErrNotBound", err)
	}
	if err := l.Bind(scx.NewBinding(l.Name(), coll, nil, scx.DSQRange{First: scx.FirstComponentDSQ, Count: 1})); !errors.Is(err, ErrInvalid) {
		t.Errorf("Bind with 1 DSQ id for 2 classes: %v, want ErrInvalid", err)
	}
	moved := selftestDSQs
	moved.First += 64
	if err := l.Bind(scx.NewBinding(l.Name(), coll, nil, moved)); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), bpfDSQBase) {
		t.Errorf("Bind with a range that is not the object's: %v, want ErrInvalid naming %s", err, bpfDSQBase)
	}
	if err := l.Bind(scx.NewBinding(l.Name(), coll, nil, selftestDSQs)); err != nil {
		t.Fatal(err)
	}
	descs := l.Stats()
	got := map[string]float64{}
	samples, err := l.ReadStats(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range samples {
		d := descs[s.Stat]
		name := d.Name
		if d.Label != "" {
			name += "{" + d.Label + "=" + s.Label + "}"
		}
		got[name] = s.Value
	}
	want := []string{"violations"}
	for _, c := range []string{"system", "/" + filepath.Base(dir)} {
		for _, d := range descs {
			if d.Label != "" {
				want = append(want, d.Name+"{class="+c+"}")
			}
		}
	}
	for _, name := range want {
		if v, ok := got[name]; !ok || v != 0 {
			t.Errorf("stat %s = %v, %v; want 0", name, v, ok)
		}
	}
	if len(got) != len(want) {
		t.Errorf("stats %v, want exactly %v", got, want)
	}
	// Steady state: a reused buffer is enough, and the counters read
	// through Read agree.
	samples, err = l.ReadStats(samples[:0])
	if err != nil || len(samples) != len(want) {
		t.Errorf("ReadStats again: %d samples, %v; want %d", len(samples), err, len(want))
	}
	if n := testing.AllocsPerRun(20, func() { samples, _ = l.ReadStats(samples[:0]) }); n != 0 {
		t.Errorf("ReadStats with a reused buffer allocates %v times, want 0", n)
	}
	c, err := l.Read(nil)
	if err != nil || len(c) != 2 || c[1].Class.Path != "/"+filepath.Base(dir) {
		t.Errorf("Read: %+v, %v", c, err)
	}
}

// TestBPFClassOf runs the class lookup of smt.bpf.h on the test's own
// task: the cgroup id BPF reads equals the directory's inode, a task
// belongs to an isolated ancestor, and to the system class otherwise.
func TestBPFClassOf(t *testing.T) {
	path, root := ownCgroup(t)
	if path == "/" {
		// Move the test process into a child cgroup for the ancestor
		// case, and back at the end.
		dir := cgroup2Root(t)
		root = filepath.Dir(dir)
		procs := func(d string) error {
			return os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0)
		}
		if err := procs(dir); err != nil {
			t.Skipf("cannot move into %s: %v", dir, err)
		}
		t.Cleanup(func() {
			if err := procs(root); err != nil {
				t.Errorf("move back to %s: %v", root, err)
			}
		})
		path = "/" + filepath.Base(dir)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	coll := loadSelftest(t)
	prog := coll.Programs["class_of_current"]

	run := func() (uint32, uint64) {
		t.Helper()
		if _, err := prog.Run(&ebpf.RunOptions{}); err != nil {
			t.Fatal(err)
		}
		var cls uint32
		var id uint64
		if err := coll.Variables["st_class"].Get(&cls); err != nil {
			t.Fatal(err)
		}
		if err := coll.Variables["st_cgroup_id"].Get(&id); err != nil {
			t.Fatal(err)
		}
		return cls, id
	}

	own, err := CgroupID(filepath.Join(root, path))
	if err != nil {
		t.Fatal(err)
	}
	// The parent of our cgroup, or our own when we sit at the root.
	parent := filepath.Dir(path)
	for _, tc := range []struct {
		name    string
		isolate []string
		want    uint32
	}{
		{"none", nil, 0},
		{"own", []string{path}, 1},
		{"ancestor", []string{parent}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "ancestor" && parent == path {
				t.Skip("the test runs in the root cgroup")
			}
			l, err := New(twoCores(), &Options{Root: root, Isolate: tc.isolate})
			if err != nil {
				t.Fatal(err)
			}
			// Start from an empty map: entries of the previous case go.
			var k uint64
			var v uint32
			for it := coll.Maps[bpfCgroups].Iterate(); it.Next(&k, &v); {
				coll.Maps[bpfCgroups].Delete(k)
			}
			if _, err := l.Read(nil); !errors.Is(err, scx.ErrNotBound) {
				t.Errorf("Read before Bind: %v, want scx.ErrNotBound", err)
			}
			if err := l.Bind(scx.NewBinding(l.Name(), coll, nil, selftestDSQs)); err != nil {
				t.Fatal(err)
			}
			// The per-task cache holds the first answer; a new cgroup
			// map needs a fresh task, so check with the cache bypassed
			// by a thread of its own.
			cls, id := runOnFreshThread(t, run)
			if id != own {
				t.Errorf("BPF cgroup id %d, directory inode of %s is %d", id, path, own)
			}
			if cls != tc.want {
				t.Errorf("isolate %v: class %d, want %d", tc.isolate, cls, tc.want)
			}
		})
	}
}

// runOnFreshThread calls f on a new OS thread that exits afterwards, so
// that per-task storage starts empty.
func runOnFreshThread(t *testing.T, f func() (uint32, uint64)) (uint32, uint64) {
	type result struct {
		cls uint32
		id  uint64
	}
	ch := make(chan result)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		c, i := f()
		ch <- result{c, i}
	}()
	r := <-ch
	return r.cls, r.id
}
