package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/scxkit/scxkit/internal/promserve"
	"github.com/scxkit/scxkit/latency"
)

// stringList is a flag that may be given more than once.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// latencyFlags are the parsed flags of the latency command.
type latencyFlags struct {
	cgroups  stringList
	interval time.Duration
	duration time.Duration
	json     bool
	listen   string
	bounds   string
	outlier  time.Duration
}

func latencyCommand() (*flag.FlagSet, func(context.Context, io.Writer, io.Writer) error) {
	fs := flag.NewFlagSet("latency", flag.ContinueOnError)
	var f latencyFlags
	fs.Var(&f.cgroups, "cgroup", "profile the cgroup at `PATH` (in the v2 hierarchy, e.g. /system.slice, or under its mount); repeat for more; none: every cgroup")
	fs.DurationVar(&f.interval, "interval", time.Second, "print every `D` (at least 10ms)")
	fs.DurationVar(&f.duration, "duration", 0, "stop after `D` (0: run until interrupted)")
	fs.BoolVar(&f.json, "json", false, "print JSON lines instead of text")
	fs.StringVar(&f.listen, "listen", "", "serve Prometheus/OpenMetrics metrics at http://`ADDR`/metrics (e.g. 127.0.0.1:9100; :9100 serves every interface, unauthenticated)")
	fs.StringVar(&f.bounds, "bounds", "log2", "histogram bucket bounds: `LIST` of durations (50us,1ms,10ms) or log2 (1µs to 33s)")
	fs.DurationVar(&f.outlier, "outlier", 0, "also print every wait of at least `D` with its task (0: none)")
	setUsage(fs, "scxkit latency [--cgroup PATH]... [--interval D] [--duration D] [--json] [--listen ADDR] [--bounds LIST] [--outlier D]",
		`Latency profiles scheduling latency per cgroup with BPF tracing, on any kernel
with BTF (sched_ext or not); it needs root, or CAP_BPF and CAP_PERFMON.
Every interval it prints, per cgroup, the queueing delay of its tasks in that
interval (the time from being woken, or preempted, to running) as a
histogram, the share of it spent while the CPU ran a task of the same cgroup,
of another, or nothing, and the cgroup's on-CPU and off-CPU time.
--listen 127.0.0.1:9100 serves the running totals as Prometheus histograms
and counters at http://127.0.0.1:9100/metrics; an address without a host,
such as :9100, serves every network interface, without authentication. It
runs until interrupted, or for --duration, printing the last interval then.`)
	return fs, func(ctx context.Context, stdout, stderr io.Writer) error {
		return runLatency(ctx, &f, stdout, stderr)
	}
}

// minInterval is the shortest --interval: each interval reads every
// profiled cgroup's per-CPU counters and prints them, which shorter
// intervals would repeat in a busy loop.
const minInterval = 10 * time.Millisecond

func runLatency(ctx context.Context, f *latencyFlags, stdout, stderr io.Writer) error {
	// Every flag is checked before the BPF programs are loaded.
	if f.interval < minInterval {
		return usagef("--interval %v: must be at least %v, e.g. 1s", f.interval, minInterval)
	}
	if f.duration < 0 {
		return usagef("--duration %v: must be positive, or 0 to run until interrupted", f.duration)
	}
	if f.outlier < 0 {
		return usagef("--outlier %v: must be positive, or 0 for none", f.outlier)
	}
	bounds, err := latency.ParseBounds(f.bounds)
	if err != nil {
		return usagef("--bounds %q: %v", f.bounds, err)
	}
	var ln net.Listener
	if f.listen != "" {
		if ln, err = listenMetrics(f.listen, stderr); err != nil {
			return err
		}
		defer ln.Close()
	}
	// The profiler outlives ctx: the last interval is read after a signal
	// or at the end of --duration, and the deferred Close unloads the
	// BPF programs.
	p, err := latency.Start(context.WithoutCancel(ctx), &latency.Options{Cgroups: f.cgroups, Bounds: bounds, OutlierThreshold: f.outlier})
	if errors.Is(err, latency.ErrInvalid) {
		return usagef("%v", err)
	}
	if err != nil {
		return err
	}
	defer p.Close()

	out := &latencyPrinter{w: stdout, json: f.json, bounds: bounds}
	var wg sync.WaitGroup
	if ch := p.Outliers(); ch != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for o := range ch {
				out.outlier(o)
			}
		}()
	}
	if ln != nil {
		stop := serveMetrics(ctx, ln, p, stderr)
		defer stop()
	}

	prev, err := p.Read(nil)
	if err != nil {
		return err
	}
	var cur, delta []latency.CgroupStats
	start := time.Now()
	last := start
	timer := time.NewTimer(f.interval)
	defer timer.Stop()
	// Interval k ends at start + k×interval, the last one at start +
	// duration: ceil(duration/interval) intervals, the last maybe short.
	for k := 1; ; k++ {
		due := start.Add(time.Duration(k) * f.interval)
		final := false
		if f.duration > 0 && !due.Before(start.Add(f.duration)) {
			due, final = start.Add(f.duration), true
		}
		timer.Reset(time.Until(due))
		select {
		case <-ctx.Done():
			final = true
		case <-timer.C:
		}
		now := time.Now()
		if cur, err = p.Read(cur); err != nil {
			return err
		}
		delta = subSnapshots(delta, cur, prev)
		if err := out.interval(now, now.Sub(last), delta); err != nil {
			return err
		}
		prev, cur = cur, prev
		last = now
		if final {
			break
		}
	}
	p.Close()
	wg.Wait()
	return nil
}

