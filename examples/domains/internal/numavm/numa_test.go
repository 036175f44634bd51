// Package numavm runs the domains example, as an operator would run the
// binary, on a VM with two NUMA nodes and one domain per CPU, to show the
// load balancer's node-first balancing on a real kernel.
package numavm

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/scxkit/scxkit/scx"
	"github.com/scxkit/scxkit/scxtest"
	"github.com/scxkit/scxkit/vmtest"
)

// Two nodes of one socket of two cores each.
var shape = vmtest.Topology{Sockets: 2, Cores: 2, Threads: 1, Nodes: 2}

// envBinary names the domains binary the tests run.
const envBinary = "SCXKIT_DOMAINS_BIN"

// TestMain builds examples/domains on the host and puts it into the VM.
func TestMain(m *testing.M) {
	if vmtest.InGuest() {
		vmtest.Main(m, nil)
		return
	}
	dir, err := os.MkdirTemp("", "numavm")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin := filepath.Join(dir, "domains")
	build := exec.Command("go", "build", "-o", bin, "github.com/scxkit/scxkit/examples/domains")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "numavm: building examples/domains:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	const guestBin = "/vmtest/domains"
	os.Setenv(envBinary, bin) // for a run on the host (vmtest.EnvHost)
	code := 0
	func() {
		defer os.RemoveAll(dir)
		cfg := &vmtest.Config{
			Topology: shape,
			Files:    []vmtest.File{{Guest: guestBin, Host: bin, Mode: 0o755}},
			Env:      []string{envBinary + "=" + guestBin},
		}
		code = vmtest.Run(m, cfg)
	}()
	os.Exit(code)
}

// spinWork is the busy loop each spinner runs: at least a given number of
// shell arithmetic steps (several seconds of CPU under qemu TCG), and on
// until a stop file exists. The test creates the file after its
// measurement window, so every spinner is busy throughout the window
// however fast the host runs them: with a fixed amount of work alone, a
// fast host (or a balancer that spreads them early) finished them inside
// the window, whose idle tail then failed the busy-CPU check.
const spinWork = `i=0; while [ $i -lt %d ] || [ ! -e %s ]; do i=$((i+1)); done`

// startSpinners starts n shells that each count to at least iters and on
// until the file stop exists, born on CPU 0 (domain 0, node 0), then
// allowed everywhere: only the load balancer can spread them, as stealing
// is off.
func startSpinners(t *testing.T, n, iters int, stop string) []*exec.Cmd {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var cpu0, all unix.CPUSet
	cpu0.Set(0)
	for cpu := range shape.CPUs() {
		all.Set(cpu)
	}
	if err := unix.SchedSetaffinity(0, &cpu0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	var cmds []*exec.Cmd
	for range n {
		cmd := exec.Command("/bin/sh", "-c", fmt.Sprintf(spinWork, iters, stop))
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

var (
	// runLine matches a domain's run time in a stats line
	// (runner.AppendStatsLine), in ns.
	runLine    = regexp.MustCompile(`lb\.runtime_ns\{domain=(\d+)\}=(\d+)`)
	roundMoved = regexp.MustCompile(`msg=balance .*round\.moved=(\d+) round\.cross_node=(\d+)`)
)

// runTimes returns the per-domain run times, in ms, of the newest stats
// line.
func runTimes(out string) []int {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		m := runLine.FindAllStringSubmatch(lines[i], -1)
		if len(m) == 0 {
			continue
		}
		v := make([]int, len(m))
		for _, s := range m {
			d, _ := strconv.Atoi(s[1])
			ns, _ := strconv.ParseInt(s[2], 10, 64)
			if d < len(v) {
				v[d] = int(ns / 1e6)
			}
		}
		return v
	}
	return nil
}

// waitRunLines waits until out holds at least n stats lines with run times
// and returns how many it holds; it fails the test after 30s.
func waitRunLines(t *testing.T, out *scxtest.Buffer, n int) int {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		got := 0
		for _, l := range strings.Split(out.String(), "\n") {
			if runLine.MatchString(l) {
				got++
			}
		}
		if got >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d stats lines after 30s:\n%s", n, out.String())
		}
	}
}

