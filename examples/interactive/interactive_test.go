package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/scxkit/scxkit/preempt"
	"github.com/scxkit/scxkit/runner"
	"github.com/scxkit/scxkit/scx"
	"github.com/scxkit/scxkit/scxtest"
	"github.com/scxkit/scxkit/vmtest"
	"github.com/scxkit/scxkit/workload"
)

// envRole makes the test binary a helper process: "requester" runs
// workload.Requests with the settings in envRequests and prints its
// report as JSON.
const (
	envRole     = "INTERACTIVE_TEST_ROLE"
	envRequests = "INTERACTIVE_TEST_REQUESTS"
)

// Two CPUs: two hogs keep every CPU busy.
func TestMain(m *testing.M) {
	if os.Getenv(envRole) == "requester" {
		os.Exit(requesterMain())
	}
	vmtest.Main(m, &vmtest.Config{Topology: vmtest.Topology{Cores: 2}})
}

// requestResult is what a requester helper prints.
type requestResult struct {
	Requests      int
	P50, P99, Max time.Duration
}

func requesterMain() int {
	var cfg workload.RequestConfig
	if err := json.Unmarshal([]byte(os.Getenv(envRequests)), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "requester:", err)
		return 2
	}
	rep, err := workload.Requests(context.Background(), cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "requester:", err)
		return 1
	}
	json.NewEncoder(os.Stdout).Encode(requestResult{rep.Requests, rep.Percentile(50), rep.Percentile(99), rep.Percentile(100)})
	return 0
}

const cgroupRoot = "/sys/fs/cgroup"

// makeCgroups creates cgroups under the guest's cgroup2 mount and removes
// them at the end.
func makeCgroups(t *testing.T, names ...string) {
	t.Helper()
	for _, name := range names {
		dir := filepath.Join(cgroupRoot, name)
		if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(dir) })
	}
}

// inCgroup returns the SysProcAttr that starts a process in cgroup cg
// (CLONE_INTO_CGROUP), and a function to call once it started.
func inCgroup(t *testing.T, cg string) (*syscall.SysProcAttr, func()) {
	t.Helper()
	dir, err := os.Open(filepath.Join(cgroupRoot, cg))
	if err != nil {
		t.Fatal(err)
	}
	return &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(dir.Fd())}, func() { dir.Close() }
}

// hog starts an endless shell busy loop in cgroup cg, killed at the end
// of the test.
func hog(t *testing.T, cg string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", "while :; do :; done")
	attr, done := inCgroup(t, cg)
	defer done()
	cmd.SysProcAttr = attr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

// requester runs a request/response helper process in cgroup cg and
// returns its report; it fails the test unless it finishes within its
// duration plus 30s having served at least the fraction least of its
// requests (a thread that waits longer than its period skips periods).
func requester(t *testing.T, cg string, cfg workload.RequestConfig, least float64) requestResult {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Duration+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, self, "-test.run=^$")
	cmd.Env = append(os.Environ(), envRole+"=requester", envRequests+"="+string(b))
	attr, done := inCgroup(t, cg)
	defer done()
	cmd.SysProcAttr = attr
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("requester in %s: %v (deadline %v)\n%s", cg, err, cfg.Duration+30*time.Second, stderr.String())
	}
	var r requestResult
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("requester output %q: %v", stdout.String(), err)
	}
	want := int(cfg.Duration/cfg.Period) * cfg.Threads
	if r.Requests == 0 || float64(r.Requests) < least*float64(want) {
		t.Fatalf("requester in %s served %d requests, want at least %.0f%% of %d: starved", cg, r.Requests, least*100, want)
	}
	return r
}

// loaded is the example's scheduler, loaded and attached by a test
// itself, with its preempt.Controller.
type loaded struct {
	t     *testing.T
	ctl   *preempt.Controller
	k     *scx.Kernel
	seq   uint64 // enable_seq after attach
	stop  context.CancelFunc
	done  chan error
	sched *scx.Scheduler
}

