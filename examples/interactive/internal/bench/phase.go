package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/scxkit/scxkit/latency"
)

// Time limits for workers. Under qemu TCG a Go binary takes a few hundred
// milliseconds to start, more while other VMs load the host.
const (
	// readyTimeout bounds the time from starting a phase's workers to
	// the last one being ready.
	readyTimeout = 30 * time.Second
	// finishGrace is how long after the end of its window a worker may
	// take to report and exit.
	finishGrace = 30 * time.Second
)

// worker is one child process of a phase: the bench binary re-executed
// with childArg, born in its cgroup.
type worker struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser // closing it starts the worker's window
	stderr *tailBuffer
	ready  chan struct{} // closed when the worker said it is ready
	done   chan struct{} // closed when it exited and out and err are set
	out    []byte        // stdout after the ready line: the report
	err    error
}

// phase is the workers of one phase, started together.
type phase struct {
	b       *bench
	workers []*worker
}

// start starts a worker named name in cgroup cg (CLONE_INTO_CGROUP: it
// never runs outside its class) with parameters p.
func (ph *phase) start(name string, cg cgroup, p childParams) error {
	dir, err := os.Open(cg.Dir)
	if err != nil {
		return fmt.Errorf("start %s: open cgroup: %w", name, err)
	}
	defer dir.Close()
	cmd := exec.Command(ph.b.self, p.args()...)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		UseCgroupFD: true,
		CgroupFD:    int(dir.Fd()),
		// A worker dies with the bench, should the bench be killed.
		Pdeathsig: syscall.SIGKILL,
	}
	w := &worker{
		name:   name,
		cmd:    cmd,
		stderr: newTailBuffer(4096),
		ready:  make(chan struct{}),
		done:   make(chan struct{}),
	}
	cmd.Stderr = w.stderr
	if w.stdin, err = cmd.StdinPipe(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s in %s: %w", name, cg.Path, err)
	}
	ph.workers = append(ph.workers, w)
	go w.collect(stdout)
	return nil
}

// collect reads the worker's ready line and report, and waits for it.
func (w *worker) collect(stdout io.Reader) {
	defer close(w.done)
	r := bufio.NewReader(stdout)
	line, err := r.ReadString('\n')
	var protoErr error
	if strings.TrimSpace(line) == readyLine {
		close(w.ready)
	} else {
		protoErr = fmt.Errorf("first line %q, want %q (%v)", line, readyLine, err)
	}
	out, readErr := io.ReadAll(r)
	waitErr := w.cmd.Wait()
	w.out = out
	w.err = errors.Join(waitErr, protoErr, readErr)
}

// failure describes why w failed, with the end of its stderr.
func (w *worker) failure(what string, err error) error {
	if err != nil {
		what = fmt.Sprintf("%s: %v", what, err)
	}
	return fmt.Errorf("worker %s (pid %d) %s%s", w.name, w.cmd.Process.Pid, what, w.stderr.note())
}

