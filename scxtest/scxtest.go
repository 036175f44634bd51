package scxtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/scxkit/scxkit/scx"
	"github.com/scxkit/scxkit/topology"
)

// Running is a scheduler attached and running (scx.Scheduler.Run).
type Running struct {
	done chan error // Run's result
	stop context.CancelFunc
}

// Start loads spec, attaches the scheduler and runs it in the background;
// it stops and detaches at the end of the test.
func Start(t testing.TB, spec *scx.Spec) *Running {
	t.Helper()
	sched, err := spec.Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sched.Close() })
	if err := sched.Attach(); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	r := &Running{done: make(chan error, 1), stop: stop}
	go func() {
		_, err := sched.Run(ctx, nil)
		r.done <- err
	}()
	return r
}

// Done delivers Run's result should it end before Finish: the scheduler
// was ejected or exited.
func (r *Running) Done() <-chan error { return r.done }

// Finish stops the run and fails the test unless it ended cleanly.
func (r *Running) Finish(t testing.TB) {
	t.Helper()
	r.stop()
	if err := <-r.done; err != nil {
		t.Fatalf("Run: %v (the watchdog ejected the scheduler?)", err)
	}
}

// WaitState waits until sched_ext is in state with the scheduler ops
// attached (any scheduler, or none, if ops is empty), polling k.Status
// every 20ms for up to 60s. It fails the test if the scheduler returns
// first, which done delivers (a nil done never does), and after 60s; the
// failure shows output(), the scheduler's output so far (nil: none).
func WaitState(t testing.TB, k *scx.Kernel, state scx.State, ops string, done <-chan error, output func() string) {
	t.Helper()
	out := func() string {
		if output == nil {
			return ""
		}
		return "\noutput:\n" + output()
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("the scheduler returned before sched_ext reached %s (ops %q): %v%s", state, ops, err, out())
		default:
		}
		st, err := k.Status()
		if err != nil {
			t.Fatal(err)
		}
		if st.State == state && (ops == "" || st.Ops == ops) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("sched_ext did not reach %s (ops %q) within 60s%s", state, ops, out())
}

// Affinity is the affinity mask of the CPUs in m.
func Affinity(m topology.Cpumask) *unix.CPUSet {
	var s unix.CPUSet
	for cpu := range m.All() {
		s.Set(cpu)
	}
	return &s
}

// HogOptions say where Hogs start their processes.
type HogOptions struct {
	// Cgroup, if not empty, is the cgroup v2 path (under /sys/fs/cgroup)
	// the hogs are born in (CLONE_INTO_CGROUP), so that a scheduler
	// classifies them by it from their first enqueue.
	Cgroup string
	// BornOn, if not empty, are the CPUs the hogs are born on: the
	// calling thread moves there to start them, as children start where
	// their parent runs, so that a scheduler files them under those CPUs'
	// domain.
	BornOn topology.Cpumask
	// CPUs, if not empty, bind the hogs; else they may run anywhere.
	CPUs topology.Cpumask
}

// Hogs starts n endless shell busy loops as opts says, killed at the end
// of the test. They are processes, which the Go runtime does not park as
// it may a goroutine.
func Hogs(t testing.TB, n int, opts HogOptions) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	// The test's own CPUs: where unbound hogs may run.
	var was unix.CPUSet
	if err := unix.SchedGetaffinity(0, &was); err != nil {
		t.Fatal(err)
	}
	if !opts.BornOn.Empty() {
		// sched_setaffinity returns once this thread runs on an allowed
		// CPU, where its children are born.
		if err := unix.SchedSetaffinity(0, Affinity(opts.BornOn)); err != nil {
			t.Fatal(err)
		}
		defer unix.SchedSetaffinity(0, &was)
	}
	var cgroupFD int
	if opts.Cgroup != "" {
		dir, err := os.Open(filepath.Join("/sys/fs/cgroup", opts.Cgroup))
		if err != nil {
			t.Fatal(err)
		}
		defer dir.Close()
		cgroupFD = int(dir.Fd())
	}
	for range n {
		cmd := exec.Command("/bin/sh", "-c", "while :; do :; done")
		if opts.Cgroup != "" {
			cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: cgroupFD}
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		mask := &was
		if !opts.CPUs.Empty() {
			mask = Affinity(opts.CPUs)
		}
		if err := unix.SchedSetaffinity(cmd.Process.Pid, mask); err != nil {
			t.Fatal(err)
		}
	}
}

// WaitAttached waits until the kernel reports the scheduler ops (the name
// in sched_ext_ops, as in /sys/kernel/sched_ext/root/ops) enabled, as
// WaitState does; it probes the kernel itself. done delivers the
// scheduler's result should it return first (nil: never); output, if not
// nil, gives its output so far for the failure message.
func WaitAttached(t testing.TB, ops string, done <-chan error, output func() string) {
	t.Helper()
	k, err := scx.Probe(nil)
	if err != nil {
		t.Fatal(err)
	}
	WaitState(t, k, scx.StateEnabled, ops, done, output)
}

// WaitFor polls cond every 20ms until it returns true, and fails the test
// if it has not within timeout; what names the condition in the failure,
// and output, if not nil, adds the scheduler's output so far. Choose the
// timeout for a slow, loaded machine (qemu TCG on 2 busy host cores runs a
// guest 10-50 times slower than native): it bounds a hang, it does not
// measure anything.
func WaitFor(t testing.TB, what string, timeout time.Duration, cond func() bool, output func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			msg := fmt.Sprintf("%s: not within %v", what, timeout)
			if output != nil {
				msg += "\noutput:\n" + output()
			}
			t.Fatal(msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
