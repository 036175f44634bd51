package latency

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// Tolerances of TestTwoCgroups, with why.
const (
	// The sleeper's waits are charged to what ran on its CPU: the hogs
	// (another cgroup) all the time, save the sleeper's own runtime
	// threads and the moments the CPU switches. At least this share of
	// its queueing delay must be other-cgroup wait.
	minOtherShare = 0.80
	// Wakeups counted vs the kernel's count of the sleeper's blocks
	// (voluntary context switches, read just before and after): a
	// runtime thread may block or wake in the few µs between those
	// reads and the Reads, and a thread with a signal pending (Go
	// preempts with SIGURG) counts a voluntary switch without blocking.
	// Measured: 0 to 2 apart in 3500; allowed: 5 + 0.5%.
	wakeupSlack    = 5
	wakeupSlackRel = 0.005
	// On-CPU time vs cpu.stat usage_usec over the same window: the
	// kernel charges a running task at ticks and switches (so up to a
	// tick, 1-10 ms, behind), the two are read a few µs apart, and
	// /proc/stat's steal and interrupt time on the CPU (10 ms ticks),
	// which the profiler's switch-to-switch time includes and the task
	// clock may not, is added to the tolerance as measured.
	onCPURel = 0.03
	onCPUAbs = 15 * time.Millisecond
)

