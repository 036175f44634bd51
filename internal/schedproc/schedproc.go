// Package schedproc runs a sched_ext scheduler as a child process, as the
// demo and the benchmark harness do: start it, wait until the kernel runs
// it, stop it with SIGINT and wait until every task is back on the
// kernel's default scheduler. It has no API for users.
package schedproc

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/scxkit/scxkit/scx"
)

// Proc is a running scheduler process.
type Proc struct {
	name string
	cmd  *exec.Cmd
	out  *LineWriter
	done chan struct{} // closed once the process has been waited for
	err  error         // the result of Wait, valid once done is closed

	stopOnce sync.Once
	stopErr  error
}

// Start starts the scheduler at path with args, its output going to out
// line by line, each line prefixed with name and ": ". Should this
// process die without stopping it, the scheduler gets SIGTERM and
// detaches.
func Start(name, path string, args []string, out io.Writer) (*Proc, error) {
	pw := NewPrefixWriter(out, name+": ")
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = pw, pw
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Signals from the terminal reach us, and we stop the scheduler.
		Setpgid: true,
		// Should we die without stopping it, it detaches.
		Pdeathsig: syscall.SIGTERM,
	}
	cmd.WaitDelay = 5 * time.Second
	p := &Proc{name: name, cmd: cmd, out: pw, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		// The kernel sends Pdeathsig when the thread that forked the child
		// exits, not the process. Keep this goroutine on its thread until
		// the child is reaped; the thread exits with it (no unlock).
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		pw.Flush()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	return p, nil
}

// Done is closed when the process has exited; Err then says how.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err describes how the process exited ("exit status 0" included); valid
// once Done is closed.
func (p *Proc) Err() string { return ExitText(p.err) }

// Failed is the process's Wait error, nil for exit status 0; valid once
// Done is closed.
func (p *Proc) Failed() error { return p.err }

// WaitAttached waits until sched_ext is enabled with ops (any ops when
// ops is ""), failing if the process exits first or timeout passes.
func (p *Proc) WaitAttached(ctx context.Context, ops string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		st, err := scx.ReadStatus(nil)
		if err != nil {
			return fmt.Errorf("read sched_ext status: %w", err)
		}
		if st.State == scx.StateEnabled && (ops == "" || st.Ops == ops) {
			return nil
		}
		if time.Now().After(deadline) {
			want := ops
			if want == "" {
				want = p.name
			}
			return fmt.Errorf("sched_ext did not become enabled with %s within %v: it is %s (ops %q)", want, timeout, st.State, st.Ops)
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before attaching (%s)", p.name, ExitText(p.err))
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-tick.C:
		}
	}
}

// Stop sends the scheduler SIGINT, waits up to grace for it to exit and
// kills it after that. It returns an error if it failed or had to be
// killed, or had exited with an error before; later calls return the
// first result.
func (p *Proc) Stop(grace time.Duration) error {
	p.stopOnce.Do(func() { p.stopErr = p.doStop(grace) })
	return p.stopErr
}

func (p *Proc) doStop(grace time.Duration) error {
	select {
	case <-p.done:
		if p.err != nil {
			return fmt.Errorf("%s exited early (%s)", p.name, ExitText(p.err))
		}
		return nil
	default:
	}
	p.cmd.Process.Signal(syscall.SIGINT)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		if p.err != nil {
			return fmt.Errorf("%s failed (%s)", p.name, ExitText(p.err))
		}
		return nil
	case <-t.C:
	}
	p.cmd.Process.Kill()
	<-p.done
	return fmt.Errorf("%s did not exit within %v of SIGINT: killed it", p.name, grace)
}

// WaitDisabled waits up to timeout for sched_ext to be disabled after a
// scheduler exited: the kernel finishes disabling asynchronously.
func WaitDisabled(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		st, err := scx.ReadStatus(nil)
		if err != nil {
			return fmt.Errorf("read sched_ext status: %w", err)
		}
		if st.State == scx.StateDisabled {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sched_ext is still %s (ops %q) %v after the scheduler exited, want disabled", st.State, st.Ops, timeout)
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-tick.C:
		}
	}
}

// ExitText describes the result of exec.Cmd.Wait.
func ExitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// SyncWriter serializes writes to W, so that lines from several
// goroutines do not interleave.
type SyncWriter struct {
	mu sync.Mutex
	W  io.Writer
}

func (s *SyncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.W.Write(p)
}

// LineWriter calls Line with each complete line written to it, without
// its newline, one call at a time; Flush passes on a last line that has
// none. A line longer than MaxLine is passed on in pieces.
type LineWriter struct {
	mu   sync.Mutex
	Line func(line []byte)
	buf  []byte
}

// MaxLine bounds the partial line kept.
const MaxLine = 64 << 10

func (w *LineWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	start := 0
	for {
		i := bytes.IndexByte(w.buf[start:], '\n')
		if i < 0 {
			break
		}
		w.Line(w.buf[start : start+i])
		start += i + 1
	}
	w.buf = append(w.buf[:0], w.buf[start:]...)
	if len(w.buf) > MaxLine {
		w.Line(w.buf)
		w.buf = w.buf[:0]
	}
	return len(b), nil
}

// Flush passes on a last line that has no newline.
func (w *LineWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.Line(w.buf)
		w.buf = w.buf[:0]
	}
}

// NewPrefixWriter returns a LineWriter that writes each line to w with
// prefix, in one Write per line, "\r" before the newline dropped.
func NewPrefixWriter(w io.Writer, prefix string) *LineWriter {
	return &LineWriter{Line: func(l []byte) {
		out := make([]byte, 0, len(prefix)+len(l)+1)
		out = append(out, prefix...)
		out = append(out, bytes.TrimRight(l, "\r")...)
		out = append(out, '\n')
		w.Write(out)
	}}
}
