package preempt

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/scxkit/scxkit/scx"
)

// TestNew: New validates its Config and Options without a kernel, puts
// every task in the default class for a nil Config, and keeps its own
// copy of the Config.
func TestNew(t *testing.T) {
	if _, err := New(&Config{Classes: []Class{{Name: "x"}}}, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("New of a class without members: %v, want ErrInvalid", err)
	}
	if _, err := New(nil, &Options{WatchInterval: -time.Second}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "watch interval") {
		t.Errorf("New with a negative watch interval: %v, want ErrInvalid naming the interval", err)
	}
	c, err := New(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Config().String(); got != "default\n" {
		t.Errorf("New(nil): config %q, want the default class only", got)
	}
	if w := c.Work(); len(w) != 0 {
		t.Errorf("Work() without a config file: %d periodics, want none", len(w))
	}
	cfg := &Config{Classes: []Class{{Name: "web", Cgroups: []string{"/web"}}}}
	if c, err = New(cfg, nil); err != nil {
		t.Fatal(err)
	}
	cfg.Classes[0].Cgroups[0] = "/changed"
	if got := c.Config().String(); got != "web cgroup=/web\ndefault\n" {
		t.Errorf("config %q after the caller changed its Config: want New's copy", got)
	}
	if c.Name() != "preempt" {
		t.Errorf("Name() = %q", c.Name())
	}
}

// TestNeedsOnDSQ: as an orderer over dsq's queues the Controller
// requires dsq, owns no callback, asks for no DSQ ids and no ops.init;
// by default it owns enqueue and dispatch with its own DSQs.
func TestNeedsOnDSQ(t *testing.T) {
	own, err := New(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := own.Needs(); len(n.Owns) != 2 || n.DSQs != MaxClasses || n.DSQBase == "" || len(n.Requires) != 0 {
		t.Errorf("default Needs: %+v, want enqueue and dispatch owned, %d DSQs with a base", n, MaxClasses)
	}
	on, err := New(nil, &Options{OnDSQ: true})
	if err != nil {
		t.Fatal(err)
	}
	n := on.Needs()
	if len(n.Owns) != 0 || n.DSQs != 0 || n.DSQBase != "" || !slices.Equal(n.Requires, []string{"dsq"}) {
		t.Errorf("OnDSQ Needs: %+v, want Requires [dsq], nothing owned, no DSQs", n)
	}
	if slices.Contains(n.Callbacks, "init") || !slices.Contains(n.Callbacks, "dispatch") {
		t.Errorf("OnDSQ callbacks %v: want dispatch and the others, not init", n.Callbacks)
	}
	// On dsq's queues it composes with SCX_OPS_ENQ_LAST (smt requires it);
	// owning its DSQs, it still forbids the flag.
	if len(n.Forbids) != 0 {
		t.Errorf("OnDSQ forbids %v, want nothing", n.Forbids)
	}
	if f := own.Needs().Forbids; !slices.Equal(f, []scx.OpsFlag{scx.EnqLast}) {
		t.Errorf("default Needs forbids %v, want SCX_OPS_ENQ_LAST", f)
	}
}

// TestNotBound: what reads or writes the scheduler fails with
// scx.ErrNotBound before Bind.
func TestNotBound(t *testing.T) {
	c, err := New(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, errRead := c.Read(nil)
	_, errStats := c.ReadStats(nil)
	_, errGen := c.Generation()
	for name, err := range map[string]error{
		"Write":      c.Write(&Config{}),
		"Read":       errRead,
		"ReadStats":  errStats,
		"Generation": errGen,
	} {
		if !errors.Is(err, scx.ErrNotBound) {
			t.Errorf("%s before Bind: %v, want scx.ErrNotBound", name, err)
		}
	}
}

// TestBPFBind binds Controllers to the selftest object, as scx.Load does:
// Bind writes New's Config, Write changes it, Read and ReadStats report
// every class without allocating, and a Controller bound again (a
// reload) writes the last Config written.
func TestBPFBind(t *testing.T) {
	coll := loadSelftest(t)
	ctl := bind(t, coll, mustParse(t, "web comm=sk-no-such-task slice=3ms\n"), nil)
	if g, err := ctl.Generation(); err != nil || g != 1 {
		t.Fatalf("after Bind: generation %d, %v; want 1", g, err)
	}
	if err := ctl.Write(mustParse(t, "web comm=sk-no-such-task slice=3ms\nbatch comm=sk-nor-this background\n")); err != nil {
		t.Fatal(err)
	}
	if g, err := ctl.Generation(); err != nil || g != 2 {
		t.Fatalf("after Write: generation %d, %v; want 2", g, err)
	}
	st, err := ctl.Read(nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range st {
		names = append(names, s.Class)
	}
	if strings.Join(names, ",") != "web,default,batch" {
		t.Errorf("Read: classes %v, want web,default,batch", names)
	}
	// Counters as BPF would count them on every CPU (web is in slot 0,
	// the first class seen), summed by Read.
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		t.Fatal(err)
	}
	perCPU := make([]preempttypesSkPreemptCounters, ncpu)
	for i := range perCPU {
		perCPU[i] = preempttypesSkPreemptCounters{Preempts: 1, Preempted: 2, Kept: 3, RunOns: 4, Starved: 5, RuntimeNs: 1000, Wakeups: 1, WaitNs: 3000}
		perCPU[i].WaitBuckets[2] = 1 // at most 4µs
	}
	if err := coll.Maps["sk_preempt_stats"].Update(uint32(0), perCPU, ebpf.UpdateAny); err != nil {
		t.Fatal(err)
	}
	if st, err = ctl.Read(st); err != nil {
		t.Fatal(err)
	}
	n := uint64(ncpu)
	if w := st[0]; w.Class != "web" || w.Kicks != n || w.Preempted != 2*n || w.Kept != 3*n || w.RunOns != 4*n || w.Starved != 5*n ||
		w.Runtime != time.Duration(1000*n) || w.Wakeups != n || w.Wait.Sum != time.Duration(3000*n) || w.Wait.Count() != n {
		t.Errorf("Read on %d CPUs: %s (wait sum %v, count %d): want every counter summed", ncpu, &w, w.Wait.Sum, w.Wait.Count())
	}
	if d := st[1]; d.Kicks != 0 || d.Wait.Count() != 0 {
		t.Errorf("Read: %s, want the default class's counters zero", &d)
	}

	smp, err := ctl.ReadStats(nil)
	if err != nil {
		t.Fatal(err)
	}
	descs := ctl.Stats()
	if want := 1 + 3*(len(descs)-1); len(smp) != want {
		t.Errorf("ReadStats: %d samples, want %d (the generation, then every stat of 3 classes)", len(smp), want)
	}
	for _, s := range smp {
		d := descs[s.Stat]
		if (d.Label == "") != (s.Label == "") {
			t.Errorf("sample %+v of stat %s (label %q)", s, d.Name, d.Label)
		}
		if d.Name == "generation" && s.Value != 2 {
			t.Errorf("generation stat %v, want 2", s.Value)
		}
	}
	if n := testing.AllocsPerRun(20, func() { st, _ = ctl.Read(st) }); n != 0 {
		t.Errorf("Read into the last result: %v allocations, want 0", n)
	}
	if n := testing.AllocsPerRun(20, func() { smp, _ = ctl.ReadStats(smp[:0]) }); n != 0 {
		t.Errorf("ReadStats: %v allocations, want 0", n)
	}

	// A reload: a fresh object, bound again; the Config written stays.
	coll2 := loadSelftest(t)
	if err := ctl.Bind(scx.NewBinding(Name, coll2, nil, scx.DSQRange{First: scx.FirstComponentDSQ, Count: MaxClasses})); err != nil {
		t.Fatal(err)
	}
	if g, err := ctl.Generation(); err != nil || g != 1 {
		t.Errorf("after a second Bind: generation %d, %v; want 1 (a new object)", g, err)
	}
	if got := ctl.Config().String(); !strings.Contains(got, "batch") {
		t.Errorf("after a second Bind: config %q, want the one written last", got)
	}
	if st, err = ctl.Read(st); err != nil || len(st) != 3 {
		t.Errorf("after a second Bind: Read %v, %v; want 3 classes", st, err)
	}
}

// TestBPFWatch: the watcher writes a changed config file to the bound
// scheduler, logs it, writes nothing for the Config in force, and keeps
// the policy in force when the file turns bad.
func TestBPFWatch(t *testing.T) {
	coll := loadSelftest(t)
	path := filepath.Join(t.TempDir(), "classes.conf")
	const first = "web comm=sk-no-such-task slice=3ms\n"
	if err := os.WriteFile(path, []byte(first), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ctl := bind(t, coll, mustParse(t, first), &Options{ConfigFile: path, Logger: log})
	work := ctl.Work()
	if len(work) != 1 || work[0].Every != DefaultWatchInterval {
		t.Fatalf("Work() = %+v, want one periodic every %v", work, DefaultWatchInterval)
	}
	step := func() {
		t.Helper()
		if err := work[0].Func(t.Context(), nil); err != nil {
			t.Fatalf("the watcher returned %v: it must never stop the scheduler", err)
		}
	}
	step()
	if g, _ := ctl.Generation(); g != 1 || logs.Len() != 0 {
		t.Errorf("the file holds the Config in force: generation %d (want 1), logs %q (want none)", g, logs.String())
	}
	if err := os.WriteFile(path, []byte("web comm=sk-no-such-task slice=5ms\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	step()
	if g, _ := ctl.Generation(); g != 2 || !strings.Contains(logs.String(), "config applied") {
		t.Errorf("after a change: generation %d (want 2), logs %q (want config applied)", g, logs.String())
	}
	if p := ctl.Config().Class("web").Slice; p != 5*time.Millisecond {
		t.Errorf("slice of web %v after the change, want 5ms", p)
	}
	logs.Reset()
	if err := os.WriteFile(path, []byte("web comm=sk-no-such-task slice=0s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	step()
	step()
	if g, _ := ctl.Generation(); g != 2 || strings.Count(logs.String(), "config change not applied") != 1 || !strings.Contains(logs.String(), "slice=0s: must be positive") {
		t.Errorf("after a bad change: generation %d (want 2), logs %q (want one error naming the slice)", g, logs.String())
	}
}

func mustParse(t *testing.T, text string) *Config {
	t.Helper()
	cfg, err := Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
