package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/scxkit/scxkit/runner"
	"github.com/scxkit/scxkit/scx"
	"github.com/scxkit/scxkit/scx/scxstats"
	"github.com/scxkit/scxkit/scxtest"
	"github.com/scxkit/scxkit/vmtest"
	"github.com/scxkit/scxkit/workload"
)

// The tests run in a VM on every kernel of the matrix (see vmtest.Main).
// TestMain builds cmd/scxkit on the host for TestStatsSurfaces and puts it
// into the VM. With envRunSimple=1 the test binary is simple itself, for
// the tests that run it as a process of its own.
func TestMain(m *testing.M) {
	if os.Getenv(envRunSimple) == "1" {
		main()
		return
	}
	cfg := &vmtest.Config{Topology: vmtest.Topology{Cores: 4}}
	if vmtest.InGuest() {
		vmtest.Main(m, cfg)
		return
	}
	os.Exit(buildAndRun(m, cfg))
}

func TestSimpleUnderLoad(t *testing.T) {
	for _, mode := range []struct {
		name, ops string
		args      []string
		fifo      bool
	}{
		{"vtime", "simple", nil, false},
		{"fifo", "simple_fifo", []string{"-fifo"}, true},
	} {
		t.Run(mode.name, func(t *testing.T) {
			k, err := scx.Probe(nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var stdout, stderr scxtest.Buffer
			done := make(chan error, 1)
			// A 50ms slice (the default is 20ms) for the share check
			// below: see there.
			args := append([]string{"-stats", "500ms", "-slice", "50ms"}, mode.args...)
			go func() { done <- runner.Run(ctx, command(), args, &stdout, &stderr) }()

			scxtest.WaitState(t, k, scx.StateEnabled, mode.ops, done, stderr.String)

			rep, err := workload.Run(context.Background(), workload.Config{
				Spinners:      6,
				SpinWork:      40,
				PingPongPairs: 2,
				RoundTrips:    300,
				Deadline:      90 * time.Second,
			})
			if err != nil {
				t.Fatalf("workload under %s: %v\n%s", mode.ops, err, rep)
			}
			t.Logf("workload under %s: %s", mode.ops, rep)

			// What tells the modes apart: three threads spinning on one
			// CPU, two at nice 0 and one at nice 10 (weights 100 and 11
			// in sched_ext's scale, about 9:1). Under vtime the CPU is
			// shared by weight, each nice 0 thread getting about 9 times
			// the nice 10 one's time; under FIFO each runs a slice in
			// turn, 1:1. It takes three: the kernel calls ops.dispatch
			// at a slice's end before it queues the task whose slice
			// ended, so with two threads the one waiting is always
			// alone in the queue and runs next whatever its vtime, and
			// vtime ordering only shows from two waiting threads on
			// (measured on 7.3 with two threads: 1.03 under vtime).
			//
			// The ratio is taken between threads on the same vCPU over
			// the same window, so a slow or loaded host stretches them
			// alike, but for one effect of the scheduler's design: a
			// task is queued no further than a slice behind vtime_now,
			// the vtime of the last task started on any CPU. A task on
			// another CPU that is charged more than a slice in one run
			// pushes vtime_now ahead of the spinners, and each of them
			// is then queued at vtime_now less a slice, tied with the
			// others: the order starts over, and the nice 10 thread gets
			// a turn early. A loaded host charges guest tasks for the
			// time their vCPU waits for a host CPU, so short runs get
			// charged more than 20ms: with the default slice and two
			// host CPU hogs (like stress-ng --cpu 2) the ratio fell to
			// 2.5. With 50ms slices such runs stay within the slice of
			// credit: the ratio holds.
			//
			// The bounds sit far from both expected values: at least 3
			// for vtime (a third of 9:1, room for the odd restart of
			// the order), within [1/2, 2] for FIFO (with about 200
			// slices in the window, a host that lengthens some slices
			// by stealing the vCPU cannot skew it by 2x). The vtime
			// bound, 3, is the geometric middle of 1 and 9.
			ran := niceShares(t, runtime.NumCPU()-1, []int{0, 0, 10}, 10*time.Second)
			n0, n10 := (ran[0]+ran[1])/2, ran[2]
			ratio := float64(n0) / float64(max(n10, time.Microsecond))
			t.Logf("under %s on one CPU: the nice 0 threads ran %v and %v, the nice 10 one %v; ratio %.2f", mode.ops, ran[0], ran[1], n10, ratio)
			if mode.fifo && (ratio < 0.5 || ratio > 2) {
				t.Errorf("under %s a nice 0 spinner ran %v on average and the nice 10 one %v (ratio %.2f), want about 1:1 (within [0.5, 2]): FIFO ignores weights; is -fifo ignored?",
					mode.ops, n0, n10, ratio)
			}
			if !mode.fifo && ratio < 3 {
				t.Errorf("under %s a nice 0 spinner ran %v on average and the nice 10 one %v (ratio %.2f), want at least 3 (about 9:1 by weight): weighted vtime ordering is broken",
					mode.ops, n0, n10, ratio)
			}

			waitStatsLine(t, &stdout, strings.Count(stdout.String(), "enqueued="))
			st, err := k.Status()
			if err != nil || st.State != scx.StateEnabled || st.Ops != mode.ops {
				t.Fatalf("after the workload: status %+v, %v; want enabled %s", st, err, mode.ops)
			}

			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("simple: %v\nstderr:\n%s", err, stderr.String())
				}
			case <-time.After(30 * time.Second):
				t.Fatal("simple did not return 30s after cancel")
			}
			if st, err := k.Status(); err != nil || st.State != scx.StateDisabled {
				t.Fatalf("after detach: status %+v, %v; want disabled", st, err)
			}
			out := stdout.String()
			t.Logf("stdout:\n%s", out)
			last := lastStats(t, out)
			for _, c := range []string{"enqueued", "dispatched"} {
				if !strings.Contains(last, c+"=") || strings.Contains(last, c+"=0 ") || strings.HasSuffix(last, c+"=0") {
					t.Errorf("counter %s missing or zero in %q", c, last)
				}
			}
		})
	}
}

