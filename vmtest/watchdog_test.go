package vmtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fakeQemu puts a qemu-system-x86_64 on PATH that answers --version like
// qemu 10 and otherwise runs script (a shell fragment) with qemu's
// arguments: fd 3 is the console, fd 4 the payload port, and $initrd the
// initramfs, from which the script can read the init script's nonce.
func fakeQemu(t *testing.T, script string) {
	t.Helper()
	if _, err := findBusybox(); err != nil {
		t.Skipf("no static busybox: %v", err)
	}
	dir := t.TempDir()
	body := `#!/bin/sh
if [ "$1" = --version ]; then echo "QEMU emulator version 10.0.2"; exit 0; fi
initrd=
while [ $# -gt 0 ]; do
	if [ "$1" = -initrd ]; then initrd=$2; fi
	shift
done
nonce=$(grep -ao 'vmtest-[0-9a-f]\{24\}' "$initrd" | head -n 1)
` + script + "\n"
	if err := os.WriteFile(filepath.Join(dir, "qemu-system-x86_64"), []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv(EnvAccel, "")
}

// fakeKernel returns a VM whose kernel is a local file (the fake qemu
// never reads it).
func fakeKernel(t *testing.T) *VM {
	img := filepath.Join(t.TempDir(), "vmlinuz")
	if err := os.WriteFile(img, []byte("not a kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	return &VM{Kernel: Kernel{Name: "fake", Image: img}, Accel: AccelTCG}
}

// syncBuffer is a strings.Builder safe for the run loop's writes and the
// test's reads, with a channel closed when the text first contains want.
type syncBuffer struct {
	mu   sync.Mutex
	b    strings.Builder
	want string
	seen chan struct{}
}

func newSyncBuffer(want string) *syncBuffer {
	return &syncBuffer{want: want, seen: make(chan struct{})}
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Write(p)
	if s.want != "" && strings.Contains(s.b.String(), s.want) {
		s.want = ""
		close(s.seen)
	}
	return len(p), nil
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fakeBootTimeout is the boot bound of the fake-qemu tests. The fake is a
// shell script that prints its lines (or starts the payload) at once; 5 s
// leaves a busy host far more than a fork and two echos need, while the
// tests stay short.
const fakeBootTimeout = 5 * time.Second

// TestBootWatchdogFake: a "guest" that prints a few console lines and then
// never starts its payload is killed at the boot bound, booted once more,
// and then reported as FailBootTimeout with its console tail. No timing
// decides the test: the guest never starts, whatever the host's load.
func TestBootWatchdogFake(t *testing.T) {
	fakeQemu(t, `echo "$$" >>"$PIDS"; echo "[0.1] Linux version fake" >&3; echo "[0.2] stuck in boot" >&3; exec sleep 1000`)
	pids := filepath.Join(t.TempDir(), "pids")
	t.Setenv("PIDS", pids)
	vm := fakeKernel(t)
	vm.BootTimeout = fakeBootTimeout
	log := newSyncBuffer("")
	vm.Log = log
	res, err := vm.Run(context.Background(), &Command{Argv: []string{"true"}})
	var re *RunError
	if !errors.As(err, &re) || re.Kind != FailBootTimeout {
		t.Fatalf("Run: %v, want a %v", err, FailBootTimeout)
	}
	if res == nil || res.Attempts != 2 {
		t.Fatalf("result %+v, want 2 attempts", res)
	}
	if re.Timeout != fakeBootTimeout || !strings.Contains(err.Error(), "did not start its payload within 5s, twice") {
		t.Errorf("error %q (bound %v) does not name the 5s bound", err, re.Timeout)
	}
	if !strings.Contains(re.ConsoleTail(), "stuck in boot") {
		t.Errorf("console tail lacks the guest's last line:\n%s", re.ConsoleTail())
	}
	if got := log.String(); !strings.Contains(got, "booting once more") || !strings.Contains(got, "stuck in boot") {
		t.Errorf("log lacks the retry note with the console tail:\n%s", got)
	}
	b, err := os.ReadFile(pids)
	if n := len(strings.Fields(string(b))); err != nil || n != 2 {
		t.Errorf("qemu started %d times (%v), want 2", n, err)
	}
}

// TestBootWatchdogRetrySucceeds: a first boot that hangs and a second that
// runs the payload give a passing run with two attempts.
func TestBootWatchdogRetrySucceeds(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "booted-once")
	fakeQemu(t, `if [ ! -e `+marker+` ]; then touch `+marker+`; exec sleep 1000; fi
echo "$nonce start" >&4; echo "payload ran" >&4; echo "$nonce exit 0" >&4`)
	vm := fakeKernel(t)
	vm.BootTimeout = fakeBootTimeout
	var out strings.Builder
	res, err := vm.Run(context.Background(), &Command{Argv: []string{"true"}, Stdout: &out})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.Attempts != 2 || out.String() != "payload ran\n" {
		t.Errorf("attempts %d, output %q; want 2 and the payload's line", res.Attempts, out.String())
	}
}

// TestQuietNoteFake: a payload that started and then prints nothing is
// reported once with the console tail, and the run goes on (here until the
// test cancels it after the note).
func TestQuietNoteFake(t *testing.T) {
	fakeQemu(t, `echo "[1.0] Run /init as init process" >&3; echo "$nonce start" >&4; echo "working" >&4; exec sleep 1000`)
	vm := fakeKernel(t)
	vm.QuietAfter = 500 * time.Millisecond
	log := newSyncBuffer("has printed nothing for")
	vm.Log = log
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-log.seen:
		case <-time.After(5 * time.Minute): // a safety net only: the note is due after 0.5 s
		}
		cancel()
	}()
	_, err := vm.Run(ctx, &Command{Argv: []string{"true"}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v, want the test's cancellation", err)
	}
	got := log.String()
	if !strings.Contains(got, "has printed nothing for") || !strings.Contains(got, "Run /init as init process") {
		t.Errorf("no quiet note with the console tail:\n%s", got)
	}
	if n := strings.Count(got, "has printed nothing for"); n != 1 {
		t.Errorf("%d quiet notes for one quiet stretch, want 1:\n%s", n, got)
	}
}

// TestBootWatchdogHungInit boots a real kernel whose init hangs before the
// payload (rdinit is busybox's sleep): the watchdog kills it, boots it once
// more, and fails the run with the console tail.
func TestBootWatchdogHungInit(t *testing.T) {
	requireVM(t)
	// 20 s is well past the kernel's first console lines (about 1 s into
	// an idle TCG boot, under 10 s with the host's cores busy), so the
	// tail has something to show; the payload can never start.
	const bound = 20 * time.Second
	log := newSyncBuffer("")
	vm := &VM{
		BootTimeout: bound, Log: log,
		Cmdline: []string{"rdinit=/bin/busybox", "--", "sleep", "100000"},
	}
	res, re := runVM(t, vm, &Command{Argv: []string{"true"}})
	if re == nil || re.Kind != FailBootTimeout || re.Timeout != bound {
		t.Fatalf("error %v, want a %v after %v", re, FailBootTimeout, bound)
	}
	if res.Attempts != 2 || !strings.Contains(log.String(), "booting once more") {
		t.Errorf("attempts %d, log:\n%s\nwant a second boot", res.Attempts, log.String())
	}
	if len(re.Console) == 0 {
		t.Errorf("no console lines in the failure")
	}
	t.Logf("%v\n%s", re, re.ConsoleTail())
}

func TestWatchdogPeriod(t *testing.T) {
	for _, tc := range []struct {
		boot, quiet, want time.Duration
	}{
		{3 * time.Minute, 3 * time.Minute, time.Second},
		{time.Second, 3 * time.Minute, 100 * time.Millisecond},
		{3 * time.Minute, 5 * time.Second, 500 * time.Millisecond},
		{3 * time.Minute, -1, time.Second},
	} {
		if got := watchdogPeriod(runSpec{bootTimeout: tc.boot, quiet: tc.quiet}); got != tc.want {
			t.Errorf("watchdogPeriod(boot %v, quiet %v) = %v, want %v", tc.boot, tc.quiet, got, tc.want)
		}
	}
}

// TestQemuDiesWithRunner: qemu started by Run is killed when the process
// that runs it dies (go test's -timeout kills a hung test binary so), not
// left running on the host. The runner is this test binary, re-executed.
func TestQemuDiesWithRunner(t *testing.T) {
	if os.Getenv("VMTEST_RUNNER_CHILD") == "1" {
		vm := fakeKernel(t)
		vm.Run(context.Background(), &Command{Argv: []string{"true"}})
		return
	}
	pids := filepath.Join(t.TempDir(), "pids")
	fakeQemu(t, `echo "$$" >>"$PIDS"; exec sleep 1000`)
	cmd := exec.Command(os.Args[0], "-test.run=^TestQemuDiesWithRunner$")
	cmd.Env = append(os.Environ(), "VMTEST_RUNNER_CHILD=1", "PIDS="+pids)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	for deadline := time.Now().Add(time.Minute); pid == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		b, _ := os.ReadFile(pids)
		fmt.Sscan(string(b), &pid)
	}
	if pid == 0 {
		cmd.Process.Kill()
		t.Fatal("the fake qemu never started")
	}
	cmd.Process.Kill()
	cmd.Wait()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("qemu (pid %d) still runs a minute after its runner was killed", pid)
		}
	}
}