// TestTwoCgroups runs CPU hogs in one cgroup and a task that sleeps and
// wakes N times in another, all on one CPU, and checks what the profiler
// reports against the kernel's own counts.
func TestTwoCgroups(t *testing.T) {
	requireRoot(t)
	mount, err := Cgroup2Mount()
	if err != nil {
		t.Fatal(err)
	}
	top := makeCgroup(t, mount, fmt.Sprintf("scxkit-latency-test-%d", os.Getpid()))
	hogDir := makeCgroup(t, top, "hogs")
	sleepDir := makeCgroup(t, top, "sleeper")

	const n, sleepNs = 1000, 200_000
	cpu := runtime.NumCPU() - 1
	hs := startHelpers(t, cpu,
		[]string{helperEnv + "=hog", "GOMAXPROCS=2"},
		[]string{helperEnv + "=sleeper", "GOMAXPROCS=1", fmt.Sprintf("SLEEPER_N=%d", n), fmt.Sprintf("SLEEPER_NS=%d", sleepNs)})
	hogs, sleeper := hs[0], hs[1]
	for _, h := range hs {
		if got := allowedCPUs(t, h.cmd.Process.Pid); got != fmt.Sprint(cpu) {
			t.Fatalf("helper %d may run on CPUs %q, want %d", h.cmd.Process.Pid, got, cpu)
		}
	}
	moveTo(t, hogDir, hogs.cmd.Process.Pid)
	moveTo(t, sleepDir, sleeper.cmd.Process.Pid)

	bounds := []time.Duration{20 * time.Microsecond, 100 * time.Microsecond, 500 * time.Microsecond,
		time.Millisecond, 2 * time.Millisecond, 4 * time.Millisecond, 8 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// One cgroup by its hierarchy path, one by its directory.
	hogPath := "/" + filepath.Base(top) + "/hogs"
	p, err := Start(ctx, &Options{
		Cgroups:          []string{hogPath, sleepDir},
		Bounds:           bounds,
		OutlierThreshold: 1, // every wait: the stream must match the histogram
		OutlierBuffer:    1 << 16,
		RingBufferSize:   4 << 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if !slices.Equal(p.Bounds(), bounds) {
		t.Fatalf("Bounds() = %v, want %v", p.Bounds(), bounds)
	}
	sleepCg, err := LookupCgroup(sleepDir)
	if err != nil {
		t.Fatal(err)
	}

	// Collect the sleeper cgroup's outliers into a histogram of our own.
	var mu sync.Mutex
	own, _ := NewHistogram(bounds)
	var outliers []Outlier
	done := make(chan struct{})
	go func() {
		defer close(done)
		for o := range p.Outliers() {
			if o.CgroupID == sleepCg.ID {
				mu.Lock()
				own.Add(o.Delay)
				outliers = append(outliers, o)
				mu.Unlock()
			}
		}
	}()

	hogs.send(t)
	time.Sleep(200 * time.Millisecond)

	find := func(s []CgroupStats, id uint64) *CgroupStats {
		for i := range s {
			if s[i].ID == id {
				return &s[i]
			}
		}
		t.Fatalf("cgroup %d missing from snapshot %+v", id, s)
		return nil
	}
	hogCg, err := LookupCgroup(hogDir)
	if err != nil {
		t.Fatal(err)
	}

	// The window: from before the sleeper starts to after it is done.
	vcsw0 := voluntarySwitches(t, sleeper.cmd.Process.Pid)
	hogUse0, sleepUse0 := usage(t, hogDir), usage(t, sleepDir)
	stolen0 := stolen(t, cpu)
	s0, err := p.Read(nil)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	sleeper.send(t)
	sleeper.expect(t, "done")
	elapsed := time.Since(t0)
	s1, err := p.Read(nil)
	if err != nil {
		t.Fatal(err)
	}
	hogUse1, sleepUse1 := usage(t, hogDir), usage(t, sleepDir)
	vcsw1 := voluntarySwitches(t, sleeper.cmd.Process.Pid)
	stolenTol := stolen(t, cpu) - stolen0 + 10*time.Millisecond

	w0, w1 := find(s0, sleepCg.ID), find(s1, sleepCg.ID)
	h0, h1 := find(s0, hogCg.ID), find(s1, hogCg.ID)
	if w1.Path != sleepCg.Path || h1.Path != hogPath {
		t.Errorf("paths %q, %q; want %q, %q", w1.Path, h1.Path, sleepCg.Path, hogPath)
	}
	wakeups := w1.Wakeups - w0.Wakeups
	blocks := vcsw1 - vcsw0
	delay := w1.QueueDelay.Sum - w0.QueueDelay.Sum
	other := w1.OtherCgroupWait - w0.OtherCgroupWait
	same := w1.SameCgroupWait - w0.SameCgroupWait
	idle := w1.IdleWait - w0.IdleWait
	t.Logf("sleeper: %d sleeps in %v; %d wakeups counted, kernel: %d blocks; %d preemptions; queueing delay %v: other %v, same %v, idle %v; p50 %v p99 %v",
		n, elapsed, wakeups, blocks, w1.Preemptions-w0.Preemptions, delay, other, same, idle,
		w1.QueueDelay.Percentile(50), w1.QueueDelay.Percentile(99))

	if wakeups < n {
		t.Errorf("%d wakeups counted, but the sleeper slept %d times", wakeups, n)
	}
	slack := wakeupSlack + int64(wakeupSlackRel*float64(blocks))
	if diff := int64(wakeups) - int64(blocks); diff < -slack || diff > slack {
		t.Errorf("%d wakeups counted, the kernel counted %d blocks of the sleeper's threads (tolerance ±%d)", wakeups, blocks, slack)
	}
	if delay <= 0 {
		t.Fatalf("no queueing delay counted for the sleeper")
	}
	if share := float64(other) / float64(delay); share < minOtherShare {
		t.Errorf("other-cgroup wait is %.1f%% of the sleeper's queueing delay, want >= %.0f%%", 100*share, 100*minOtherShare)
	}
	for _, c := range s1 {
		if got := c.SameCgroupWait + c.OtherCgroupWait + c.IdleWait; got != c.QueueDelay.Sum {
			t.Errorf("%s: same + other + idle = %v, queueing delay %v", c.Path, got, c.QueueDelay.Sum)
		}
		if got := c.QueueDelay.Count(); got != c.Waits() {
			t.Errorf("%s: histogram counts %d waits, %d wakeups + %d preemptions", c.Path, got, c.Wakeups, c.Preemptions)
		}
	}

	checkOnCPU := func(name string, ours, kernel time.Duration) {
		t.Helper()
		tol := onCPUAbs + time.Duration(onCPURel*float64(kernel)) + stolenTol
		t.Logf("%s: on-CPU %v, cpu.stat usage %v (tolerance %v)", name, ours, kernel, tol)
		if d := ours - kernel; d < -tol || d > tol {
			t.Errorf("%s: on-CPU time %v, cpu.stat usage_usec says %v (tolerance %v)", name, ours, kernel, tol)
		}
	}
	checkOnCPU("hogs", h1.OnCPU-h0.OnCPU, hogUse1-hogUse0)
	checkOnCPU("sleeper", w1.OnCPU-w0.OnCPU, sleepUse1-sleepUse0)

	// Freeze the sleeper's cgroup: with its only process gone, nothing
	// more is counted for it, so the outliers seen so far must add up to
	// its histogram, bucket by bucket.
	sleeper.kill()
	s2, err := p.Read(nil)
	if err != nil {
		t.Fatal(err)
	}
	w2 := find(s2, sleepCg.ID)
	if w2.OutliersLost != 0 || p.OutliersDropped() != 0 {
		t.Fatalf("outliers lost: %d in BPF, %d in Go: make the buffers larger", w2.OutliersLost, p.OutliersDropped())
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		got := own.Count()
		mu.Unlock()
		if got >= w2.Outliers || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	if len(w2.QueueDelay.Counts) != len(bounds)+1 {
		t.Errorf("%d buckets, want %d", len(w2.QueueDelay.Counts), len(bounds)+1)
	}
	if !slices.Equal(own.Counts, w2.QueueDelay.Counts) || own.Sum != w2.QueueDelay.Sum || uint64(len(outliers)) != w2.Outliers {
		t.Errorf("histogram from the %d outliers (%d announced):\n%vsum %v\nprofiler's histogram:\n%vsum %v",
			len(outliers), w2.Outliers, own, own.Sum, &w2.QueueDelay, w2.QueueDelay.Sum)
	}
	for _, o := range outliers {
		if o.CPU != cpu || o.Cgroup != sleepCg.Path || o.PID == 0 || o.Comm == "" || o.SameCgroupWait+o.OtherCgroupWait+o.IdleWait != o.Delay {
			t.Errorf("bad outlier %+v", o)
			break
		}
	}
	mu.Unlock()

	// Reset: the sleeper's cgroup is empty now, so it must read zero.
	if err := p.Reset(); err != nil {
		t.Fatal(err)
	}
	s3, err := p.Read(s2)
	if err != nil {
		t.Fatal(err)
	}
	if w3 := find(s3, sleepCg.ID); w3.Waits() != 0 || w3.QueueDelay.Count() != 0 || w3.QueueDelay.Sum != 0 || w3.OnCPU != 0 || w3.OffCPU != 0 {
		t.Errorf("after Reset, the empty cgroup reads %+v", *w3)
	}
	if h3 := find(s3, hogCg.ID); h3.OnCPU > 100*time.Millisecond {
		t.Errorf("right after Reset, the hogs ran %v", h3.OnCPU)
	}

	// Closing (here through the context) ends the outlier stream.
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Outliers not closed after the context ended")
	}
	if _, err := p.Read(nil); err != ErrClosed {
		t.Errorf("Read after the context ended: %v, want ErrClosed", err)
	}
}
