//go:build linux

package workload

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// RequestConfig describes a request/response load: Threads OS threads,
// each waking at a fixed Period on an absolute timer, doing Work of CPU
// time, and sleeping again, for Duration. The delay from each timer's
// expiry to the thread running again is its wakeup latency.
//
// The hooks ThreadSetup and Ready are left out of JSON, so that a
// RequestConfig can be handed to a helper process as JSON.
type RequestConfig struct {
	Threads  int           // request threads (default 1)
	Period   time.Duration // between a thread's wakeups (default 5ms)
	Work     time.Duration // CPU time per request (default 200µs)
	Duration time.Duration // how long to run (default 2s)

	// ThreadSetup, if not nil, is called on each request thread, with its
	// number from 0 to Threads-1, once the thread is locked to its OS
	// thread and before its first request: to move the thread into a
	// cgroup, or to set its scheduling policy, nice value or CPU affinity.
	// The threads call it concurrently. If it fails on any thread, no
	// request runs and Requests returns its errors, each wrapped with the
	// thread's number.
	//
	// When ThreadSetup is set, request threads are never unlocked from
	// their OS threads, whether ThreadSetup succeeded or not, so that the
	// Go runtime retires each OS thread when its request thread ends
	// instead of running other goroutines on it: what ThreadSetup changed
	// about the OS thread (its cgroup, scheduling attributes, ...) must
	// not carry over to them.
	ThreadSetup func(thread int) error `json:"-"`

	// Ready, if not nil, is called once, on the goroutine that called
	// Requests, after every thread's setup succeeded and before any
	// request: for instance to tell another process that the load is
	// ready and to wait for its go-ahead. The load starts when Ready
	// returns. If it fails, no request runs and Requests returns its
	// error.
	Ready func() error `json:"-"`
}

// RequestReport is the outcome of Requests.
type RequestReport struct {
	// Requests is the number of requests served, over all threads.
	Requests int
	// Latencies holds the wakeup latency of every request, sorted.
	Latencies []time.Duration
	// Elapsed is how long the load ran: from its start, after Ready,
	// until its last thread finished.
	Elapsed time.Duration
}

// Percentile returns the p-th percentile (0 < p <= 100) of the
// latencies, by the nearest-rank method; 0 without requests.
func (r *RequestReport) Percentile(p float64) time.Duration {
	n := len(r.Latencies)
	if n == 0 {
		return 0
	}
	i := int(float64(n)*p/100+0.999999) - 1
	return r.Latencies[min(max(i, 0), n-1)]
}

func (c RequestConfig) withDefaults() (RequestConfig, error) {
	switch {
	case c.Threads < 0 || c.Threads > MaxThreads:
		return c, fmt.Errorf("workload: %w: Threads is %d, want 0 to %d", ErrInvalidConfig, c.Threads, MaxThreads)
	case c.Period < 0, c.Work < 0, c.Duration < 0:
		return c, fmt.Errorf("workload: %w: negative Period, Work or Duration (%v, %v, %v)", ErrInvalidConfig, c.Period, c.Work, c.Duration)
	}
	if c.Threads == 0 {
		c.Threads = 1
	}
	if c.Period == 0 {
		c.Period = 5 * time.Millisecond
	}
	if c.Work == 0 {
		c.Work = 200 * time.Microsecond
	}
	if c.Duration == 0 {
		c.Duration = 2 * time.Second
	}
	if c.Work >= c.Period {
		return c, fmt.Errorf("workload: %w: Work %v must be shorter than Period %v", ErrInvalidConfig, c.Work, c.Period)
	}
	return c, nil
}

