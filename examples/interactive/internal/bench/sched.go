package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/scxkit/scxkit/scx"
)

// schedOps is the name the interactive scheduler registers
// (/sys/kernel/sched_ext/root/ops).
const schedOps = "interactive"

// Time limits for the scheduler binary: loading a BPF scheduler takes a
// few seconds under qemu TCG.
const (
	attachTimeout = 30 * time.Second
	detachTimeout = 30 * time.Second
	pollInterval  = 20 * time.Millisecond
)

// interactiveConfig returns the class configuration of the interactive
// runs: the requesters' cgroup preempts lower classes at wakeup with a
// short slice; the throughput workers never preempt and run on past
// their slice while no higher class waits; the hogs are background work
// that any other class's wakeup preempts.
func interactiveConfig(lat, batch, bg string) string {
	return fmt.Sprintf(`# written by the interactive benchmark
lat     cgroup=%s wakeup=lower slice=5ms
default slice=20ms
batch   cgroup=%s wakeup=never slice=20ms tick=runon
bg      cgroup=%s background slice=20ms
`, lat, batch, bg)
}

// writeConfig writes the interactive configuration for cg to a temporary
// file and returns its name.
func writeConfig(cg *cgroups) (string, string, error) {
	text := interactiveConfig(cg.lat.Path, cg.batch.Path, cg.bg.Path)
	f, err := os.CreateTemp("", "interactive-bench-*.conf")
	if err != nil {
		return "", "", fmt.Errorf("write scheduler config: %w", err)
	}
	_, err = f.WriteString(text)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", "", fmt.Errorf("write scheduler config: %w", err)
	}
	return f.Name(), text, nil
}

// checkDisabled makes sure no sched_ext scheduler is attached, so that
// the kernel's default scheduler runs every task. A kernel without
// sched_ext passes.
func checkDisabled() error {
	st, err := scx.ReadStatus(nil)
	if errors.Is(err, scx.ErrNotSupported) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read sched_ext state: %w", err)
	}
	if st.State != scx.StateDisabled {
		return fmt.Errorf("sched_ext is %s (ops %q): the default-scheduler phases need it disabled; stop that scheduler first", st.State, st.Ops)
	}
	return nil
}

// scheduler is a running interactive binary.
type scheduler struct {
	cmd    *exec.Cmd
	stderr *tailBuffer
	exited chan struct{} // closed when it exited; err is then set
	err    error
	seq    uint64 // enable_seq once attached: a change means a re-attach
}

// startScheduler starts the interactive binary at path with config and
// waits until it is attached. It returns how long attaching took.
func startScheduler(ctx context.Context, path, config string) (*scheduler, time.Duration, error) {
	// Its stats lines go to its output, kept for the report; the stats
	// socket is not needed.
	cmd := exec.Command(path, "-config", config, "-stats", "1s", "-stats-socket", "off")
	// Should the bench be killed, the scheduler detaches, as on ^C.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	s := &scheduler{cmd: cmd, stderr: newTailBuffer(8192), exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = s.stderr, s.stderr
	before, err := scx.ReadStatus(nil)
	if err != nil {
		return nil, 0, fmt.Errorf("read sched_ext state: %w", err)
	}
	begin := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, 0, fmt.Errorf("start %s: %w", path, err)
	}
	go func() {
		s.err = cmd.Wait()
		close(s.exited)
	}()
	// enable_seq counts attachments; the kernel bumps it after state and
	// ops already read enabled and interactive, so wait for it too.
	st, err := s.waitStatus(ctx, s.exited, attachTimeout, "attach", func(st scx.Status) bool {
		return st.State == scx.StateEnabled && st.Ops == schedOps && st.EnableSeq > before.EnableSeq
	})
	if err != nil {
		s.kill()
		return nil, 0, err
	}
	s.seq = st.EnableSeq
	return s, time.Since(begin), nil
}

// waitStatus polls sched_ext's state until ok accepts it. exited closing
// meanwhile (the scheduler exiting; nil: not watched), or timeout passing,
// is an error with the scheduler's stderr.
func (s *scheduler) waitStatus(ctx context.Context, exited <-chan struct{}, timeout time.Duration, what string, ok func(scx.Status) bool) (scx.Status, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		st, err := scx.ReadStatus(nil)
		if err != nil {
			return st, fmt.Errorf("%s: read sched_ext state: %w", what, err)
		}
		if ok(st) {
			return st, nil
		}
		select {
		case <-exited:
			return st, fmt.Errorf("%s: %s exited (%v) with sched_ext %s%s", what, schedOps, s.err, st, s.stderr.note())
		case <-deadline.C:
			return st, fmt.Errorf("%s: sched_ext still %s after %v%s", what, st, timeout, s.stderr.note())
		case <-ctx.Done():
			return st, ctx.Err()
		case <-tick.C:
		}
	}
}

// check makes sure the scheduler still runs and is still the one
// attached: a scheduler that exits or is ejected during a phase would
// leave the phase measuring the default scheduler.
func (s *scheduler) check() error {
	select {
	case <-s.exited:
		return fmt.Errorf("%s exited early (%v)%s", schedOps, s.err, s.stderr.note())
	default:
	}
	st, err := scx.ReadStatus(nil)
	if err != nil {
		return fmt.Errorf("read sched_ext state: %w", err)
	}
	if st.State != scx.StateEnabled || st.Ops != schedOps || st.EnableSeq != s.seq {
		return fmt.Errorf("sched_ext is %s, enable_seq %d: %s (attached at enable_seq %d) is no longer attached%s",
			st, st.EnableSeq, schedOps, s.seq, s.stderr.note())
	}
	return nil
}

// stop sends SIGTERM, waits for a clean exit and for sched_ext to be
// disabled, and returns how long that took.
func (s *scheduler) stop(ctx context.Context) (time.Duration, error) {
	begin := time.Now()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return 0, fmt.Errorf("stop %s: %w", schedOps, err)
	}
	select {
	case <-s.exited:
	case <-time.After(detachTimeout):
		s.cmd.Process.Kill()
		<-s.exited
		return 0, fmt.Errorf("%s did not exit within %v of SIGTERM%s", schedOps, detachTimeout, s.stderr.note())
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	if s.err != nil {
		return 0, fmt.Errorf("%s exited with %v after SIGTERM, want status 0%s", schedOps, s.err, s.stderr.note())
	}
	if _, err := s.waitStatus(ctx, nil, detachTimeout, "detach", func(st scx.Status) bool {
		return st.State == scx.StateDisabled
	}); err != nil {
		return 0, err
	}
	return time.Since(begin), nil
}

// kill stops the scheduler after an error: SIGTERM for a clean detach,
// SIGKILL if it does not exit within detachTimeout. It does nothing once
// the scheduler has exited.
func (s *scheduler) kill() {
	select {
	case <-s.exited:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(detachTimeout):
		s.cmd.Process.Kill()
		<-s.exited
	}
}
