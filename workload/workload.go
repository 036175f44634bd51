//go:build linux

package workload

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Thread kinds, the values of ThreadReport.Kind.
const (
	KindSpin     = "spin"     // a CPU-bound spinner
	KindPingPong = "pingpong" // one side of a ping-pong pair
)

// Defaults for the zero fields of a Config (Spinners defaults to
// runtime.NumCPU()).
const (
	// DefaultSpinWork is the number of work units per spinner: about 200ms
	// of one CPU natively (a unit is about 90µs on a current x86 core, see
	// BenchmarkSpinUnit), 2-10s under qemu TCG.
	DefaultSpinWork = 2200
	// DefaultPingPongPairs is the number of ping-pong pairs.
	DefaultPingPongPairs = 1
	// DefaultRoundTrips is the number of round trips per pair.
	DefaultRoundTrips = 2000
	// DefaultDeadline bounds a whole run.
	DefaultDeadline = 60 * time.Second
)

// MaxThreads bounds the number of threads a Config may ask for, Spinners +
// 2*PingPongPairs, well below the Go runtime's limit of 10000 OS threads.
const MaxThreads = 1024

// ErrInvalidConfig is wrapped by the errors Run returns for an invalid
// Config.
var ErrInvalidConfig = errors.New("invalid config")

// Config describes a workload. Zero fields take defaults.
type Config struct {
	// Spinners is the number of CPU-bound OS threads (default:
	// runtime.NumCPU()).
	Spinners int
	// SpinWork is the number of units of work each spinner must finish
	// (default DefaultSpinWork, about 200ms natively).
	SpinWork int
	// PingPongPairs is the number of pairs of OS threads bouncing a byte
	// through two pipes, a wakeup-heavy load (default 1).
	PingPongPairs int
	// RoundTrips is the number of round trips each pair must finish
	// (default 2000).
	RoundTrips int
	// Deadline is the hard bound for the whole run (default 60s).
	Deadline time.Duration
}

// withDefaults validates c and returns it with its zero fields set to their
// defaults.
func (c Config) withDefaults() (Config, error) {
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"Spinners", int64(c.Spinners)},
		{"SpinWork", int64(c.SpinWork)},
		{"PingPongPairs", int64(c.PingPongPairs)},
		{"RoundTrips", int64(c.RoundTrips)},
		{"Deadline", int64(c.Deadline)},
	} {
		if f.v < 0 {
			if f.name == "Deadline" {
				return c, fmt.Errorf("workload: %w: Deadline is %v, want >= 0", ErrInvalidConfig, c.Deadline)
			}
			return c, fmt.Errorf("workload: %w: %s is %d, want >= 0", ErrInvalidConfig, f.name, f.v)
		}
	}
	if c.Spinners == 0 {
		c.Spinners = runtime.NumCPU()
	}
	if c.SpinWork == 0 {
		c.SpinWork = DefaultSpinWork
	}
	if c.PingPongPairs == 0 {
		c.PingPongPairs = DefaultPingPongPairs
	}
	if c.RoundTrips == 0 {
		c.RoundTrips = DefaultRoundTrips
	}
	if c.Deadline == 0 {
		c.Deadline = DefaultDeadline
	}
	// Check each term first so that the sum cannot overflow.
	if c.Spinners > MaxThreads || c.PingPongPairs > MaxThreads/2 || c.Spinners+2*c.PingPongPairs > MaxThreads {
		return c, fmt.Errorf("workload: %w: Spinners + 2*PingPongPairs is %d + 2*%d, want <= %d threads",
			ErrInvalidConfig, c.Spinners, c.PingPongPairs, MaxThreads)
	}
	return c, nil
}

// ThreadReport is the progress of one workload thread.
type ThreadReport struct {
	// Kind is KindSpin or KindPingPong.
	Kind string
	// ID numbers the threads of one kind from 0. Ping-pong pair p has
	// threads 2p (it sends first) and 2p+1 (it echoes).
	ID int
	// Done is how much the thread finished: work units for a spinner,
	// round trips for a ping-pong thread. Want is how much it had to.
	Done, Want int
	// Elapsed is the time from the start of the workload until the thread
	// finished its work or was stopped.
	Elapsed time.Duration
}