func lastStats(t *testing.T, out string) string {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], "enqueued=") {
			return lines[i]
		}
	}
	t.Fatalf("no stats line in output:\n%s", out)
	return ""
}

// waitStatsLine waits until out holds more than before stats lines, so the
// last one was printed after the caller's work; a fixed sleep would race a
// slow or loaded VM.
func waitStatsLine(t *testing.T, out *scxtest.Buffer, before int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(out.String(), "enqueued=") <= before {
		if time.Now().After(deadline) {
			t.Fatalf("no new stats line within 30s (had %d):\n%s", before, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// niceShares runs a thread spinning on cpu for each of nices, at that nice
// value, until together they have run for total CPU time, and returns how
// long each ran from the moment all were spinning. It polls the threads'
// CPU time rather than sleeping a fixed time, so a slow VM only takes
// longer; it fails after 120s.
func niceShares(t *testing.T, cpu int, nices []int, total time.Duration) []time.Duration {
	t.Helper()
	type ready struct{ i, tid int }
	var (
		stop  atomic.Bool
		wg    sync.WaitGroup
		ch    = make(chan ready, len(nices))
		errCh = make(chan error, len(nices))
	)
	defer func() { stop.Store(true); wg.Wait() }()
	for i, nice := range nices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Never unlocked: the runtime retires the thread when this
			// goroutine returns, so its affinity and nice value go too.
			runtime.LockOSThread()
			var set unix.CPUSet
			set.Set(cpu)
			if err := unix.SchedSetaffinity(0, &set); err != nil {
				errCh <- fmt.Errorf("pin to CPU %d: %w", cpu, err)
				return
			}
			tid := unix.Gettid()
			if err := unix.Setpriority(unix.PRIO_PROCESS, tid, nice); err != nil {
				errCh <- fmt.Errorf("nice %d: %w", nice, err)
				return
			}
			ch <- ready{i, tid}
			x := uint64(tid)
			for !stop.Load() {
				for range 1 << 12 {
					x ^= x << 13
					x ^= x >> 7
					x ^= x << 17
				}
			}
			spinSink.Add(x)
		}()
	}
	tids := make([]int, len(nices))
	for range nices {
		select {
		case r := <-ch:
			tids[r.i] = r.tid
		case err := <-errCh:
			t.Fatal(err)
		}
	}
	read := func() []time.Duration {
		ran := make([]time.Duration, len(tids))
		for i, tid := range tids {
			ran[i] = threadRuntime(t, tid)
		}
		return ran
	}
	start := read()
	deadline := time.Now().Add(120 * time.Second)
	for {
		time.Sleep(100 * time.Millisecond)
		ran := read()
		var sum time.Duration
		for i := range ran {
			ran[i] -= start[i]
			sum += ran[i]
		}
		if sum >= total {
			return ran
		}
		if time.Now().After(deadline) {
			t.Fatalf("the spinners on CPU %d ran %v in 120s, want %v together", cpu, ran, total)
		}
	}
}

var spinSink atomic.Uint64

// threadRuntime returns how long thread tid of this process has run, from
// /proc/self/task/TID/schedstat.
func threadRuntime(t *testing.T, tid int) time.Duration {
	t.Helper()
	name := fmt.Sprintf("/proc/self/task/%d/schedstat", tid)
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var run uint64
	if _, err := fmt.Sscan(string(b), &run); err != nil {
		t.Fatalf("%s %q: %v", name, b, err)
	}
	return time.Duration(run)
}

// Environment variables of the tests that run simple as a process.
const (
	// envRunSimple, set to 1, makes the test binary run simple's main.
	envRunSimple = "SCXKIT_SIMPLE_MAIN"
	// envScxkit names the scxkit binary TestMain built.
	envScxkit = "SCXKIT_SCXKIT_BIN"
)

// buildAndRun builds cmd/scxkit, static, puts it into the VM and runs the
// tests there.
func buildAndRun(m *testing.M, cfg *vmtest.Config) int {
	dir, err := os.MkdirTemp("", "simple-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "scxkit")
	build := exec.Command("go", "build", "-o", bin, "github.com/scxkit/scxkit/cmd/scxkit")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "simple: building cmd/scxkit: %v\n", err)
		return 1
	}
	const guest = "/vmtest/scxkit"
	cfg.Files = append(cfg.Files, vmtest.File{Guest: guest, Host: bin, Mode: 0o755})
	cfg.Env = append(cfg.Env, envScxkit+"="+guest)
	os.Setenv(envScxkit, bin) // for a run on the host (vmtest.EnvHost)
	return vmtest.Run(m, cfg)
}

// TestStatsSurfaces runs simple as a process of its own with -metrics and
// its stats socket, and checks that Prometheus and `scxkit stats simple`
// show the same counters with values consistent between the reads
// (counters never go down: a scrape, then the socket, then a scrape);
// then that SIGINT detaches the scheduler and removes the socket.
func TestStatsSurfaces(t *testing.T) {
	scxkit := os.Getenv(envScxkit)
	if scxkit == "" {
		t.Fatalf("$%s is not set: run the test through go test, whose TestMain builds cmd/scxkit", envScxkit)
	}
	k, err := scx.Probe(nil)
	if err != nil {
		t.Fatal(err)
	}
	sockPath, err := scxstats.DefaultPath("simple")
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	loopbackUp(t)
	// Port 0: the runner logs the address it bound.
	cmd := exec.Command(self, "-metrics", "127.0.0.1:0", "-stats", "200ms")
	cmd.Env = append(os.Environ(), envRunSimple+"=1")
	var stdout, stderr scxtest.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	finished := make(chan struct{}) // closed once the process is waited for
	go func() {
		done <- cmd.Wait()
		close(finished)
	}()
	defer func() {
		cmd.Process.Kill() // an error once it exited
		<-finished
	}()

	scxtest.WaitState(t, k, scx.StateEnabled, "simple", done, stderr.String)
	var url string
	waitFor(t, "the metrics address in the log", &stderr, func() bool {
		m := regexp.MustCompile(`url=(http://\S+/metrics)`).FindStringSubmatch(stderr.String())
		if m != nil {
			url = m[1]
		}
		return m != nil
	})
	// The stats servers see the scheduler soon after the attach; wait
	// until it has counted something.
	enqueued := runner.MetricName("", "enqueued", scx.Counter)
	var prom1 map[string]float64
	waitFor(t, "a scrape with "+enqueued+" above 0", &stderr, func() bool {
		prom1 = scrape(t, url)
		return prom1[enqueued] > 0
	})
	sock := scxkitStats(t, scxkit, "simple")
	prom2 := scrape(t, url)
	// The help text comes from the counter's SK_STAT_HELP in simple.bpf.c.
	if body := get(t, url); !strings.Contains(body, "# HELP "+enqueued+" Tasks queued on the shared DSQ.") {
		t.Errorf("the scrape lacks enqueued's help text from SK_STAT_HELP:\n%s", body)
	}
	t.Logf("scrape:\n%v\nscxkit stats simple:\n%v\nscrape:\n%v", prom1, sock, prom2)

	// The same counters, under their two names.
	if len(sock) == 0 {
		t.Fatal("scxkit stats simple printed no counter")
	}
	var want []string
	for name := range sock {
		want = append(want, runner.MetricName("", name, scx.Counter))
	}
	slices.Sort(want)
	for i, p := range []map[string]float64{prom1, prom2} {
		if got := slices.Sorted(maps.Keys(p)); !slices.Equal(got, want) {
			t.Errorf("scrape %d has metrics %q; the socket's counters are, as metrics, %q", i+1, got, want)
		}
	}
	for _, c := range []string{"local", "enqueued", "dispatched"} {
		if _, ok := sock[c]; !ok {
			t.Errorf("scxkit stats simple lacks counter %s", c)
		}
	}
	for name, v := range sock {
		m := runner.MetricName("", name, scx.Counter)
		if !(prom1[m] <= v && v <= prom2[m]) {
			t.Errorf("%s: scraped %v, then the socket said %v, then scraped %v: want scrape <= socket <= scrape (counters never go down)",
				name, prom1[m], v, prom2[m])
		}
	}

	// The descriptions and the raw reply.
	if out := runScxkit(t, scxkit, "stats", "-meta", "simple"); !strings.Contains(out, "enqueued") || !strings.Contains(out, "u64") {
		t.Errorf("scxkit stats -meta simple does not describe enqueued as u64:\n%s", out)
	}
	var raw map[string]any
	if out := runScxkit(t, scxkit, "stats", "-json", "simple"); json.Unmarshal([]byte(out), &raw) != nil || raw["enqueued"] == nil {
		t.Errorf("scxkit stats -json simple is not a JSON object with enqueued:\n%s", out)
	}
	// Where scx's own tools look by default: the same stats.
	rootSock := "/var/run/scx/root/stats"
	if out := runScxkit(t, scxkit, "stats", "-socket", rootSock); !strings.Contains(out, "enqueued") {
		t.Errorf("scxkit stats -socket %s does not show enqueued:\n%s", rootSock, out)
	}

	// SIGINT: a clean stop, the scheduler detached, the socket removed.
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("simple after SIGINT: %v, want exit status 0\nstderr:\n%s", err, stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("simple still runs 60s after SIGINT\nstderr:\n%s", stderr.String())
	}
	for _, p := range []string{sockPath, rootSock} {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("after the stop: %s: %v, want it removed", p, err)
		}
	}
	if st, err := k.Status(); err != nil || st.State != scx.StateDisabled {
		t.Errorf("after the stop: status %+v, %v; want disabled", st, err)
	}
	if !strings.Contains(stderr.String(), "detached") || !strings.Contains(stdout.String(), "enqueued=") {
		t.Errorf("simple did not log its detach or print stats lines\nstdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	}
}

// loopbackUp brings up the loopback interface, which the guest's init
// leaves down, for -metrics 127.0.0.1.
func loopbackUp(t *testing.T) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		t.Fatalf("lo: get flags: %v", err)
	}
	if flags := ifr.Uint16(); flags&unix.IFF_UP == 0 {
		ifr.SetUint16(flags | unix.IFF_UP)
		if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
			t.Fatalf("lo: bring up: %v", err)
		}
	}
}