// run waits until every worker is ready, calls onStart, starts every
// worker's window at once, and waits for each to finish, at most
// duration + finishGrace. A worker that fails or does not finish in time
// is an error that names it.
func (ph *phase) run(ctx context.Context, duration time.Duration, onStart func() error) error {
	timer := time.NewTimer(readyTimeout)
	defer timer.Stop()
	for _, w := range ph.workers {
		select {
		case <-w.ready:
		case <-w.done:
			return w.failure("exited before it was ready", w.err)
		case <-timer.C:
			return w.failure(fmt.Sprintf("was not ready within %v", readyTimeout), nil)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := onStart(); err != nil {
		return err
	}
	for _, w := range ph.workers {
		w.stdin.Close()
	}
	limit := duration + finishGrace
	timer.Reset(limit)
	for _, w := range ph.workers {
		select {
		case <-w.done:
			if w.err != nil {
				return w.failure("failed", w.err)
			}
		case <-timer.C:
			return w.failure(fmt.Sprintf("did not finish within %v of the start", limit), nil)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// kill kills the workers that are still running and waits for them.
func (ph *phase) kill() {
	for _, w := range ph.workers {
		select {
		case <-w.done:
		default:
			w.cmd.Process.Kill()
		}
	}
	for _, w := range ph.workers {
		<-w.done
	}
}

// report decodes w's JSON report into v.
func (w *worker) report(v any) error {
	if err := json.Unmarshal(w.out, v); err != nil {
		return w.failure("sent a bad report", fmt.Errorf("%w: %q", err, w.out))
	}
	return nil
}

// mixed runs the mixed phase for d: the requesters in the lat cgroup
// against CPU hogs in the bg cgroup.
func (b *bench) mixed(ctx context.Context, d time.Duration) (*Mixed, error) {
	o := b.o
	ph := &phase{b: b}
	defer ph.kill()
	err := ph.start("requesters", b.cg.lat, childParams{
		role: roleRequesters, threads: o.requesters,
		duration: d, period: o.period, work: o.work,
		threadCgroup: b.cg.req.Dir,
	})
	for i := 0; i < o.hogs && err == nil; i++ {
		err = ph.start(fmt.Sprintf("hog %d", i), b.cg.bg, childParams{role: roleSpin, threads: 1, duration: d})
	}
	if err != nil {
		return nil, err
	}
	if err := ph.run(ctx, d, b.resetKernel); err != nil {
		return nil, err
	}
	var req requesterReport
	if err := ph.workers[0].report(&req); err != nil {
		return nil, err
	}
	m := &Mixed{
		Requesters: req.Threads,
		Window:     req.Window,
		Requests:   req.Requests,
		Expected:   req.Expected,
		P50:        req.P50,
		P90:        req.P90,
		P99:        req.P99,
		Max:        req.Max,
		Hogs:       o.hogs,
	}
	for _, w := range ph.workers[1:] {
		var s spinReport
		if err := w.report(&s); err != nil {
			return nil, err
		}
		m.HogUnits += s.Units
	}
	m.HogUnitsPerSec = float64(m.HogUnits) / d.Seconds()
	if m.Kernel, err = b.kernelLatency(); err != nil {
		return nil, err
	}
	return m, nil
}

// throughput runs the throughput phase: CPU-bound workers in the batch
// cgroup.
func (b *bench) throughput(ctx context.Context) (*Throughput, error) {
	o := b.o
	ph := &phase{b: b}
	defer ph.kill()
	for i := range o.workers {
		err := ph.start(fmt.Sprintf("worker %d", i), b.cg.batch, childParams{role: roleSpin, threads: 1, duration: o.duration})
		if err != nil {
			return nil, err
		}
	}
	if err := ph.run(ctx, o.duration, func() error { return nil }); err != nil {
		return nil, err
	}
	t := &Throughput{Workers: o.workers}
	for _, w := range ph.workers {
		var s spinReport
		if err := w.report(&s); err != nil {
			return nil, err
		}
		t.Units += s.Units
	}
	t.UnitsPerSec = float64(t.Units) / o.duration.Seconds()
	return t, nil
}

// kernelBounds are the kernel histogram's bucket bounds: three per
// octave from 1µs to about 2s, finer than latency.Log2Bounds so that
// interpolated percentiles are within about 26% of the truth.
func kernelBounds() []time.Duration {
	b := make([]time.Duration, 0, latency.MaxBounds)
	for i := range 63 {
		d := time.Duration(float64(time.Microsecond) * math.Exp2(float64(i)/3))
		if len(b) == 0 || d > b[len(b)-1] {
			b = append(b, d)
		}
	}
	return b
}

// startKernel starts the kernel's view of the requester threads' waits. A
// failure is kept and reported with the results, not fatal: the
// userspace figures do not need it.
func (b *bench) startKernel(ctx context.Context) {
	b.prof, b.profErr = latency.Start(ctx, &latency.Options{
		Cgroups: []string{b.cg.req.Path},
		Bounds:  kernelBounds(),
	})
	if b.profErr != nil {
		b.profErr = fmt.Errorf("package latency cannot profile %s: %w", b.cg.req.Path, b.profErr)
	}
}

// resetKernel starts the kernel's count afresh, at the start of a window.
func (b *bench) resetKernel() error {
	if b.prof == nil {
		return nil
	}
	if err := b.prof.Reset(); err != nil {
		return fmt.Errorf("kernel latency: reset: %w", err)
	}
	return nil
}

// kernelLatency returns the requester threads' waits since resetKernel,
// nil without a profiler.
func (b *bench) kernelLatency() (*KernelLatency, error) {
	if b.prof == nil {
		return nil, nil
	}
	var err error
	if b.snap, err = b.prof.Read(b.snap); err != nil {
		return nil, fmt.Errorf("kernel latency: snapshot: %w", err)
	}
	for i := range b.snap {
		s := &b.snap[i]
		if s.ID != b.cg.req.ID {
			continue
		}
		return &KernelLatency{
			Wakeups:         s.Wakeups,
			Preemptions:     s.Preemptions,
			P50:             s.QueueDelay.Percentile(50),
			P99:             s.QueueDelay.Percentile(99),
			Total:           s.QueueDelay.Sum,
			OtherCgroupWait: s.OtherCgroupWait,
			SameCgroupWait:  s.SameCgroupWait,
			IdleWait:        s.IdleWait,
		}, nil
	}
	return nil, fmt.Errorf("kernel latency: no counters for %s (id %d)", b.cg.req.Path, b.cg.req.ID)
}

// tailBuffer keeps the last bytes written to it: the end of a process's
// stderr for error messages.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func newTailBuffer(max int) *tailBuffer { return &tailBuffer{max: max} }

// Write keeps the last max bytes of everything written.
func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

// String returns the bytes kept.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// note formats the bytes kept for the end of an error message: empty when
// there are none.
func (t *tailBuffer) note() string {
	s := strings.TrimSpace(t.String())
	if s == "" {
		return ""
	}
	return "; its stderr ends:\n" + s
}
