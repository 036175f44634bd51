package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/scxkit/scxkit/dsq"
	"github.com/scxkit/scxkit/lb"
	"github.com/scxkit/scxkit/runner"
	"github.com/scxkit/scxkit/scx"
	"github.com/scxkit/scxkit/scxtest"
	"github.com/scxkit/scxkit/vmtest"
)

// Two sockets of two cores: two LLCs, so two domains of two CPUs.
func TestMain(m *testing.M) {
	vmtest.Main(m, &vmtest.Config{Topology: vmtest.Topology{Sockets: 2, Cores: 2, Threads: 1}})
}

// statsLine matches a stats line (runner.AppendStatsLine) with the
// balancer's migrations and the run time of domains 0 and 1, in ns.
var statsLine = regexp.MustCompile(`lb\.moved_tasks=(\d+) .*lb\.runtime_ns\{domain=0\}=(\d+) lb\.runtime_ns\{domain=1\}=(\d+) `)

var runnableLine = regexp.MustCompile(`runnable_tasks=([\d.,]+) runnable_buckets=([\d.,]+)`)

// runnableRounds returns, for the newest n balancing rounds, the runnable
// tasks per domain: summed over the tasks, and from the domain buckets.
func runnableRounds(t *testing.T, log string, n int) (fromTasks, fromBuckets [][]float64) {
	t.Helper()
	m := runnableLine.FindAllStringSubmatch(log, -1)
	if len(m) < n {
		t.Fatalf("%d balance lines with runnable_tasks in the log, want %d:\n%s", len(m), n, tail(log, 20))
	}
	parse := func(s string) []float64 {
		var v []float64
		for _, f := range strings.Split(s, ",") {
			x, err := strconv.ParseFloat(f, 64)
			if err != nil {
				t.Fatalf("runnable %q: %v", s, err)
			}
			v = append(v, x)
		}
		return v
	}
	for _, r := range m[len(m)-n:] {
		fromTasks = append(fromTasks, parse(r[1]))
		fromBuckets = append(fromBuckets, parse(r[2]))
	}
	return fromTasks, fromBuckets
}

// median returns the median of v (which it sorts).
func median(v []float64) float64 {
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// lastStats returns moved and the per-domain run times, in ms, of the
// newest stats line.
func lastStats(out string) (moved, dom0, dom1 int, ok bool) {
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if m := statsLine.FindStringSubmatch(sc.Text()); m != nil {
			moved, _ = strconv.Atoi(m[1])
			ns0, _ := strconv.ParseInt(m[2], 10, 64)
			ns1, _ := strconv.ParseInt(m[3], 10, 64)
			dom0, dom1 = int(ns0/1e6), int(ns1/1e6)
			ok = true
		}
	}
	return moved, dom0, dom1, ok
}

