package smt

import (
	"bufio"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
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
	spec, err := loadSmtselftest()
	if err != nil {
		t.Fatal(err)
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		t.Skipf("load selftest.bpf.c (needs root and BPF): %v", err)
	}
	defer coll.Close()
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
			l, err := New(twoCores(), Config{Root: root, Isolate: tc.isolate})
			if err != nil {
				t.Fatal(err)
			}
			// Start from an empty map: entries of the previous case go.
			var k uint64
			var v uint32
			for it := coll.Maps[bpfCgroups].Iterate(); it.Next(&k, &v); {
				coll.Maps[bpfCgroups].Delete(k)
			}
			if err := l.WriteBPF(coll); err != nil {
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