// Finished reports whether the thread did all its work.
func (t ThreadReport) Finished() bool { return t.Done >= t.Want }

// Report is the outcome of a Run.
type Report struct {
	// Elapsed is the time from the start of the workload until the last
	// thread finished or was stopped.
	Elapsed time.Duration
	// Threads has one entry per thread: the spinners by ID, then the
	// ping-pong threads by ID.
	Threads []ThreadReport
}

// IncompleteError is the error Run returns when it stopped before every
// thread finished its work: the deadline passed, the context was done, or
// (unexpectedly) a pipe read or write failed.
type IncompleteError struct {
	// Elapsed is how long the workload ran.
	Elapsed time.Duration
	// Cause is why it stopped: an error wrapping context.DeadlineExceeded
	// for Config.Deadline, context.Cause of the caller's context, or the
	// failure of a thread.
	Cause error
	// Unfinished lists the threads that did not finish, in Report order.
	Unfinished []ThreadReport
}

// Error lists the unfinished threads, e.g. "workload incomplete after 60s
// (deadline 60s exceeded): spin 3 did 120/1000, pingpong 0 did 5/2000".
func (e *IncompleteError) Error() string {
	var b []byte
	b = fmt.Appendf(b, "workload incomplete after %v", roundDuration(e.Elapsed))
	if e.Cause != nil {
		b = fmt.Appendf(b, " (%v)", e.Cause)
	}
	for i, t := range e.Unfinished {
		sep := ", "
		if i == 0 {
			sep = ": "
		}
		b = fmt.Appendf(b, "%s%s %d did %d/%d", sep, t.Kind, t.ID, t.Done, t.Want)
	}
	return string(b)
}

// Unwrap returns e.Cause, so that errors.Is(err, context.DeadlineExceeded)
// and errors.Is(err, context.Canceled) tell why a workload stopped.
func (e *IncompleteError) Unwrap() error { return e.Cause }

// deadlineError is the cause of a stop at Config.Deadline.
type deadlineError struct{ d time.Duration }

func (e deadlineError) Error() string { return fmt.Sprintf("deadline %v exceeded", e.d) }
func (e deadlineError) Unwrap() error { return context.DeadlineExceeded }

// Run runs the workload cfg describes and returns when every thread has
// finished its work.
//
// Every spinner and every ping-pong thread runs on its own locked OS thread.
// So that the kernel and not the Go runtime decides which of them runs, Run
// raises GOMAXPROCS for its duration to at least one more than the number of
// threads, and restores it when the last concurrent Run returns. Setting
// GOMAXPROCS turns off the runtime's automatic updates of it (from CPU
// affinity and cgroup limits) for the rest of the process.
//
// If ctx is done or cfg.Deadline passes first, Run stops every thread and
// returns an *IncompleteError listing those that did not finish. The Report
// is non-nil whenever the workload started, with or without an error; it is
// nil only for an invalid cfg (the error wraps ErrInvalidConfig) or when the
// pipes could not be created. When Run returns, all its threads have exited
// and all its pipes are closed.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return run(ctx, cfg)
}

// thread is the state of one workload thread.
type thread struct {
	kind string
	id   int
	want int
	done atomic.Int64 // progress, updated as the thread goes

	// Written by the thread before it exits, read after.
	elapsed time.Duration
	sink    uint64 // a spinner's result, kept so its work cannot be optimized away
}