// startSpinners starts n busy-looping shells on CPUs 0-1 (domain 0), so
// that the scheduler files them under domain 0, then lets them run
// anywhere: only the load balancer can move them to domain 1.
func startSpinners(t *testing.T, n int) []*exec.Cmd {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var dom0, all unix.CPUSet
	dom0.Set(0)
	dom0.Set(1)
	for cpu := range 4 {
		all.Set(cpu)
	}
	if err := unix.SchedSetaffinity(0, &dom0); err != nil {
		t.Fatal(err)
	}
	// Wait until this thread runs in domain 0, where children are born.
	time.Sleep(50 * time.Millisecond)
	var cmds []*exec.Cmd
	for range n {
		cmd := exec.Command("/bin/sh", "-c", "while :; do :; done")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		cmds = append(cmds, cmd)
	}
	for _, cmd := range cmds {
		if err := unix.SchedSetaffinity(cmd.Process.Pid, &all); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.SchedSetaffinity(0, &all); err != nil {
		t.Fatal(err)
	}
	return cmds
}

// TestBalancesDomains puts four CPU-bound tasks into domain 0 of a 2x2
// machine, with stealing turned off, and checks that the load balancer
// moves work until both domains run for about as long.
func TestBalancesDomains(t *testing.T) {
	k, err := scx.Probe(nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr scxtest.Buffer
	done := make(chan error, 1)
	go func() {
		done <- runner.Run(ctx, command(), []string{"-interval", "250ms", "-stats", "250ms", "-steal", "100000", "-v"}, &stdout, &stderr)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, err := k.Status()
		if err != nil {
			t.Fatal(err)
		}
		if st.State == scx.StateEnabled && st.Ops == "domains" {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("domains returned before attaching: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("domains did not attach within 60s\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	startSpinners(t, 4)
	// Let the balancer work for a dozen intervals, then measure a window
	// between two stats lines. The window's ends are stats lines, not the
	// sleeps: on a slow or loaded VM the line after a sleep may be late,
	// so the test waits for one (the figures compared are the two
	// domains' shares of the same window, whatever its length).
	time.Sleep(3 * time.Second)
	n := waitStatsLines(t, &stdout, 1)
	_, a0, a1, _ := lastStats(stdout.String())
	time.Sleep(3 * time.Second)
	waitStatsLines(t, &stdout, n+1)
	moved, b0, b1, _ := lastStats(stdout.String())
	d0, d1 := b0-a0, b1-a1
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("domains: %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("domains did not return 30s after cancel")
	}
	if st, err := k.Status(); err != nil || st.State != scx.StateDisabled {
		t.Errorf("after detach: %v, %v", st, err)
	}
	t.Logf("over 3s: domain 0 ran %dms, domain 1 ran %dms; %d migrations\nlast stats line: %s\n%s", d0, d1, moved, tail(stdout.String(), 1), tail(stderr.String(), 12))
	if moved == 0 {
		t.Errorf("no migrations")
	}

	// The domains' duty-cycle buckets agree with their tasks' duty
	// cycles. Single rounds differ by design: a moved task's count ramps
	// up in its new domain over a half-life while its own duty cycle moves
	// at once, a task that exited leaves its past in the buckets for a few
	// half-lives, and the maps are read one after the other; one round in
	// CI differed by 0.49 in a domain. A count that leaked or stuck would
	// differ in every round, so the check is on the median over the last
	// 8 rounds: within a quarter of a task per domain and in total.
	// Measured medians: 0 to 0.04.
	fromTasks, fromBuckets := runnableRounds(t, stderr.String(), 8)
	last := len(fromTasks) - 1
	t.Logf("runnable tasks per domain, last round: %v from the tasks, %v from the buckets", fromTasks[last], fromBuckets[last])
	var dTotal []float64
	dDom := make([][]float64, 2)
	for r := range fromTasks {
		if len(fromTasks[r]) != 2 || len(fromBuckets[r]) != 2 {
			t.Fatalf("want 2 domains, got %v and %v", fromTasks[r], fromBuckets[r])
		}
		var sumT, sumB float64
		for d := range 2 {
			sumT += fromTasks[r][d]
			sumB += fromBuckets[r][d]
			dDom[d] = append(dDom[d], math.Abs(fromTasks[r][d]-fromBuckets[r][d]))
		}
		dTotal = append(dTotal, math.Abs(sumT-sumB))
		if sumB < 3.5 {
			t.Errorf("%.2f runnable tasks from the buckets: the 4 spinners alone are 4", sumB)
		}
	}
	for d := range 2 {
		if m := median(dDom[d]); m > 0.25 {
			t.Errorf("domain %d: buckets and tasks differ by a median %.2f runnable tasks over 8 rounds", d, m)
		}
	}
	if m := median(dTotal); m > 0.25 {
		t.Errorf("in total, buckets and tasks differ by a median %.2f runnable tasks over 8 rounds", m)
	}
	t.Logf("median |tasks - buckets| over 8 rounds: domain 0 %.2f, domain 1 %.2f, total %.2f", median(dDom[0]), median(dDom[1]), median(dTotal))
	// Tolerance: over the window each domain runs at least half as long
	// as the other. Ideally they are equal (4 spinners on 2+2 CPUs);
	// without balancing domain 1 would run next to nothing, as stealing
	// is off. Measured under TCG since run time comes from
	// runtime.bpf.h: 0.97 to 1.0 (0.66 to 0.88 before, when the slice
	// left undercounted it).
	if lo, hi := min(d0, d1), max(d0, d1); hi == 0 || float64(lo) < 0.5*float64(hi) {
		t.Errorf("run time did not even out: domain 0 %dms, domain 1 %dms", d0, d1)
	}
}

// waitStatsLines waits until out holds at least n stats lines and returns
// how many it holds; it fails the test after 30s.
func waitStatsLines(t *testing.T, out interface{ String() string }, n int) int {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if got := len(statsLine.FindAllString(out.String(), -1)); got >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d stats lines after 30s:\n%s", n, out.String())
		}
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n") + fmt.Sprintf("\n(%d lines)", len(lines))
}

// TestAffinity checks what the BPF half makes of task affinity, on the
// 2x2 VM (domain 0 is CPUs 0-1, domain 1 CPUs 2-3): the allowed domains
// the balancer reads (lb.Balancer.ReadTasks), and that a planned move the affinity forbids is
// refused while an allowed one is applied.
func TestAffinity(t *testing.T) {
	// The command's components with its default flags, loaded and
	// attached but not run: no balancing round interferes.
	cfg := setup(t)
	b := cfg.Components[1].(*lb.Balancer)
	spec, err := scx.Open(scx.Objects{Base: loadDomains, V2: loadDomainsV2}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	s, err := spec.Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Attach(); err != nil {
		t.Fatal(err)
	}

	// A shell that wakes every 50ms, so it passes ops.enqueue often.
	cmd := exec.Command("/bin/sh", "-c", "while :; do sleep 0.05; done")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	pid := uint64(cmd.Process.Pid)

	// task polls the tracker for pid until ok accepts it. The shell
	// passes ops.enqueue every 50ms, so this takes a few rounds; the 30s
	// bound only ends a test that would otherwise hang, and a host busy
	// enough to starve the guest's vCPUs for seconds must not fail it.
	task := func(what string, ok func(lb.Task) bool) lb.Task {
		t.Helper()
		var last lb.Task
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			tasks, err := b.ReadTasks(nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, tk := range tasks {
				if tk.ID == pid {
					last = tk
					if ok(tk) {
						return tk
					}
				}
			}
		}
		t.Fatalf("%s: task %d is %+v", what, pid, last)
		return last
	}
	setAffinity := func(cpus ...int) {
		t.Helper()
		var set unix.CPUSet
		for _, c := range cpus {
			set.Set(c)
		}
		if err := unix.SchedSetaffinity(int(pid), &set); err != nil {
			t.Fatal(err)
		}
	}
	only := func(dom uint64) func(lb.Task) bool {
		return func(tk lb.Task) bool {
			return len(tk.Affinity) == 1 && tk.Affinity[0] == dom && tk.Pinned
		}
	}

	setAffinity(2)
	task("allowed CPU 2", only(1<<1))
	setAffinity(1, 2)
	task("allowed CPUs 1-2", func(tk lb.Task) bool { return tk.Affinity == nil && !tk.Pinned })
	setAffinity(0, 1)
	task("allowed CPUs 0-1", func(tk lb.Task) bool { return only(1<<0)(tk) && tk.Domain == 0 })

	counters := func() []lb.DomainCounters {
		t.Helper()
		c, err := b.ReadCounters(nil)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// A plan into domain 1 is refused: the task may not run there.
	before := counters()
	if err := b.WritePlan([]lb.Migration{{Task: pid, From: 0, To: 1}}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); counters()[0].Refused == before[0].Refused; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the move into a forbidden domain was not refused: counters %+v", counters())
		}
	}
	task("after the refused move", func(tk lb.Task) bool { return tk.Domain == 0 })

	// Allowed everywhere, the same plan moves it.
	setAffinity(0, 1, 2, 3)
	if err := b.WritePlan([]lb.Migration{{Task: pid, From: 0, To: 1}}); err != nil {
		t.Fatal(err)
	}
	task("after the allowed move", func(tk lb.Task) bool { return tk.Domain == 1 && tk.Affinity == nil })
	if got := counters()[1].MigratedIn; got <= before[1].MigratedIn {
		t.Errorf("domain 1 migrated_in %d, was %d: want the move counted", got, before[1].MigratedIn)
	}

	if err := s.Detach(); err != nil {
		t.Fatal(err)
	}
	k := s.Kernel()
	if st, err := k.Status(); err != nil || st.State != scx.StateDisabled {
		t.Errorf("after detach: %+v, %v", st, err)
	}
}

// setup returns the configuration domains' Setup makes with args, named
// as runner.Run names it.
func setup(t *testing.T, args ...string) scx.Config {
	t.Helper()
	cmd := command()
	fs := flag.NewFlagSet(cmd.Name, flag.ContinueOnError)
	cmd.Flags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	cfg, err := cmd.Setup(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Name = cmd.Name
	return cfg
}

// TestDomainsMatchLayout checks that the balancer refuses, at load, domains
// other than the DSQs of the scheduler's layout: the BPF side's domains
// are the DSQ indexes.
func TestDomainsMatchLayout(t *testing.T) {
	cfg := setup(t)
	layout := cfg.Components[0].(*dsq.Layout)
	doms := append(lb.DomainsOf(layout), lb.Domain{ID: len(layout.DSQs), CPUs: 1})
	bal, err := lb.New(doms, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Components[1] = bal
	spec, err := scx.Open(scx.Objects{Base: loadDomains, V2: loadDomainsV2}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	s, err := spec.Load(nil)
	if err == nil {
		s.Close()
	}
	if !errors.Is(err, lb.ErrInvalid) || !strings.Contains(err.Error(), "DomainsOf") {
		t.Errorf("Load with %d domains over %d DSQs: %v; want lb.ErrInvalid naming lb.DomainsOf", len(doms), len(layout.DSQs), err)
	}
}