// TestNodeFirst runs the domains binary with one domain per CPU, so two
// domains per node, starts four bounded CPU-bound tasks in domain 0, and
// checks that the balancer moves work across nodes, spreads it over all
// four domains, and that every task finishes.
func TestNodeFirst(t *testing.T) {
	k, err := scx.Probe(nil)
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr scxtest.Buffer
	cmd := exec.Command(os.Getenv(envBinary), "-domains", "0:1:2:3",
		"-interval", "250ms", "-stats", "250ms", "-steal", "100000", "-v")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var exitErr error
	stopped := make(chan struct{})
	go func() { exitErr = <-exited; close(stopped) }()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-stopped:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		st, err := k.Status()
		if err != nil {
			t.Fatal(err)
		}
		if st.State == scx.StateEnabled && st.Ops == "domains" {
			break
		}
		select {
		case <-stopped:
			t.Fatalf("domains exited before attaching: %v\n%s", exitErr, stderr.String())
		case <-ctx.Done():
			t.Fatalf("domains did not attach within 60s\n%s", stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}

	const spinners, iters = 4, 100000
	stop := filepath.Join(t.TempDir(), "stop")
	start := time.Now()
	cmds := startSpinners(t, spinners, iters, stop)
	// The window's ends for the run times are stats lines: after each
	// sleep the test waits for a line printed since, which a slow or
	// loaded VM may be late with (what is compared is the domains'
	// shares of the same window, whatever its length).
	time.Sleep(2 * time.Second)
	n := waitRunLines(t, &stdout, 1)
	before := runTimes(stdout.String())
	busy0, err := scxtest.ReadCPUTimes()
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	waitRunLines(t, &stdout, n+1)
	after := runTimes(stdout.String())
	busy1, err := scxtest.ReadCPUTimes()
	if err != nil {
		t.Fatal(err)
	}
	// The kernel's view: with the spinners spread, every CPU is busy;
	// without balancing, CPUs 1 to 3 would idle, as stealing is off.
	fracs := scxtest.BusyFraction(busy0, busy1)
	busy := make([]string, len(fracs))
	for c, frac := range fracs {
		busy[c] = fmt.Sprintf("%.0f%%", 100*frac)
		if !(frac >= 0.5) {
			t.Errorf("cpu%d busy %.0f%% of the window: want at least 50%%", c, 100*frac)
		}
	}
	t.Logf("per-CPU busy time over the window (/proc/stat): %v", busy)

	// Every spinner finishes its work within the deadline, now that it
	// may stop.
	if err := os.WriteFile(stop, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan int, spinners)
	for i, c := range cmds {
		go func() {
			if err := c.Wait(); err != nil {
				t.Errorf("spinner %d: %v", i, err)
			}
			done <- i
		}()
	}
	deadline := time.After(120 * time.Second)
	for range spinners {
		select {
		case <-done:
		case <-deadline:
			t.Fatalf("spinners did not finish within 120s under domains\n%s", stderr.String())
		}
	}
	elapsed := time.Since(start)

	// Detach: SIGTERM, a clean exit and the kernel back on the fair class.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-stopped:
		if exitErr != nil {
			t.Fatalf("domains: %v\n%s", exitErr, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("domains did not exit 30s after SIGTERM")
	}
	if st, err := k.Status(); err != nil || st.State != scx.StateDisabled {
		t.Errorf("after exit: %+v, %v", st, err)
	}

	var moved, cross int
	for _, m := range roundMoved.FindAllStringSubmatch(stderr.String(), -1) {
		n, _ := strconv.Atoi(m[1])
		c, _ := strconv.Atoi(m[2])
		moved += n
		cross += c
	}
	if len(before) != 4 || len(after) != 4 {
		t.Fatalf("want run times of 4 domains, got %v and %v\n%s", before, after, stdout.String())
	}
	window := make([]int, 4)
	lo, hi := after[0]-before[0], 0
	for d := range 4 {
		window[d] = after[d] - before[d]
		lo, hi = min(lo, window[d]), max(hi, window[d])
	}
	t.Logf("spinners finished after %v; %d migrations, %d across nodes; run time per domain over 3s: %v ms", elapsed.Round(time.Millisecond), moved, cross, window)
	if cross == 0 {
		t.Errorf("no migration across nodes")
	}
	if moved < 3 {
		t.Errorf("%d migrations: moving 4 tasks out of one of 4 domains takes at least 3", moved)
	}
	// Tolerance: each domain runs at least half as long as the busiest.
	// Without balancing, domains 1 to 3 would run next to nothing, as
	// stealing is off.
	if hi == 0 || float64(lo) < 0.5*float64(hi) {
		t.Errorf("run time did not even out over the domains: %v ms", window)
	}
	if t.Failed() {
		for _, l := range strings.Split(stderr.String(), "\n") {
			if !strings.Contains(l, "round.moved=0 ") {
				t.Log(l)
			}
		}
		t.Log(stdout.String())
	}
}
