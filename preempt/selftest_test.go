package preempt

import (
	"bytes"
	"errors"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"

	"github.com/scxkit/scxkit/latency"
	"github.com/scxkit/scxkit/scx"
)

//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -tags linux -target bpfel -no-global-types preemptselftest selftest.bpf.c -- -mcpu=v3 -Wno-missing-declarations -I../bpf/include

// loadSelftest loads the selftest object, or skips without root or BPF.
func loadSelftest(t *testing.T) *ebpf.Collection {
	t.Helper()
	spec, err := loadPreemptselftest()
	if err != nil {
		t.Fatal(err)
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		if os.Geteuid() != 0 || errors.Is(err, ebpf.ErrNotSupported) {
			t.Skipf("cannot load BPF here: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { coll.Close() })
	return coll
}

// classOfSelf runs class_of_current and returns the class and generation
// the BPF side sees for the calling thread.
func classOfSelf(t *testing.T, coll *ebpf.Collection) (uint32, uint64) {
	t.Helper()
	return classOfSelfAs(t, coll, false)
}

// classOfSelfAs is classOfSelf, run as on a wakeup when checkName holds:
// then BPF also checks whether the thread's name changed.
func classOfSelfAs(t *testing.T, coll *ebpf.Collection, checkName bool) (uint32, uint64) {
	t.Helper()
	var check uint32
	if checkName {
		check = 1
	}
	if err := coll.Variables["st_check_name"].Set(check); err != nil {
		t.Fatal(err)
	}
	if _, err := coll.Programs["class_of_current"].Run(&ebpf.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	var cls uint32
	var gen uint64
	if err := coll.Variables["st_class"].Get(&cls); err != nil {
		t.Fatal(err)
	}
	if err := coll.Variables["st_gen"].Get(&gen); err != nil {
		t.Fatal(err)
	}
	return cls, gen
}

// ownCgroup returns this process's cgroup v2 path, or skips.
func ownCgroup(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Skip(err)
	}
	p, ok := unifiedPath(b)
	if !ok {
		t.Skip("no cgroup v2 path in /proc/self/cgroup")
	}
	if _, err := latency.LookupCgroup(p); err != nil {
		t.Skipf("own cgroup %s: %v", p, err)
	}
	return p
}

// bind binds a Controller for cfg to the selftest collection coll, as
// scx.Load binds it to a scheduler.
func bind(t *testing.T, coll *ebpf.Collection, cfg *Config, opts *Options) *Controller {
	t.Helper()
	ctl, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := ctl.Bind(scx.NewBinding(Name, coll, nil, scx.DSQRange{First: scx.FirstComponentDSQ, Count: MaxClasses})); err != nil {
		t.Fatal(err)
	}
	return ctl
}

// TestBPFClassOf writes configurations through a Controller and checks
// the class BPF finds for the test's own thread: by cgroup (its own, an
// ancestor), by task name, the default class; the generation steps with
// each Write, and refused configurations change nothing.
func TestBPFClassOf(t *testing.T) {
	coll := loadSelftest(t)
	cg := ownCgroup(t)
	if cls, gen := classOfSelf(t, coll); cls != 0 || gen != 0 {
		t.Fatalf("before Bind: class %d generation %d, want 0 0", cls, gen)
	}
	ctl := bind(t, coll, nil, nil)
	if cls, gen := classOfSelf(t, coll); cls != 0 || gen != 1 {
		t.Fatalf("after Bind: class %d generation %d, want 0 1 (the default class)", cls, gen)
	}
	comm, err := os.ReadFile("/proc/thread-self/comm")
	if err != nil {
		t.Fatal(err)
	}
	self := strings.TrimSpace(string(comm))
	parent := cg
	if i := strings.LastIndex(cg, "/"); i > 0 {
		parent = cg[:i]
	}
	for i, c := range []struct {
		text string
		want uint32
	}{
		{"a cgroup=/no-match-" + "x\n", 1}, // refused below: cgroup missing
		{"other comm=not-us\nmine cgroup=" + cg + "\n", 1},
		{"mine cgroup=" + parent + "\nother comm=not-us\n", 0},
		{"x comm=not-us\nname comm=" + self + "\n", 1},
		{"x comm=not-us\n", 1}, // the default class, after x
		{"default\nx comm=not-us\n", 0},
	} {
		cfg, err := Parse([]byte(c.text))
		if err != nil {
			t.Fatal(err)
		}
		genBefore, _ := ctl.Generation()
		err = ctl.Write(cfg)
		if i == 0 {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Write of a missing cgroup: %v, want ErrInvalid", err)
			}
			if g, _ := ctl.Generation(); g != genBefore {
				t.Fatalf("a refused Write changed the generation %d -> %d", genBefore, g)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", c.text, err)
		}
		cls, gen := classOfSelf(t, coll)
		if gen != genBefore+1 {
			t.Errorf("%q: generation %d, want %d", c.text, gen, genBefore+1)
		}
		if cls != c.want {
			t.Errorf("%q: class %d, want %d (own cgroup %s, name %s)", c.text, cls, c.want, cg, self)
		}
	}
	// Both slots were used; the stale one holds no entries of the slot
	// in force's opposite beyond the last configuration's.
	var key preempttypesSkPreemptCommKey
	var val uint32
	n := 0
	for it := coll.Maps["sk_preempt_comms"].Iterate(); it.Next(&key, &val); {
		n++
	}
	if n > 2 {
		t.Errorf("%d task-name entries, want at most 2 (the last two configurations' one each)", n)
	}
	st, err := ctl.Read(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 2 || st[0].Class != "default" || st[1].Class != "x" {
		t.Errorf("Read: %v", st)
	}
}

// TestBPFRename checks that a task renamed after it was classified (exec,
// prctl(PR_SET_NAME)) finds its new class at its next wakeup, when BPF
// compares the name with the one its class was found for, and that other
// callbacks keep the class found without reading the name again.
func TestBPFRename(t *testing.T) {
	coll := loadSelftest(t)
	// The BPF program classifies the thread that runs it: stay on one.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	const comm = "/proc/thread-self/comm"
	b, err := os.ReadFile(comm)
	if err != nil {
		t.Fatal(err)
	}
	self := strings.TrimSpace(string(b))
	defer os.WriteFile(comm, []byte(self), 0)
	cfg, err := Parse([]byte("named comm=" + self + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	bind(t, coll, cfg, nil)
	const named, other = 0, 1 // the default class follows the listed one
	steps := []struct {
		name      string
		checkName bool
		want      uint32
	}{
		{self, false, named},
		{"sk-renamed", false, named}, // not a wakeup: the class found is kept
		{"sk-renamed", true, other},
		{"sk-renamed", true, other},
		{self, false, other},
		{self, true, named},
	}
	for i, s := range steps {
		if err := os.WriteFile(comm, []byte(s.name), 0); err != nil {
			t.Fatalf("rename the test thread: %v", err)
		}
		if cls, _ := classOfSelfAs(t, coll, s.checkName); cls != s.want {
			t.Errorf("step %d: named %q, name checked %v: class %d, want %d", i, s.name, s.checkName, cls, s.want)
		}
	}
}

// TestBPFBucket checks that the BPF histogram buckets match
// latency.Log2Bounds, which Read gives them.
func TestBPFBucket(t *testing.T) {
	coll := loadSelftest(t)
	bounds := latency.Log2Bounds()
	for _, d := range []time.Duration{0, 1, 999, 1000, 1001, 1999, 2000, 2001, 4000, 4001, 123456, time.Millisecond,
		33554432 * time.Microsecond, 33554432*time.Microsecond + 1, time.Hour} {
		args := struct {
			Ns     uint64
			Bucket uint32
			_      uint32
		}{Ns: uint64(d)}
		buf := unsafe.Slice((*byte)(unsafe.Pointer(&args)), unsafe.Sizeof(args))
		if _, err := coll.Programs["bucket_of"].Run(&ebpf.RunOptions{Context: buf, ContextOut: buf}); err != nil {
			t.Fatal(err)
		}
		h, _ := latency.NewHistogram(bounds)
		h.Add(d)
		want := bytes.IndexByte(countsAsBytes(h.Counts), 1)
		if int(args.Bucket) != want {
			t.Errorf("bucket of %v: BPF %d, latency.Histogram %d", d, args.Bucket, want)
		}
	}
}

// countsAsBytes maps histogram counts to bytes, for finding the one set.
func countsAsBytes(c []uint64) []byte {
	b := make([]byte, len(c))
	for i, n := range c {
		b[i] = byte(n)
	}
	return b
}
