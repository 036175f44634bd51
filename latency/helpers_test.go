package latency

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// helperEnv selects what a re-executed test binary does instead of
// running tests: "sleeper" or "hog".
const helperEnv = "SCXKIT_LATENCY_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "sleeper":
		sleeper()
	case "hog":
		hog()
	case "start":
		startOnce()
	default:
		fmt.Fprintf(os.Stderr, "unknown %s=%q\n", helperEnv, os.Getenv(helperEnv))
		os.Exit(2)
	}
	os.Exit(0)
}

// sleeper says "ready", waits for a line on stdin, then sleeps
// SLEEPER_N times for SLEEPER_NS ns with nanosleep, each sleep ending in
// one wakeup, says "done" and waits for stdin to close.
func sleeper() {
	n, _ := strconv.Atoi(os.Getenv("SLEEPER_N"))
	ns, _ := strconv.Atoi(os.Getenv("SLEEPER_NS"))
	in := bufio.NewReader(os.Stdin)
	fmt.Println("ready")
	if _, err := in.ReadString('\n'); err != nil {
		os.Exit(1)
	}
	runtime.LockOSThread()
	ts := unix.NsecToTimespec(int64(ns))
	for range n {
		for unix.Nanosleep(&ts, nil) == unix.EINTR {
		}
	}
	fmt.Println("done")
	in.ReadString('\n')
}

// hog says "ready", waits for a line on stdin, then spins on
// GOMAXPROCS threads until killed.
func hog() {
	in := bufio.NewReader(os.Stdin)
	fmt.Println("ready")
	if _, err := in.ReadString('\n'); err != nil {
		os.Exit(1)
	}
	for range runtime.GOMAXPROCS(0) - 1 {
		go spin()
	}
	spin()
}

func spin() {
	x := 1
	for {
		x = x*1103515245 + 12345
	}
}

// requireRoot skips the test when it cannot load BPF tracing programs
// (not root, or no kernel BTF), except under CI=true, where that fails.
func requireRoot(t *testing.T) {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "not root"
	} else if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		why = "no kernel BTF: " + err.Error()
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s: CI runs these tests as root on a kernel with BTF", why)
	}
	t.Skip(why)
}

// helper is a re-executed test binary in a helper role.
type helper struct {
	cmd *exec.Cmd
	in  *os.File // its stdin
	out *bufio.Reader
}

// startHelpers starts one helper per role, all allowed on cpu only:
// they are forked from a thread pinned to cpu and inherit its affinity.
func startHelpers(t *testing.T, cpu int, roles ...[]string) []*helper {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var old, set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		t.Fatal(err)
	}
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		t.Fatal(err)
	}
	defer unix.SchedSetaffinity(0, &old)
	var hs []*helper
	for _, env := range roles {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), env...)
		cmd.Stderr = os.Stderr
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		h := &helper{cmd: cmd, in: in.(*os.File), out: bufio.NewReader(out)}
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
		})
		h.expect(t, "ready")
		hs = append(hs, h)
	}
	return hs
}

// expect reads the helper's next line and fails unless it is want.
func (h *helper) expect(t *testing.T, want string) {
	t.Helper()
	line, err := h.out.ReadString('\n')
	if err != nil || strings.TrimSpace(line) != want {
		t.Fatalf("helper %d: got %q, %v; want %q", h.cmd.Process.Pid, line, err, want)
	}
}

func (h *helper) send(t *testing.T) {
	t.Helper()
	if _, err := h.in.WriteString("go\n"); err != nil {
		t.Fatal(err)
	}
}

// makeCgroup creates directory name under the cgroup2 mount and removes it
// at the end of the test (after the helpers in it are gone).
func makeCgroup(t *testing.T, mount, name string) string {
	t.Helper()
	dir := filepath.Join(mount, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Killed helpers may take a moment to leave the cgroup.
		for range 100 {
			if err := os.Remove(dir); err == nil || os.IsNotExist(err) {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Errorf("cannot remove cgroup %s", dir)
	})
	return dir
}

// moveTo moves every thread of process pid into the cgroup at dir.
func moveTo(t *testing.T, dir string, pid int) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
		t.Fatalf("move %d to %s: %v", pid, dir, err)
	}
}

// usage returns usage_usec from the cgroup's cpu.stat, which cgroup v2
// keeps (from the scheduler's own runtime accounting) even when the cpu
// controller is not enabled, or is bound to v1.
func usage(t *testing.T, dir string) time.Duration {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "cpu.stat"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "usage_usec "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return time.Duration(n) * time.Microsecond
		}
	}
	t.Fatalf("%s/cpu.stat has no usage_usec:\n%s", dir, b)
	return 0
}

// voluntarySwitches sums voluntary_ctxt_switches over the threads of pid:
// each is a time a thread blocked, so each is followed by one wakeup.
func voluntarySwitches(t *testing.T, pid int) uint64 {
	t.Helper()
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	if err != nil || len(tasks) == 0 {
		t.Fatalf("threads of %d: %v", pid, err)
	}
	var n uint64
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
				k, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
				n += k
			}
		}
	}
	return n
}

// allowedCPUs returns Cpus_allowed_list of process pid.
func allowedCPUs(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// kill kills the helper and reaps it.
func (h *helper) kill() {
	h.cmd.Process.Signal(syscall.SIGKILL)
	h.cmd.Wait()
}

// stolen returns the time /proc/stat says CPU cpu spent in interrupts,
// softirqs and stolen by the hypervisor (in USER_HZ ticks, 10 ms). The
// task clock behind cpu.stat leaves out steal time (and, with
// CONFIG_IRQ_TIME_ACCOUNTING, interrupt time); the profiler's on-CPU time,
// from switch to switch, includes them.
func stolen(t *testing.T, cpu int) time.Duration {
	t.Helper()
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		t.Fatal(err)
	}
	prefix := fmt.Sprintf("cpu%d ", cpu)
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		f := strings.Fields(line)
		var ticks uint64
		for _, i := range []int{6, 7, 8} { // irq softirq steal
			if i < len(f) {
				v, _ := strconv.ParseUint(f[i], 10, 64)
				ticks += v
			}
		}
		return time.Duration(ticks) * 10 * time.Millisecond
	}
	t.Fatalf("/proc/stat has no %q line", prefix)
	return 0
}
