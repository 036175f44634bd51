//go:build linux

package workload

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// RequestConfig describes a request/response load: Threads OS threads,
// each waking at a fixed Period on an absolute timer, doing Work of CPU
// time, and sleeping again, for Duration. The delay from each timer's
// expiry to the thread running again is its wakeup latency.
type RequestConfig struct {
	Threads  int           // request threads (default 1)
	Period   time.Duration // between a thread's wakeups (default 5ms)
	Work     time.Duration // CPU time per request (default 200µs)
	Duration time.Duration // how long to run (default 2s)
}

// RequestReport is the outcome of Requests.
type RequestReport struct {
	// Requests is the number of requests served, over all threads.
	Requests int
	// Latencies holds the wakeup latency of every request, sorted.
	Latencies []time.Duration
	// Elapsed is how long the load ran.
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

// Requests runs the load cfg describes until cfg.Duration passes or ctx is
// done. Each thread is locked to its OS thread with a timer slack of 1ns,
// so the latency measured is the kernel's: timer expiry, wakeup, and the
// wait for a CPU. Like Run, it raises GOMAXPROCS so that a thread coming
// back from its sleep always finds a free P.
func Requests(ctx context.Context, cfg RequestConfig) (*RequestReport, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	defer raiseGOMAXPROCS(cfg.Threads + 1)()
	perThread := int(cfg.Duration/cfg.Period) + 2
	lat := make([][]time.Duration, cfg.Threads)
	errs := make([]error, cfg.Threads)
	start := time.Now()
	end := start.Add(cfg.Duration)
	var wg sync.WaitGroup
	for i := range cfg.Threads {
		lat[i] = make([]time.Duration, 0, perThread)
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat[i], errs[i] = requestThread(ctx, cfg, end, lat[i])
		}()
	}
	wg.Wait()
	rep := &RequestReport{Elapsed: time.Since(start)}
	for i := range lat {
		rep.Latencies = append(rep.Latencies, lat[i]...)
	}
	slices.Sort(rep.Latencies)
	rep.Requests = len(rep.Latencies)
	return rep, errors.Join(errs...)
}

// requestThread is one request thread: it appends a latency per request
// to lat, which has room for all of them.
func requestThread(ctx context.Context, cfg RequestConfig, end time.Time, lat []time.Duration) ([]time.Duration, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0); err != nil {
		return lat, fmt.Errorf("workload: set timer slack: %w", err)
	}
	endNs := monoNow() + int64(time.Until(end))
	target := monoNow() + int64(cfg.Period)
	for target < endNs && ctx.Err() == nil {
		ts := unix.NsecToTimespec(target)
		for {
			err := unix.ClockNanosleep(unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME, &ts, nil)
			if err == nil {
				break
			}
			if err != unix.EINTR {
				return lat, fmt.Errorf("workload: clock_nanosleep: %w", err)
			}
		}
		woke := monoNow()
		if len(lat) < cap(lat) {
			lat = append(lat, time.Duration(woke-target))
		}
		spinCPU(cfg.Work)
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

// spinCPU burns d of this thread's CPU time.
func spinCPU(d time.Duration) {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts)
	until := ts.Nano() + int64(d)
	x := uint64(0x9e3779b97f4a7c15)
	for {
		for range 256 {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
		}
		unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts)
		if ts.Nano() >= until {
			break
		}
	}
	spinSink = x
}

var spinSink uint64