// run runs cfg, whose fields are taken literally: zero Spinners or
// PingPongPairs means none, and Deadline must be positive.
func run(ctx context.Context, cfg Config) (*Report, error) {
	pairs := make([]pipePair, 0, cfg.PingPongPairs)
	defer func() {
		for _, p := range pairs {
			p.close()
		}
	}()
	for range cfg.PingPongPairs {
		p, err := newPipePair()
		if err != nil {
			return nil, err
		}
		pairs = append(pairs, p)
	}

	threads := make([]*thread, 0, cfg.Spinners+2*cfg.PingPongPairs)
	for i := range cfg.Spinners {
		threads = append(threads, &thread{kind: KindSpin, id: i, want: cfg.SpinWork})
	}
	for i := range 2 * cfg.PingPongPairs {
		threads = append(threads, &thread{kind: KindPingPong, id: i, want: cfg.RoundTrips})
	}

	defer raiseGOMAXPROCS(len(threads) + 1)()

	ctx, cancelTimeout := context.WithTimeoutCause(ctx, cfg.Deadline, deadlineError{cfg.Deadline})
	defer cancelTimeout()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	var (
		stop    atomic.Bool // tells the threads to stop early
		ready   sync.WaitGroup
		exited  sync.WaitGroup
		start   = make(chan struct{})
		started time.Time // written before start is closed
	)
	for _, t := range threads {
		ready.Add(1)
		exited.Add(1)
		go func() {
			defer exited.Done()
			// Never unlocked: the OS thread exits with the goroutine, so
			// no thread the workload ran on goes back to the runtime.
			runtime.LockOSThread()
			ready.Done()
			<-start
			switch t.kind {
			case KindSpin:
				t.spin(&stop)
			default:
				p := pairs[t.id/2]
				if err := t.pingPong(&stop, p, t.id%2 == 0); err != nil {
					cancel(fmt.Errorf("%s %d: %w", t.kind, t.id, err))
				}
			}
			t.elapsed = time.Since(started)
		}()
	}
	ready.Wait()
	started = time.Now()
	close(start)

	allExited := make(chan struct{})
	go func() {
		exited.Wait()
		close(allExited)
	}()
	select {
	case <-allExited:
	case <-ctx.Done():
		stop.Store(true)
		// Wake every ping-pong thread blocked in read; each checks stop
		// after every read. The pipes stay open until all threads have
		// exited, so no thread can touch a closed or reused descriptor.
		for _, p := range pairs {
			p.wake()
		}
		<-allExited
	}

	rep := &Report{Elapsed: time.Since(started), Threads: make([]ThreadReport, len(threads))}
	var unfinished []ThreadReport
	for i, t := range threads {
		tr := ThreadReport{Kind: t.kind, ID: t.id, Done: int(t.done.Load()), Want: t.want, Elapsed: t.elapsed}
		rep.Threads[i] = tr
		if !tr.Finished() {
			unfinished = append(unfinished, tr)
		}
	}
	if unfinished == nil {
		return rep, nil
	}
	cause := context.Cause(ctx)
	if cause == nil { // cannot happen: threads stop early only after ctx is done
		cause = errors.New("threads stopped early")
	}
	return rep, &IncompleteError{Elapsed: rep.Elapsed, Cause: cause, Unfinished: unfinished}
}

// gomaxprocs coordinates the GOMAXPROCS changes of concurrent runs.
var gomaxprocs struct {
	sync.Mutex
	active int // runs in progress
	saved  int // GOMAXPROCS before the first of them
}

// raiseGOMAXPROCS raises GOMAXPROCS to at least n and returns a function
// that restores it once no other run needs it.
func raiseGOMAXPROCS(n int) (restore func()) {
	g := &gomaxprocs
	g.Lock()
	defer g.Unlock()
	if g.active == 0 {
		g.saved = runtime.GOMAXPROCS(0)
	}
	g.active++
	if runtime.GOMAXPROCS(0) < n {
		runtime.GOMAXPROCS(n)
	}
	return func() {
		g.Lock()
		defer g.Unlock()
		g.active--
		if g.active == 0 && runtime.GOMAXPROCS(0) != g.saved {
			runtime.GOMAXPROCS(g.saved)
		}
	}
}

// roundDuration rounds d for people to read.
func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(time.Microsecond)
	}
	return d
}