// subSnapshots sets dst to cur − prev, cgroup by cgroup (a cgroup new in
// cur counts from zero), reusing dst's array and histograms.
func subSnapshots(dst, cur, prev []latency.CgroupStats) []latency.CgroupStats {
	byID := make(map[uint64]*latency.CgroupStats, len(prev))
	for i := range prev {
		byID[prev[i].ID] = &prev[i]
	}
	dst = dst[:0]
	for i := range cur {
		c := &cur[i]
		var counts []uint64
		if len(dst) < cap(dst) {
			counts = dst[:len(dst)+1][len(dst)].QueueDelay.Counts
		}
		d := *c
		d.QueueDelay.Counts = counts
		if b, ok := byID[c.ID]; ok {
			d.Wakeups -= min(d.Wakeups, b.Wakeups)
			d.Preemptions -= min(d.Preemptions, b.Preemptions)
			d.QueueDelay.Sub(&c.QueueDelay, &b.QueueDelay)
			d.SameCgroupWait = max(d.SameCgroupWait-b.SameCgroupWait, 0)
			d.OtherCgroupWait = max(d.OtherCgroupWait-b.OtherCgroupWait, 0)
			d.IdleWait = max(d.IdleWait-b.IdleWait, 0)
			d.OnCPU = max(d.OnCPU-b.OnCPU, 0)
			d.OffCPU = max(d.OffCPU-b.OffCPU, 0)
			d.Outliers -= min(d.Outliers, b.Outliers)
			d.OutliersLost -= min(d.OutliersLost, b.OutliersLost)
		} else {
			d.QueueDelay.Counts = append(counts[:0], c.QueueDelay.Counts...)
		}
		dst = append(dst, d)
	}
	return dst
}

// latencyPrinter writes intervals and outliers, as text or JSON lines,
// from more than one goroutine.
type latencyPrinter struct {
	mu     sync.Mutex
	w      io.Writer
	json   bool
	bounds []time.Duration
}

// latencyInterval is one JSON line of latency --json: the cgroups' counts
// in the interval that ends at Time.
type latencyInterval struct {
	Type     string          `json:"type"` // "interval"
	Time     time.Time       `json:"time"`
	Seconds  float64         `json:"seconds"`
	BoundsNs []int64         `json:"bounds_ns"` // the buckets' upper bounds; one more bucket is unbounded
	Cgroups  []latencyCgroup `json:"cgroups"`
}

type latencyCgroup struct {
	Path          string   `json:"path"`
	ID            uint64   `json:"id"`
	Wakeups       uint64   `json:"wakeups"`
	Preemptions   uint64   `json:"preemptions"`
	Counts        []uint64 `json:"counts"` // per bucket, len(bounds_ns)+1
	DelayNs       int64    `json:"delay_ns"`
	P50Ns         int64    `json:"p50_ns"`
	P90Ns         int64    `json:"p90_ns"`
	P99Ns         int64    `json:"p99_ns"`
	SameCgroupNs  int64    `json:"same_cgroup_wait_ns"`
	OtherCgroupNs int64    `json:"other_cgroup_wait_ns"`
	IdleNs        int64    `json:"idle_wait_ns"`
	OnCPUNs       int64    `json:"oncpu_ns"`
	OffCPUNs      int64    `json:"offcpu_ns"`
	Outliers      uint64   `json:"outliers"`
	OutliersLost  uint64   `json:"outliers_lost"`
}

// latencyOutlier is a JSON line for one outlier.
type latencyOutlier struct {
	Type          string    `json:"type"` // "outlier"
	Time          time.Time `json:"time"`
	PID           int       `json:"pid"`
	TGID          int       `json:"tgid"`
	Comm          string    `json:"comm"`
	Cgroup        string    `json:"cgroup"`
	CgroupID      uint64    `json:"cgroup_id"`
	CPU           int       `json:"cpu"`
	Kind          string    `json:"kind"`
	DelayNs       int64     `json:"delay_ns"`
	SameCgroupNs  int64     `json:"same_cgroup_wait_ns"`
	OtherCgroupNs int64     `json:"other_cgroup_wait_ns"`
	IdleNs        int64     `json:"idle_wait_ns"`
}