// Requests runs the load cfg describes and returns its report.
//
// Each thread locks itself to an OS thread (until it ends, unless
// cfg.ThreadSetup is set: then for good) and sets the thread's timer
// slack to 1ns, so that the latency measured is the kernel's: timer
// expiry, wakeup, and the wait for a CPU. It then calls cfg.ThreadSetup,
// if set, and waits. Once every thread is set up, Requests calls cfg.Ready,
// if set, and then starts the load: thread i's first request is due
// i/Threads of a Period after the start (thread 0's at once), which
// spreads the threads' requests evenly over the period, and each of its
// next requests is due a Period after the previous one, or at once if
// the previous one's work ended later than that. A thread stops when its
// next request would be due Duration or more after the start, or when ctx
// is done; ctx does not interrupt ThreadSetup or Ready. Without missed
// periods, each thread thus serves Duration/Period requests when Duration
// is a multiple of Period, and one more or less otherwise.
//
// If a thread's setup or Ready fails, Requests returns a nil report and
// the error. Otherwise it returns a report of all requests done, with an
// error if a thread failed to sleep.
//
// Like Run, it raises GOMAXPROCS so that a thread coming back from its
// sleep always finds a free P. The threads allocate nothing while the
// load runs.
func Requests(ctx context.Context, cfg RequestConfig) (*RequestReport, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	defer raiseGOMAXPROCS(cfg.Threads + 1)()
	// The number of requests is bounded: a thread's target advances by at
	// least a Period per request.
	perThread := int(cfg.Duration/cfg.Period) + 2
	threads := make([]requestThread, cfg.Threads)
	var (
		setUp, done sync.WaitGroup
		begin       = make(chan struct{}) // closed once start and run are set
		start       int64                 // CLOCK_MONOTONIC ns
		run         bool                  // false: every thread returns at once
	)
	for i := range threads {
		t := &threads[i]
		t.lat = make([]time.Duration, 0, perThread)
		setUp.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			runtime.LockOSThread()
			if cfg.ThreadSetup == nil {
				defer runtime.UnlockOSThread()
			}
			t.err = setupRequestThread(cfg, i)
			setUp.Done()
			<-begin
			if !run {
				return
			}
			first := start + staggered(cfg.Period, i, cfg.Threads)
			t.lat, t.err = requestLoop(ctx, cfg, first, start+int64(cfg.Duration), t.lat)
			if t.err != nil {
				t.err = fmt.Errorf("workload: request thread %d: %w", i, t.err)
			}
		}()
	}
	setUp.Wait()
	var errs []error
	for i := range threads {
		if threads[i].err != nil {
			errs = append(errs, threads[i].err)
		}
	}
	if len(errs) == 0 && cfg.Ready != nil {
		if err := cfg.Ready(); err != nil {
			errs = append(errs, fmt.Errorf("workload: Ready: %w", err))
		}
	}
	start, run = monoNow(), len(errs) == 0
	close(begin)
	done.Wait()
	if !run {
		return nil, errors.Join(errs...)
	}
	rep := &RequestReport{Elapsed: time.Duration(monoNow() - start)}
	for i := range threads {
		rep.Latencies = append(rep.Latencies, threads[i].lat...)
		errs = append(errs, threads[i].err)
	}
	slices.Sort(rep.Latencies)
	rep.Requests = len(rep.Latencies)
	return rep, errors.Join(errs...)
}

// requestThread is the state of one request thread.
type requestThread struct {
	lat []time.Duration // a latency per request, with room for all of them
	err error
}

// setupRequestThread prepares the calling thread, locked to its OS thread,
// to be request thread i.
func setupRequestThread(cfg RequestConfig, i int) error {
	// The kernel may otherwise delay a timer by up to 50µs to batch
	// wakeups.
	if err := unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("workload: request thread %d: set timer slack: %w", i, err)
	}
	if cfg.ThreadSetup != nil {
		if err := cfg.ThreadSetup(i); err != nil {
			return fmt.Errorf("workload: request thread %d: %w", i, err)
		}
	}
	return nil
}

// staggered returns the offset of thread i's first request from the
// start: i/n of period, rounded down (computed without overflow).
func staggered(period time.Duration, i, n int) int64 {
	q, r := int64(period)/int64(n), int64(period)%int64(n)
	return q*int64(i) + r*int64(i)/int64(n)
}

// requestLoop serves requests from target, the first one's due time (in
// CLOCK_MONOTONIC ns), until a due time reaches end or ctx is done, and
// appends each request's latency to lat while it has room.
//
//	target ──sleep──► woke (latency = woke - target) ──spin Work──► next target
//	                                                   = max(target+Period, now)
func requestLoop(ctx context.Context, cfg RequestConfig, target, end int64, lat []time.Duration) ([]time.Duration, error) {
	x := uint64(0x9e3779b97f4a7c15)
	defer func() { spinSink.Store(x) }()
	for target < end && ctx.Err() == nil {
		ts := unix.NsecToTimespec(target)
		for {
			err := unix.ClockNanosleep(unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME, &ts, nil)
			if err == nil {
				break
			}
			if err != unix.EINTR {
				return lat, fmt.Errorf("clock_nanosleep: %w", err)
			}
		}
		woke := monoNow()
		if len(lat) < cap(lat) {
			lat = append(lat, time.Duration(woke-target))
		}
		x = spinCPU(x, cfg.Work)
		target += int64(cfg.Period)
		if now := monoNow(); target < now {
			target = now // overloaded: do not pile up missed requests
		}
	}
	return lat, nil
}

// monoNow reads CLOCK_MONOTONIC in ns.
func monoNow() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

// spinCPU burns d of this thread's CPU time, stepping the xorshift state
// x, and returns the new state.
func spinCPU(x uint64, d time.Duration) uint64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts)
	until := ts.Nano() + int64(d)
	for {
		for range 256 {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
		}
		unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts)
		if ts.Nano() >= until {
			return x
		}
	}
}

// spinSink keeps the request threads' spin results alive.
var spinSink atomic.Uint64
