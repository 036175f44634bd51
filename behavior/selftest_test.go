package behavior

import (
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/scxkit/scxkit/scx"
)

//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -tags linux -target bpfel -no-global-types behaviorselftest selftest.bpf.c -- -mcpu=v3 -Wno-missing-declarations -I../bpf/include

// loadSelftest loads selftest.bpf.c, which includes behavior.bpf.h, and
// binds a Tracker with opts to it, or skips without the privileges.
func loadSelftest(t *testing.T, opts *Options) (*ebpf.Collection, *Tracker) {
	t.Helper()
	spec, err := loadBehaviorselftest()
	if err != nil {
		t.Fatal(err)
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		t.Skipf("load selftest.bpf.c (needs root and BPF): %v", err)
	}
	t.Cleanup(coll.Close)
	tr, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Bind(scx.NewBinding(tr.Name(), coll, nil, scx.DSQRange{})); err != nil {
		t.Fatal(err)
	}
	return coll, tr
}

func run(t *testing.T, coll *ebpf.Collection, prog string) {
	t.Helper()
	if _, err := coll.Programs[prog].Run(&ebpf.RunOptions{}); err != nil {
		t.Fatalf("run %s: %v", prog, err)
	}
}

func set(t *testing.T, coll *ebpf.Collection, name string, v any) {
	t.Helper()
	if err := coll.Variables[name].Set(v); err != nil {
		t.Fatalf("set %s: %v", name, err)
	}
}

func get[T any](t *testing.T, coll *ebpf.Collection, name string) T {
	t.Helper()
	var v T
	if err := coll.Variables[name].Get(&v); err != nil {
		t.Fatalf("get %s: %v", name, err)
	}
	return v
}

const (
	us = uint64(time.Microsecond)
	ms = uint64(time.Millisecond)
)

// TestClassify checks the header's rules against figures worked out by
// hand, with the default settings Bind wrote: a burst average moves a
// quarter of the way to each new burst (capped at 1ms), a task is latency-sensitive below
// 500µs, and a task may be preempted once it ran 1ms since it woke,
// unless its average and its current burst are both short (which, with
// these settings, a burst of 1ms is not).
func TestClassify(t *testing.T) {
	coll, _ := loadSelftest(t, nil)
	for _, c := range []struct {
		avg, burst, since, now uint64
		wantAvg                uint64
		wantShort, wantVictim  bool
	}{
		{avg: 0, burst: 4 * ms, since: 1, now: 1 + ms, wantAvg: 250 * us, wantShort: true, wantVictim: true}, // burst capped at 1ms
		{avg: 800 * us, burst: 2000 * us, since: 10 * ms, now: 12 * ms, wantAvg: 850 * us, wantVictim: true},
		{avg: 500*us - 1, burst: 0, since: 10 * ms, now: 10*ms + 999*us, wantAvg: 375 * us, wantShort: true},
		{avg: 500 * us, burst: 500 * us, since: 10 * ms, now: 11*ms - 1, wantAvg: 500 * us},
		{avg: 500 * us, burst: 500 * us, since: 10 * ms, now: 11 * ms, wantAvg: 500 * us, wantVictim: true},
		{avg: 8 * ms, burst: 0, since: 0, now: 11 * ms, wantAvg: 6 * ms},       // CPU not tracked
		{avg: 8 * ms, burst: 0, since: 12 * ms, now: 11 * ms, wantAvg: 6 * ms}, // clock behind: no
	} {
		set(t, coll, "in_avg", c.avg)
		set(t, coll, "in_burst", c.burst)
		set(t, coll, "in_since", c.since)
		set(t, coll, "in_now", c.now)
		run(t, coll, "classify")
		avg, short, victim := get[uint64](t, coll, "out_avg"), get[uint32](t, coll, "out_short") != 0, get[uint32](t, coll, "out_may_preempt") != 0
		// The average rounds down each term: allow 1ns.
		if avg+1 < c.wantAvg || avg > c.wantAvg {
			t.Errorf("average(%d, %d) = %d, want %d", c.avg, c.burst, avg, c.wantAvg)
		}
		if short != c.wantShort || victim != c.wantVictim {
			t.Errorf("avg %dns, running since %d at %d: short %v victim %v, want %v %v", c.avg, c.since, c.now, short, victim, c.wantShort, c.wantVictim)
		}
	}
}

// TestOptionsReachBPF binds other settings and checks the rules follow
// them: a 2ms short-burst bound and a 5ms minimum run.
func TestOptionsReachBPF(t *testing.T) {
	coll, _ := loadSelftest(t, &Options{ShortBurst: 2 * time.Millisecond, VictimMinRun: 5 * time.Millisecond, NoPreempt: true})
	defer func() {
		// Short average, 6ms run: a victim by its current burst.
		set(t, coll, "in_now", 16*ms)
		run(t, coll, "classify")
		if get[uint32](t, coll, "out_may_preempt") == 0 {
			t.Errorf("1.5ms average, 6ms since it woke, 5ms minimum: want a victim")
		}
	}()
	conf := get[behaviortypesSkBehaviorConf](t, coll, "sk_behavior_conf")
	if conf.ShortBurstNs != 2*ms || conf.VictimMinRunNs != 5*ms || conf.Flags != uint32(behaviortypesSkBehaviorConstsSK_NO_PREEMPT) {
		t.Errorf("sk_behavior_conf = %+v, want 2ms, 5ms, no-preempt only", conf)
	}
	set(t, coll, "in_avg", 1500*us)
	set(t, coll, "in_since", 10*ms)
	set(t, coll, "in_now", 14*ms)
	run(t, coll, "classify")
	if get[uint32](t, coll, "out_short") == 0 || get[uint32](t, coll, "out_may_preempt") != 0 {
		t.Errorf("1.5ms average under a 2ms bound: want short, and no victim (short, and 4ms < 5ms)")
	}
}