// interval prints the counts of one interval. In text, cgroups with no
// wait and no run time are left out.
func (lp *latencyPrinter) interval(now time.Time, d time.Duration, cgs []latency.CgroupStats) error {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	if lp.json {
		r := latencyInterval{Type: "interval", Time: now, Seconds: d.Seconds(), Cgroups: []latencyCgroup{}}
		for _, b := range lp.bounds {
			r.BoundsNs = append(r.BoundsNs, int64(b))
		}
		for i := range cgs {
			c := &cgs[i]
			r.Cgroups = append(r.Cgroups, latencyCgroup{
				Path: c.Path, ID: c.ID, Wakeups: c.Wakeups, Preemptions: c.Preemptions,
				Counts: c.QueueDelay.Counts, DelayNs: int64(c.QueueDelay.Sum),
				P50Ns: int64(c.QueueDelay.Percentile(50)), P90Ns: int64(c.QueueDelay.Percentile(90)),
				P99Ns: int64(c.QueueDelay.Percentile(99)), SameCgroupNs: int64(c.SameCgroupWait),
				OtherCgroupNs: int64(c.OtherCgroupWait), IdleNs: int64(c.IdleWait),
				OnCPUNs: int64(c.OnCPU), OffCPUNs: int64(c.OffCPU), Outliers: c.Outliers, OutliersLost: c.OutliersLost,
			})
		}
		return json.NewEncoder(lp.w).Encode(r)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s, %.3fs:\n", now.Format("15:04:05.000"), d.Seconds())
	shown := 0
	for i := range cgs {
		c := &cgs[i]
		if c.Waits() == 0 && c.OnCPU == 0 {
			continue
		}
		shown++
		path := c.Path
		if path == "" {
			path = "(removed)"
		}
		fmt.Fprintf(&b, "cgroup %s (id %d): %d waits (%d wakeups, %d preemptions), delay p50 %v p90 %v p99 %v mean %v\n",
			path, c.ID, c.Waits(), c.Wakeups, c.Preemptions, round(c.QueueDelay.Percentile(50)),
			round(c.QueueDelay.Percentile(90)), round(c.QueueDelay.Percentile(99)), round(c.QueueDelay.Mean()))
		fmt.Fprintf(&b, "  waiting while the CPU ran: another cgroup %s, this cgroup %s, nothing %s; on-CPU %v, off-CPU %v\n",
			pct(c.OtherCgroupWait, c.QueueDelay.Sum), pct(c.SameCgroupWait, c.QueueDelay.Sum), pct(c.IdleWait, c.QueueDelay.Sum),
			round(c.OnCPU), round(c.OffCPU))
		if c.Waits() > 0 {
			for _, line := range strings.SplitAfter(strings.TrimSuffix(c.QueueDelay.String(), "\n"), "\n") {
				b.WriteString("  " + line)
			}
			b.WriteString("\n")
		}
	}
	if shown == 0 {
		b.WriteString("(no activity in the profiled cgroups)\n")
	}
	b.WriteString("\n")
	_, err := io.WriteString(lp.w, b.String())
	return err
}

func (lp *latencyPrinter) outlier(o latency.Outlier) {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	if lp.json {
		json.NewEncoder(lp.w).Encode(latencyOutlier{Type: "outlier", Time: o.Time, PID: o.PID, TGID: o.TGID, Comm: o.Comm,
			Cgroup: o.Cgroup, CgroupID: o.CgroupID, CPU: o.CPU, Kind: o.Kind.String(), DelayNs: int64(o.Delay),
			SameCgroupNs: int64(o.SameCgroupWait), OtherCgroupNs: int64(o.OtherCgroupWait), IdleNs: int64(o.IdleWait)})
		return
	}
	fmt.Fprintf(lp.w, "%s outlier: %s[%d] cgroup %s cpu %d %s waited %v (other cgroup %v, same %v, idle %v)\n",
		o.Time.Format("15:04:05.000000"), o.Comm, o.PID, o.Cgroup, o.CPU, o.Kind, o.Delay, o.OtherCgroupWait,
		o.SameCgroupWait, o.IdleWait)
}

// round rounds d for display: to µs above 1 ms, to 10 ns below.
func round(d time.Duration) time.Duration {
	if d >= time.Millisecond {
		return d.Round(time.Microsecond)
	}
	return d.Round(10 * time.Nanosecond)
}

func pct(part, whole time.Duration) string {
	if whole <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(part)/float64(whole))
}

// listenMetrics checks --listen and binds it, before anything is loaded:
// a bad address is a usage error.
func listenMetrics(addr string, stderr io.Writer) (net.Listener, error) {
	ln, err := promserve.Listen("--listen", addr, "and name the profiled cgroups", slog.New(slog.NewTextHandler(stderr, nil)))
	if err != nil {
		return nil, &usageError{msg: err.Error()}
	}
	return ln, nil
}

// serveMetrics serves p's counters at http://ADDR/metrics on ln until ctx
// ends or stop is called.
func serveMetrics(ctx context.Context, ln net.Listener, p *latency.Profiler, stderr io.Writer) (stop func()) {
	fmt.Fprintf(stderr, "serving metrics at http://%s/metrics\n", ln.Addr())
	srv := promserve.Serve(ln, newLatencyCollector(p.Read))
	stopCtx := context.AfterFunc(ctx, func() { srv.Close() })
	return func() { stopCtx(); srv.Close() }
}