// attach loads the scheduler with a preempt component for cfg, which
// Load binds (writing cfg), and attaches it.
func attach(t *testing.T, cfg *preempt.Config) *loaded {
	t.Helper()
	k, err := scx.Probe(nil)
	if err != nil {
		t.Fatal(err)
	}
	l := &loaded{t: t, k: k, done: make(chan error, 1)}
	if l.ctl, err = preempt.New(cfg, nil); err != nil {
		t.Fatal(err)
	}
	spec, err := scx.Open(objects, scx.Config{Name: "interactive", Timeout: 10 * time.Second, Components: []scx.Component{l.ctl}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := spec.Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	l.sched = s
	if err := s.Attach(); err != nil {
		s.Close()
		t.Fatal(err)
	}
	st := l.status()
	l.seq = st.EnableSeq
	ctx, cancel := context.WithCancel(context.Background())
	l.stop = cancel
	go func() {
		_, err := s.Run(ctx, nil)
		l.done <- err
	}()
	t.Cleanup(l.detach)
	return l
}

// objects are the example's BPF objects.
var objects = scx.Objects{Base: loadInteractive, V2: loadInteractiveV2}

func (l *loaded) status() scx.Status {
	st, err := l.k.Status()
	if err != nil {
		l.t.Fatal(err)
	}
	return st
}

// check fails the test unless the same scheduler is still attached: no
// exit, no reload (enable_seq unchanged).
func (l *loaded) check() {
	l.t.Helper()
	select {
	case err := <-l.done:
		l.done <- err
		l.t.Fatalf("the scheduler stopped: %v", err)
	default:
	}
	if st := l.status(); st.State != scx.StateEnabled || st.Ops != "interactive" || st.EnableSeq != l.seq {
		l.t.Fatalf("status %v, want interactive enabled with enable_seq %d (no reload)", st, l.seq)
	}
}

// detach stops the scheduler and checks the kernel is back on the fair
// class.
func (l *loaded) detach() {
	if l.stop == nil {
		return
	}
	l.stop()
	l.stop = nil
	select {
	case err := <-l.done:
		if err != nil {
			l.t.Errorf("scheduler run: %v", err)
		}
	case <-time.After(30 * time.Second):
		l.t.Error("the scheduler did not detach within 30s")
	}
	l.sched.Close()
	if st := l.status(); st.State != scx.StateDisabled {
		l.t.Errorf("after detach: status %v, want disabled", st)
	}
}

// stats returns the counters of class name.
func (l *loaded) stats(name string) preempt.ClassStats {
	l.t.Helper()
	st, err := l.ctl.Read(nil)
	if err != nil {
		l.t.Fatal(err)
	}
	for _, s := range st {
		if s.Class == name {
			return s
		}
	}
	l.t.Fatalf("no class %q in %v", name, st)
	return preempt.ClassStats{}
}

func mustParse(t *testing.T, text string) *preempt.Config {
	t.Helper()
	cfg, err := preempt.Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// reqLoad is the latency-critical load of the tests: two threads, a
// request every 5ms, 300µs of work each.
var reqLoad = workload.RequestConfig{Threads: 2, Period: 5 * time.Millisecond, Work: 300 * time.Microsecond, Duration: 3 * time.Second}

// hogSlice is the slice of the hogs' class: what a waking task would
// wait without preemption.
const hogSlice = 200 * time.Millisecond

// TestLatencyClass: with a CPU hog per CPU in the background class, the
// wakeups of a latency-critical class preempt them, and its p99 wakeup
// latency stays far below the hogs' slice.
func TestLatencyClass(t *testing.T) {
	// A longer slice than hogSlice leaves room between the bound and
	// the slice: under TCG on a loaded host, p99 reached 35ms.
	const hogSlice = 500 * time.Millisecond
	makeCgroups(t, "lat", "bg")
	l := attach(t, mustParse(t, fmt.Sprintf(`
lat cgroup=/lat wakeup=lower slice=5ms
bg  cgroup=/bg  background slice=%v
`, hogSlice)))
	hog(t, "bg")
	hog(t, "bg")
	r := requester(t, "lat", reqLoad, 0.25)
	l.check()
	lat, bg := l.stats("lat"), l.stats("bg")
	t.Logf("requests %d: userspace p50 %v p99 %v max %v", r.Requests, r.P50, r.P99, r.Max)
	t.Logf("%s", &lat)
	t.Logf("%s", &bg)
	// What the bound tells apart: without preemption a wakeup waits
	// for the first of the 2 CPUs to end its hog's slice, and p99 of
	// that wait is about 0.9 of the slice (450ms); with it, a tick or
	// two. Under TCG p99 reached 35ms on a loaded host (vCPU threads
	// waiting for a host CPU delay the wakeups), so a third of the
	// slice (167ms) leaves near 5x for a busier host and is still
	// 2.7x below the wait without preemption.
	bound := hogSlice / 3
	if r.P99 >= bound {
		t.Errorf("userspace p99 wakeup latency %v, want far below the hogs' slice %v (< %v)", r.P99, hogSlice, bound)
	}
	if p99 := lat.Wait.Percentile(99); p99 >= bound {
		t.Errorf("kernel-side p99 wakeup-to-run wait of lat %v, want < %v", p99, bound)
	}
	if lat.Kicks == 0 || bg.Preempted == 0 {
		t.Errorf("lat preempts %d, bg preempted %d: want both > 0", lat.Kicks, bg.Preempted)
	}
	if bg.Runtime < time.Second {
		t.Errorf("the hogs ran %v in all: they should have had most of 2 CPUs for 3s", bg.Runtime)
	}
}

// TestNoPreempt: a no-preempt class is never preempted, though a class
// that preempts lower ones wakes all the time; lower classes wait.
func TestNoPreempt(t *testing.T) {
	makeCgroups(t, "lat", "np", "bg")
	// The default class (kernel threads, this test) goes above the
	// CPU-bound no-preempt class: below it, its tasks would run only
	// through the starvation bound, which is per class (khugepaged once
	// waited 12s there, into the watchdog).
	l := attach(t, mustParse(t, `
lat cgroup=/lat wakeup=lower slice=5ms
default
np  cgroup=/np  nopreempt slice=10ms
bg  cgroup=/bg  background slice=20ms
`))
	hog(t, "np")
	hog(t, "np")
	hog(t, "bg")
	r := requester(t, "lat", reqLoad, 0.1) // waits for np's slices
	l.check()
	lat, np, bg := l.stats("lat"), l.stats("np"), l.stats("bg")
	t.Logf("requests %d: userspace p50 %v p99 %v max %v", r.Requests, r.P50, r.P99, r.Max)
	for _, s := range []*preempt.ClassStats{&lat, &np, &bg} {
		t.Logf("%s", s)
	}
	if np.Preempted != 0 {
		t.Errorf("the no-preempt class was preempted %d times, want 0", np.Preempted)
	}
	if np.Runtime < time.Second {
		t.Errorf("np ran %v, want most of 2 CPUs for 3s", np.Runtime)
	}
	// bg waits behind np: it runs only through the starvation bound.
	if bg.Starved == 0 || bg.Runtime >= np.Runtime/2 {
		t.Errorf("bg ran %v (starved %d) beside np's %v: want it to wait behind np, served by the starvation bound", bg.Runtime, bg.Starved, np.Runtime)
	}
}

// TestStrictPriority: while a higher class's CPU-bound tasks fill every
// CPU, a lower class runs only through the starvation bound. When a task's
// slice ends, ops.dispatch runs before the kernel puts it back on its
// class's queue: the dispatch must count it as work of its class, or each
// slice end hands the CPU to the lower class (before that fix the low hog
// here got 9s of the 24 CPU-seconds, with no boost at all).
func TestStrictPriority(t *testing.T) {
	makeCgroups(t, "hi", "low")
	l := attach(t, mustParse(t, "default\nhi cgroup=/hi slice=10ms\nlow cgroup=/low slice=20ms\n"))
	pids := []int{hog(t, "low").Process.Pid, hog(t, "hi").Process.Pid, hog(t, "hi").Process.Pid}
	ranSince := func(base []time.Duration) []time.Duration {
		t.Helper()
		out := make([]time.Duration, len(pids))
		for i, pid := range pids {
			ran, _, err := schedstat(pid)
			if err != nil {
				t.Fatal(err)
			}
			out[i] = ran
			if base != nil {
				out[i] -= base[i]
			}
		}
		return out
	}
	base := ranSince(nil)
	const window = 6 * time.Second
	start := time.Now()
	time.Sleep(window)
	l.check()
	ran := ranSince(base)
	elapsed := time.Since(start)
	st := l.stats("low")
	total := ran[0] + ran[1] + ran[2]
	t.Logf("in %v on 2 CPUs the low hog ran %v, the hi hogs %v and %v; %s", elapsed, ran[0], ran[1], ran[2], &st)
	if st.Starved == 0 {
		t.Errorf("low was never boosted by the starvation bound: it got CPU time otherwise (%v)", ran[0])
	}
	if ran[0] == 0 {
		t.Errorf("the low hog never ran in %v: the starvation bound failed", elapsed)
	}
	// The low hog's share of the three hogs' CPU time, all measured in
	// this run: a host stall stretches whichever task runs at the time,
	// so shares hold where absolute times do not. Boosts of 100ms per
	// 500ms without progress, on one of the two CPUs, give low about
	// 1/12; without strict priority three equal hogs get 1/3 each. 1/5
	// lies between, with room for ticks that land late under TCG.
	if share := float64(ran[0]) / float64(total); total > 0 && share > 0.2 {
		t.Errorf("the low hog got %.0f%% of the hogs' CPU time (%v of %v), want at most 20%%: only the starvation bound's boosts", 100*share, ran[0], total)
	}
}

// schedstat returns how long pid has run and how many times it was
// switched in, from /proc/PID/schedstat.
func schedstat(pid int) (time.Duration, uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/schedstat", pid))
	if err != nil {
		return 0, 0, err
	}
	var run, wait, count uint64
	if _, err := fmt.Sscan(string(b), &run, &wait, &count); err != nil {
		return 0, 0, fmt.Errorf("/proc/%d/schedstat %q: %w", pid, b, err)
	}
	return time.Duration(run), count, nil
}

// TestPolicyChange: a policy changed through the Controller while the
// scheduler runs takes effect without a reload.
func TestPolicyChange(t *testing.T) {
	makeCgroups(t, "lat", "batch")
	const before = `
lat   cgroup=/lat   wakeup=never slice=5ms
default
batch cgroup=/batch slice=200ms tick=runon
`
	l := attach(t, mustParse(t, before))
	hog(t, "batch")
	hog(t, "batch")
	load := reqLoad
	load.Duration = 2 * time.Second
	r1 := requester(t, "lat", load, 0.02) // waits up to a 200ms slice
	s1 := l.stats("lat")
	gen1, _ := l.ctl.Generation()

	if err := l.ctl.Write(mustParse(t, strings.Replace(before, "wakeup=never", "wakeup=lower", 1))); err != nil {
		t.Fatal(err)
	}
	r2 := requester(t, "lat", load, 0.25)
	l.check()
	s2 := l.stats("lat")
	gen2, _ := l.ctl.Generation()
	t.Logf("wakeup=never: requests %d, p50 %v p99 %v; preempts %d", r1.Requests, r1.P50, r1.P99, s1.Kicks)
	t.Logf("wakeup=lower: requests %d, p50 %v p99 %v; preempts %d", r2.Requests, r2.P50, r2.P99, s2.Kicks-s1.Kicks)
	if gen2 != gen1+1 {
		t.Errorf("generation %d -> %d, want one step", gen1, gen2)
	}
	if s1.Kicks != 0 {
		t.Errorf("lat preempted %d times under wakeup=never", s1.Kicks)
	}
	if s2.Kicks == s1.Kicks {
		t.Error("lat never preempted after the change to wakeup=lower")
	}
	checkLower(t, r1, r2)
}

// TestChangeWithinTick: a change applies to a task already running at the
// next tick, not at the end of its slice, and to a task queued before it
// as soon as it runs. Two hogs share CPU 1 in a class with 2s slices, so
// a hog is switched out once every 2s; the class's slice is then cut to
// 5ms mid-slice. The running hog must be switched out within a few ticks
// (CONFIG_HZ is 250 on Debian: 4ms), far below the ~1.8s left of its old
// slice, and the other one, queued with a 2s slice, within a few ticks
// more. Nothing else preempts the hogs: every class has wakeup=never.
func TestChangeWithinTick(t *testing.T) {
	makeCgroups(t, "spin")
	const oldSlice = 2 * time.Second
	long := mustParse(t, fmt.Sprintf("default wakeup=never\nspin cgroup=/spin wakeup=never slice=%v\n", oldSlice))
	short := mustParse(t, "default wakeup=never\nspin cgroup=/spin wakeup=never slice=5ms\n")
	l := attach(t, long)
	var cpu1 unix.CPUSet
	cpu1.Set(1)
	var hogs [2]int
	for i := range hogs {
		hogs[i] = hog(t, "spin").Process.Pid
		if err := unix.SchedSetaffinity(hogs[i], &cpu1); err != nil {
			t.Fatalf("pin hog %d to CPU 1: %v", hogs[i], err)
		}
	}
	switches := func() int {
		n := 0
		for _, pid := range hogs {
			c, err := involuntarySwitches(pid)
			if err != nil {
				t.Fatal(err)
			}
			n += c
		}
		return n
	}
	// awaitSwitch polls the hogs' switch count every 500µs until it
	// differs from n, and returns the new count and when it was seen.
	awaitSwitch := func(n int, limit time.Duration) (int, time.Time, bool) {
		for end := time.Now().Add(limit); time.Now().Before(end); time.Sleep(500 * time.Microsecond) {
			if m := switches(); m != n {
				return m, time.Now(), true
			}
		}
		return n, time.Time{}, false
	}
	const trials = 5
	var delays, queued []time.Duration
	var delayFrac, queuedFrac []float64 // of the old slice left at the change, of the old slice
	for i := range trials {
		if i > 0 {
			if err := l.ctl.Write(long); err != nil {
				t.Fatal(err)
			}
			// A longer slice applies from the next one granted: let the
			// slices queued under the short one run out first.
			time.Sleep(100 * time.Millisecond)
		}
		// A switch under the long slice starts a 2s slice; the change
		// comes 200ms into it. Higher sched classes also switch a hog
		// out now and then (the soft-lockup detector's stop-class work
		// runs on every CPU every few seconds): the hog resumes with its
		// slice, and the trial starts over from the next switch.
		n := switches()
		var sliceStart time.Time // when the switch that began the running hog's 2s slice was seen
		for attempt := 0; ; attempt++ {
			var ok bool
			if n, sliceStart, ok = awaitSwitch(n, 30*time.Second); !ok {
				t.Fatalf("trial %d: the hogs on CPU 1 were not switched within 30s under 2s slices", i)
			}
			time.Sleep(200 * time.Millisecond)
			m := switches()
			if m == n {
				break
			}
			spin := l.stats("spin")
			t.Logf("trial %d: a hog was switched out within 200ms of a 2s slice (%d -> %d switches; %s)", i, n, m, &spin)
			if attempt == 2 {
				t.Fatalf("trial %d: three 2s slices in a row were cut within 200ms: something preempts the hogs", i)
			}
			n = m
		}
		if err := l.ctl.Write(short); err != nil {
			t.Fatal(err)
		}
		applied := time.Now()
		n, first, ok := awaitSwitch(n, 5*time.Second)
		if !ok {
			t.Fatalf("trial %d: no switch within 5s after the slice was cut to 5ms", i)
		}
		_, second, ok := awaitSwitch(n, 5*time.Second)
		if !ok {
			t.Fatalf("trial %d: the hog queued before the change was not switched out within 5s", i)
		}
		delays = append(delays, first.Sub(applied))
		queued = append(queued, second.Sub(first))
		// The old slice left at the change: 1.8s if the test's 200ms
		// sleep took 200ms, less on a slow host. At least a tick, so a
		// change that came at the slice's very end counts as late.
		left := max(oldSlice-applied.Sub(sliceStart), 4*time.Millisecond)
		delayFrac = append(delayFrac, float64(first.Sub(applied))/float64(left))
		queuedFrac = append(queuedFrac, float64(second.Sub(first))/float64(oldSlice))
	}
	l.check()
	slices.Sort(delays)
	slices.Sort(queued)
	t.Logf("%d trials: from Write to the running hog's switch: median %v, max %v (all %v)", trials, delays[trials/2], delays[trials-1], delays)
	t.Logf("then the run of the hog queued before the change: median %v, max %v (all %v)", queued[trials/2], queued[trials-1], queued)
	// Each delay is compared with what it would be without the feature,
	// measured in the same trial: the running hog would run out the old
	// slice left at the change, the queued one its whole 2s slice. On an
	// idle host the delays are a few ticks, under 5% of those; ticks come
	// late under TCG on a loaded host and the test's own polling and
	// sleeps stretch, which the fraction of the slice left absorbs. The
	// bound, a quarter, is still 4x below what a change applied only at
	// the slice's end gives (1).
	slices.Sort(delayFrac)
	slices.Sort(queuedFrac)
	t.Logf("as fractions of the old slice left: median %.3f (all %.3f); queued hog: median %.3f (all %.3f)", delayFrac[trials/2], delayFrac, queuedFrac[trials/2], queuedFrac)
	const bound = 0.25
	if delayFrac[trials/2] > bound {
		t.Errorf("median delay from the change to the switch is %.2f of the old slice left (%v of all delays), want within a few ticks (< %.2f), not at the old slice's end", delayFrac[trials/2], delays, bound)
	}
	if queuedFrac[trials/2] > bound {
		t.Errorf("median run of the hog queued before the change is %.2f of the 2s slice it was queued with (%v of all runs), want its slice cut to the new 5ms (< %.2f)", queuedFrac[trials/2], queued, bound)
	}
}

// involuntarySwitches returns how often pid was switched out while it
// could still run, from /proc/PID/status.
func involuntarySwitches(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "nonvoluntary_ctxt_switches:"); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no nonvoluntary_ctxt_switches line", pid)
}

// checkLower fails the test unless the p99 latency of after is at most
// half that of before and of the hogs' slice: preemption took effect.
// (Without it, a wakeup waits up to a slice of the hogs: p99 is close to
// hogSlice. Host load under TCG adds stalls of tens of ms now and then,
// hence the wide margin.)
func checkLower(t *testing.T, before, after requestResult) {
	t.Helper()
	if after.P99*2 > before.P99 || after.P99*2 > hogSlice {
		t.Errorf("p99 %v with preemption, %v without: want it at most half that, and half the hogs' slice %v", after.P99, before.P99, hogSlice)
	}
}

// TestBadConfig: bad configurations are refused with errors that name
// the problem, and the policy in force stays.
func TestBadConfig(t *testing.T) {
	makeCgroups(t, "lat")
	good := mustParse(t, "lat cgroup=/lat wakeup=lower slice=5ms\n")
	l := attach(t, good)
	gen, err := l.ctl.Generation()
	if err != nil {
		t.Fatal(err)
	}
	comm, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Fatal(err)
	}
	self := strings.TrimSpace(string(comm))
	for _, c := range []struct {
		name string
		cfg  *preempt.Config
		want string
	}{
		{"unknown cgroup", &preempt.Config{Classes: []preempt.Class{{Name: "x", Cgroups: []string{"/no-such-cgroup"}}}}, "cgroup /no-such-cgroup does not exist"},
		{"task in two classes", &preempt.Config{Classes: []preempt.Class{
			{Name: "byname", Comms: []string{self}},
			{Name: "bycgroup", Cgroups: []string{"/"}},
		}}, "in class \"byname\" by its name and in class \"bycgroup\" by its cgroup"},
		{"cgroup in two classes", &preempt.Config{Classes: []preempt.Class{
			{Name: "a", Cgroups: []string{"/lat"}},
			{Name: "b", Cgroups: []string{"/lat/"}},
		}}, "also in class"},
		{"negative slice", &preempt.Config{Classes: []preempt.Class{{Name: "a", Cgroups: []string{"/lat"}, Policy: preempt.Policy{Slice: -time.Millisecond}}}}, "must be positive"},
	} {
		err := l.ctl.Write(c.cfg)
		if !errors.Is(err, preempt.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Write = %v, want ErrInvalid mentioning %q", c.name, err, c.want)
			continue
		}
		t.Logf("%s: %v", c.name, err)
	}
	if g, err := l.ctl.Generation(); err != nil || g != gen {
		t.Errorf("generation %d, %v after refused configs, want %d", g, err, gen)
	}
	if got := l.ctl.Config().String(); got != "lat cgroup=/lat wakeup=lower slice=5ms\ndefault\n" {
		t.Errorf("config in force:\n%s", got)
	}
	// The policy in force still works: lat preempts a background hog.
	makeCgroups(t, "bg")
	if err := l.ctl.Write(mustParse(t, "lat cgroup=/lat wakeup=lower slice=5ms\nbg cgroup=/bg background slice=100ms\n")); err != nil {
		t.Fatal(err)
	}
	hog(t, "bg")
	hog(t, "bg")
	load := reqLoad
	load.Duration = time.Second
	requester(t, "lat", load, 0.25)
	l.check()
	if s := l.stats("lat"); s.Kicks == 0 {
		t.Errorf("lat did not preempt after the refused configs: %s", &s)
	}
}

// waitFor polls cond every 50ms until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); ; {
		if cond() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestConfigFile runs the example as an operator would, with -config: a
// change to the file applies without a reload, a bad change is logged and
// ignored, and SIGTERM-like cancellation detaches cleanly.
func TestConfigFile(t *testing.T) {
	makeCgroups(t, "lat", "batch")
	k, err := scx.Probe(nil)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "classes.conf")
	write := func(text string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The default class (this test, kernel threads) stays above the
	// hogs: below CPU-bound run-on hogs it would get CPU time only
	// through the starvation bound, which is per class and does not
	// bound the wait of each task (see the package's Starved).
	const before = "lat cgroup=/lat wakeup=never slice=5ms\ndefault\nbatch cgroup=/batch slice=200ms tick=runon\n"
	write(before)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr scxtest.Buffer
	done := make(chan error, 1)
	go func() {
		done <- runner.Run(ctx, command(), []string{"-config", file, "-watch", "200ms", "-stats", "500ms", "-timeout", "10s"}, &stdout, &stderr)
	}()
	if !waitFor(60*time.Second, func() bool {
		st, err := k.Status()
		return err == nil && st.State == scx.StateEnabled && st.Ops == "interactive"
	}) {
		cancel()
		t.Fatalf("interactive did not attach within 60s: %v\n%s", <-done, stderr.String())
	}
	hog(t, "batch")
	hog(t, "batch")
	load := reqLoad
	load.Duration = 2 * time.Second
	r1 := requester(t, "lat", load, 0.02) // waits up to a 200ms slice
	// Read after the first load: the kernel counts enable_seq a moment
	// after state reads enabled.
	st0, _ := k.Status()

	write("lat cgroup=/lat wakeup=lower slice=5ms\ndefault\nbatch cgroup=/batch slice=200ms tick=runon\n")
	// Polls of a 200ms watch: the deadline only decides a failure, and
	// is long enough for a loaded host.
	if !waitFor(30*time.Second, func() bool { return strings.Contains(stderr.String(), "config applied") }) {
		t.Fatalf("the change was not applied within 30s:\n%s", stderr.String())
	}
	r2 := requester(t, "lat", load, 0.25)
	t.Logf("wakeup=never: p99 %v; wakeup=lower: p99 %v", r1.P99, r2.P99)
	checkLower(t, r1, r2)

	write("lat cgroup=/lat slice=0s\n")
	if !waitFor(30*time.Second, func() bool { return strings.Contains(stderr.String(), "config change not applied") }) {
		t.Fatalf("the bad change was not reported within 30s:\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "slice=0s: must be positive") {
		t.Errorf("the error does not name the bad slice:\n%s", stderr.String())
	}
	// Still the good policy: lat preempts.
	r3 := requester(t, "lat", load, 0.25)
	checkLower(t, r1, r3)
	if st, _ := k.Status(); st.State != scx.StateEnabled || st.EnableSeq != st0.EnableSeq {
		t.Errorf("status %v, want interactive enabled with enable_seq %d (no reload)", st, st0.EnableSeq)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("interactive: %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("interactive did not return 30s after cancel")
	}
	if st, err := k.Status(); err != nil || st.State != scx.StateDisabled {
		t.Fatalf("after detach: status %v, %v; want disabled", st, err)
	}
	// The preempt component's stats, per class, on the stats lines.
	for _, field := range []string{"preempt.runtime_ns{class=lat}=", "preempt.wait_p99_ns{class=batch}=", "preempt.kicks{class=lat}="} {
		if !strings.Contains(stdout.String(), field) {
			t.Errorf("no %s... on the stats lines:\n%s", field, stdout.String())
		}
	}
}

// TestContract: the preempt component declares what the example's object
// must do, and scx.Open holds the scheduler to it before anything is
// loaded: SCX_OPS_ENQ_LAST is refused, naming both parties.
func TestContract(t *testing.T) {
	ctl, err := preempt.New(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := scx.Open(objects, scx.Config{Name: "interactive", Components: []scx.Component{ctl}})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if r, ok := spec.DSQs("preempt"); !ok || r.Count != preempt.MaxClasses || r.First < scx.FirstComponentDSQ {
		t.Errorf("preempt's DSQs %+v, %v; want %d from scx.FirstComponentDSQ up", r, ok, preempt.MaxClasses)
	}
	_, err = scx.Open(objects, scx.Config{Name: "interactive", Flags: []scx.OpsFlag{scx.EnqLast}, Components: []scx.Component{ctl}})
	var ce *scx.ConflictError
	if !errors.As(err, &ce) || ce.A != "preempt" || ce.B != "Config" || ce.Flag != scx.EnqLast {
		t.Errorf("Open with SCX_OPS_ENQ_LAST: %v, want a *scx.ConflictError between preempt and Config", err)
	}
}

// TestRestartKeepsConfig: a restart (the kernel's, after CPU hotplug)
// builds the preempt component anew in the runner's Setup, which reads the
// config file again: the policy in force after it is the file's latest,
// applied by the watcher before the restart; and if the file went bad
// since, the one in force before the restart.
func TestRestartKeepsConfig(t *testing.T) {
	const online = "/sys/devices/system/cpu/cpu1/online"
	if _, err := os.Stat(online); err != nil {
		t.Skipf("cpu1 cannot be taken offline: %v", err)
	}
	makeCgroups(t, "lat", "extra")
	k, err := scx.Probe(nil)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "classes.conf")
	write := func(text string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("lat cgroup=/lat wakeup=lower slice=5ms\n")
	before, err := k.Status()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr scxtest.Buffer
	done := make(chan error, 1)
	go func() {
		done <- runner.Run(ctx, command(), []string{"-config", file, "-watch", "100ms", "-stats", "200ms", "-stats-socket", "off"}, &stdout, &stderr)
	}()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("interactive: %v\n%s", err, stderr.String())
			}
		case <-time.After(30 * time.Second):
			t.Error("interactive did not return 30s after cancel")
		}
	}()
	// attached waits for interactive attached with enable_seq above
	// after, and returns its enable_seq.
	attached := func(what string, after uint64) uint64 {
		t.Helper()
		var st scx.Status
		if !waitFor(60*time.Second, func() bool {
			st, err = k.Status()
			return err == nil && st.State == scx.StateEnabled && st.Ops == "interactive" && st.EnableSeq > after
		}) {
			t.Fatalf("interactive not attached %s within 60s: %v\n%s", what, st, stderr.String())
		}
		return st.EnableSeq
	}
	// policy waits for a stats line printed after from (a length of
	// stdout) and returns it.
	policy := func(what string, from int) string {
		t.Helper()
		var line string
		if !waitFor(30*time.Second, func() bool {
			out := stdout.String()[from:]
			if i := strings.LastIndex(out, "preempt.generation="); i >= 0 && strings.HasSuffix(out, "\n") {
				start := strings.LastIndexByte(out[:i], '\n') + 1
				line = out[start : len(out)-1]
				return true
			}
			return false
		}) {
			t.Fatalf("no stats line %s within 30s:\n%s", what, stdout.String())
		}
		return line
	}
	restart := func(v string, after uint64) (uint64, int) {
		t.Helper()
		if err := os.WriteFile(online, []byte(v), 0); err != nil {
			t.Fatalf("write %s to %s: %v", v, online, err)
		}
		seq := attached("after cpu1 online="+v, after)
		return seq, len(stdout.String())
	}
	defer os.WriteFile(online, []byte("1"), 0)

	// enable_seq counts attachments: each attach, the restarts' too,
	// raises it (a moment after the state reads enabled).
	seq := attached("at start", before.EnableSeq)
	write("lat cgroup=/lat wakeup=lower slice=5ms\nextra cgroup=/extra slice=7ms\n")
	if !waitFor(30*time.Second, func() bool { return strings.Contains(stderr.String(), "config applied") }) {
		t.Fatalf("the change was not applied within 30s:\n%s", stderr.String())
	}

	seq, from := restart("0", seq)
	line := policy("after the first restart", from)
	t.Logf("after the first restart: %s", line)
	// Generation 1: the new scheduler started with the file's latest
	// policy (class extra), not the watcher writing it afterwards.
	if !strings.Contains(line, " preempt.generation=1 ") || !strings.Contains(line, "{class=extra}") {
		t.Errorf("after a restart: %q, want generation 1 with class extra (the file's latest policy, read by Setup)", line)
	}

	write("lat cgroup=/lat slice=0s\n")
	if !waitFor(30*time.Second, func() bool { return strings.Contains(stderr.String(), "config change not applied") }) {
		t.Fatalf("the bad change was not reported within 30s:\n%s", stderr.String())
	}
	_, from = restart("1", seq)
	line = policy("after the second restart", from)
	t.Logf("after the second restart: %s", line)
	if !strings.Contains(stderr.String(), "config not applied at the restart, keeping the one in force") {
		t.Errorf("the bad file at the restart was not reported:\n%s", stderr.String())
	}
	if !strings.Contains(line, " preempt.generation=1 ") || !strings.Contains(line, "{class=extra}") {
		t.Errorf("after a restart with a bad file: %q, want generation 1 with class extra (the policy in force before)", line)
	}
}