// waitFor polls cond until it holds, failing after 60s.
func waitFor(t *testing.T, what string, stderr *scxtest.Buffer, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 60s\nstderr:\n%s", what, stderr.String())
		}
	}
}

// scrape returns the scheduler metrics at url (Prometheus text format),
// by name, checking that each names the scheduler simple.
// get returns the body of a GET of url, failing the test on any error.
func get(t *testing.T, url string) string {
	t.Helper()
	c := http.Client{Timeout: 30 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s, %v\n%s", url, resp.Status, err, body)
	}
	return string(body)
}

func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	body := get(t, url)
	out := map[string]float64{}
	for line := range strings.Lines(body) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		series, value, ok := strings.Cut(line, " ")
		name, labels, _ := strings.Cut(series, "{")
		v, err := strconv.ParseFloat(value, 64)
		if !ok || err != nil || labels != `scheduler="simple"}` {
			t.Fatalf("GET %s: unexpected line %q:\n%s", url, line, body)
		}
		out[name] = v
	}
	return out
}

// scxkitStats runs scxkit stats NAME and returns its "name value" lines.
func scxkitStats(t *testing.T, scxkit, name string) map[string]float64 {
	t.Helper()
	out := runScxkit(t, scxkit, "stats", name)
	stats := map[string]float64{}
	for line := range strings.Lines(out) {
		n, value, ok := strings.Cut(strings.TrimSpace(line), " ")
		v, err := strconv.ParseFloat(value, 64)
		if !ok || err != nil {
			t.Fatalf("scxkit stats %s: unexpected line %q:\n%s", name, line, out)
		}
		stats[n] = v
	}
	return stats
}

// runScxkit runs scxkit with args and returns its stdout.
func runScxkit(t *testing.T, scxkit string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, scxkit, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("scxkit %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}
