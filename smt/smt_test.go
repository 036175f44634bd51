package smt

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scxkit/scxkit/topology"
)

// twoCores is a machine of two cores of two threads: CPUs 0,2 and 1,3.
func twoCores() *topology.Topology {
	t := &topology.Topology{Online: topology.MaskOf(0, 1, 2, 3)}
	for i, cpus := range [][]int{{0, 2}, {1, 3}} {
		t.Cores = append(t.Cores, &topology.Core{ID: i, CPUs: topology.MaskOf(cpus...)})
	}
	for k := range 4 {
		t.CPUs = append(t.CPUs, &topology.CPU{ID: k, KernelID: k, Core: k % 2})
	}
	return t
}

// cgroup2Root returns a writable cgroup v2 mount, or skips.
func cgroup2Root(t *testing.T) string {
	for _, root := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		if _, err := CgroupID(root); err == nil {
			dir, err := os.MkdirTemp(root, "smt-test-")
			if err != nil {
				t.Skipf("cannot create a cgroup under %s: %v", root, err)
			}
			t.Cleanup(func() { os.Remove(dir) })
			return dir
		}
	}
	t.Skip("no cgroup v2 mount")
	return ""
}

func TestNewErrors(t *testing.T) {
	topo := twoCores()
	tmp := t.TempDir()
	for _, tc := range []struct {
		name string
		opts Options
		is   error
		msg  string
	}{
		{"missing", Options{Root: tmp, Isolate: []string{"/nope"}}, fs.ErrNotExist, `isolate "/nope": no such cgroup under`},
		{"not cgroup2", Options{Root: filepath.Dir(tmp), Isolate: []string{filepath.Base(tmp)}}, ErrNotCgroup, "not a cgroup v2 directory"},
		{"negative hold", Options{Hold: -time.Second}, ErrInvalid, "Hold -1s is negative"},
		{"dot-dot", Options{Isolate: []string{"/a/../b"}}, ErrInvalid, `".." is not allowed`},
		{"too many", Options{Isolate: make([]string, MaxIsolated+1)}, ErrTooBig, "32 isolated cgroups"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(topo, &tc.opts)
			if err == nil {
				t.Fatal("no error")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %q does not wrap %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.msg) || !strings.HasPrefix(err.Error(), "smt: ") {
				t.Errorf("error %q: want prefix smt: and %q", err, tc.msg)
			}
		})
	}
	if _, err := New(nil, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("New(nil topology): %v, want ErrInvalid", err)
	}
}

func TestNewTooManyThreads(t *testing.T) {
	topo := &topology.Topology{Online: topology.MaskOf(0, 1, 2, 3, 4)}
	topo.Cores = []*topology.Core{{CPUs: topology.MaskOf(0, 1, 2, 3, 4)}}
	for k := range 5 {
		topo.CPUs = append(topo.CPUs, &topology.CPU{ID: k, KernelID: k})
	}
	if _, err := New(topo, nil); !errors.Is(err, ErrTooBig) {
		t.Errorf("5 threads per core: %v, want ErrTooBig", err)
	}
}

func TestLayoutEncode(t *testing.T) {
	l, err := New(twoCores(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Classes) != 1 || l.Classes[0].Name() != "system" || l.Hold != 40*time.Millisecond {
		t.Fatalf("classes %+v hold %v: want only the system class and 40ms", l.Classes, l.Hold)
	}
	var st smttypesSkSmtLayout
	l.encodeBPF(&st)
	if st.NrCpuIds != 4 || st.NrClasses != 1 || st.HoldNs != 40e6 {
		t.Errorf("header %d cpus %d classes %d ns", st.NrCpuIds, st.NrClasses, st.HoldNs)
	}
	const none = int32(smttypesSkSmtConstsSK_NO_CPU)
	want := map[int][2]int32{0: {0, 2}, 1: {1, 3}, 2: {0, 0}, 3: {1, 1}}
	for cpu, w := range want {
		e := st.Cpus[cpu]
		siblings := e.Siblings
		for j := range siblings {
			siblings[j] = none
		}
		siblings[0] = w[1]
		if e.Core != w[0] || e.Siblings != siblings {
			t.Errorf("cpu %d: core %d siblings %v, want core %d sibling %d", cpu, e.Core, e.Siblings, w[0], w[1])
		}
	}
	if e := st.Cpus[4]; e.Core != none || e.Siblings[0] != none {
		t.Errorf("cpu 4 (absent): core %d siblings %v, want %d", e.Core, e.Siblings, none)
	}
}

func TestNewCgroups(t *testing.T) {
	dir := cgroup2Root(t)
	root := filepath.Dir(dir)
	rel := "/" + filepath.Base(dir)
	id, err := CgroupID(dir)
	if err != nil {
		t.Fatal(err)
	}
	l, err := New(twoCores(), &Options{Root: root, Isolate: []string{rel}})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Classes) != 2 || l.Classes[1].CgroupID != id || l.Classes[1].Dir != dir || l.Classes[1].Path != rel {
		t.Errorf("classes %+v: want %s with id %d", l.Classes, dir, id)
	}
	if c, ok := l.Class(id); !ok || c.Index != 1 {
		t.Errorf("Class(%d) = %+v, %v", id, c, ok)
	}
	// The directory itself names the same cgroup: a duplicate.
	if _, err := New(twoCores(), &Options{Root: root, Isolate: []string{rel, dir}}); err == nil || !strings.Contains(err.Error(), "the same cgroup") {
		t.Errorf("duplicate: %v", err)
	}
}