// TestEndBurst ends a burst of the test's own thread, as ops.stopping
// does when a task sleeps: the burst is the thread's run time since the
// "wakeup" the test sets, so it is the chosen length plus the little the
// thread ran in between (its own CPU time, which a busy machine does not
// inflate; 10ms is far more than two syscalls take).
func TestEndBurst(t *testing.T) {
	coll, _ := loadSelftest(t, nil)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	const slack = 10 * ms
	for _, c := range []struct {
		avg, burst    uint64
		woken         bool
		wantSensitive bool
	}{
		{avg: 0, burst: 4 * ms, woken: true, wantSensitive: true},          // one long burst: 250µs after
		{avg: 600 * us, burst: 4 * ms, woken: true},                        // 700µs after: CPU-bound
		{avg: 100 * us, burst: 100 * us, woken: true, wantSensitive: true}, // ~100µs: latency-sensitive
		{avg: 2 * ms, burst: 0, woken: true},                               // 1.5ms: CPU-bound
		// A first run that did not begin at a wakeup leaves the average.
		{avg: 0, burst: 40 * ms, wantSensitive: true},
	} {
		run(t, coll, "run_time")
		now := get[uint64](t, coll, "in_woke_sum")
		set(t, coll, "in_woke_sum", now-c.burst)
		set(t, coll, "in_avg", c.avg)
		set(t, coll, "in_woken", map[bool]uint64{false: 0, true: 1}[c.woken])
		const ran = 3 * ms
		set(t, coll, "in_run_sum", now-ran)
		run(t, coll, "end_burst")
		if get[uint32](t, coll, "out_found") == 0 {
			t.Fatal("no task storage for the test's thread")
		}
		want := c.avg
		if c.woken {
			want = c.avg - c.avg/4 + min(c.burst, 2*uint64(DefaultShortBurst))/4
		}
		got := get[uint64](t, coll, "out_avg")
		if got+1 < want || got > want+slack/4 || (!c.woken && got != want) {
			t.Errorf("avg %d, burst %d: new average %d, want %d (+ at most %d)", c.avg, c.burst, got, want, slack/4)
		}
		if s := get[uint32](t, coll, "out_sensitive") != 0; s != c.wantSensitive {
			t.Errorf("avg %d, burst %d: sensitive %v, want %v", c.avg, c.burst, s, c.wantSensitive)
		}
		// What it ran since ops.running: the thread's run time went on
		// between run_time and end_burst, by less than the slack.
		if used := get[uint64](t, coll, "out_used"); used < ran || used > ran+slack {
			t.Errorf("avg %d, burst %d: used %d since running, want %d (+ at most %d)", c.avg, c.burst, used, ran, slack)
		}
		// A task that sleeps begins its next burst at its wakeup, with
		// the run time it has when it sleeps.
		if w := get[uint64](t, coll, "out_woken"); w != 1 {
			t.Errorf("avg %d, burst %d: woken %d after sleeping, want 1", c.avg, c.burst, w)
		}
		if ws := get[uint64](t, coll, "out_woke_sum"); ws < now || ws > now+slack {
			t.Errorf("avg %d, burst %d: next burst begins at run time %d, want %d (+ at most %d)", c.avg, c.burst, ws, now, slack)
		}
	}
}

// TestStats checks the counters read back, zero, once bound, and that
// Read refuses before Bind.
func TestStats(t *testing.T) {
	tr, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Read(); !errors.Is(err, scx.ErrNotBound) {
		t.Errorf("Read before Bind: %v, want scx.ErrNotBound", err)
	}
	_, tr = loadSelftest(t, nil)
	samples, err := tr.ReadStats(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(samples) != len(tr.Stats()) {
		t.Fatalf("%d samples for %d stats", len(samples), len(tr.Stats()))
	}
	for _, s := range samples {
		if s.Value != 0 {
			t.Errorf("%s = %v before any scheduling, want 0", tr.Stats()[s.Stat].Name, s.Value)
		}
	}
}

// TestValidate checks that bad options are refused with ErrInvalid and
// that zero values take the defaults.
func TestValidate(t *testing.T) {
	for _, o := range []Options{{ShortBurst: -1}, {VictimMinRun: 2 * time.Second}} {
		if _, err := New(&o); !errors.Is(err, ErrInvalid) {
			t.Errorf("New(%+v): %v, want ErrInvalid", o, err)
		}
	}
	tr, err := New(&Options{})
	if err != nil {
		t.Fatal(err)
	}
	if o := tr.Options(); o.ShortBurst != DefaultShortBurst || o.VictimMinRun != DefaultVictimMinRun {
		t.Errorf("defaults: %+v", o)
	}
}
