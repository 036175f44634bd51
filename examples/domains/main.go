// Command domains is a multi-domain sched_ext scheduler composed from
// scxkit's components: topology finds the domains (one per LLC, or the
// CPU masks given with -domains), dsq gives each a DSQ ordered by weighted
// virtual time, and lb balances load between them from the tasks' duty
// cycles, handing migrations to the BPF side every -interval.
//
//	go run ./examples/domains -interval 500ms -stats 1s
//	go run ./examples/domains -domains 0-1,4-5:2-3,6-7
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/scxkit/scxkit/dsq"
	"github.com/scxkit/scxkit/examples/internal/cli"
	"github.com/scxkit/scxkit/lb"
	"github.com/scxkit/scxkit/scx"
	"github.com/scxkit/scxkit/topology"
)

func main() {
	cli.Exit("domains", run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// options are the command line flags.
type options struct {
	interval    time.Duration
	slice       time.Duration
	push, pull  float64
	minLoad     float64
	stats       time.Duration
	stealQueued uint64
	domains     string
	verbose     bool

	domainMasks []topology.Cpumask // -domains, parsed
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("domains", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	fs.DurationVar(&o.interval, "interval", time.Second, "load balancing interval")
	fs.DurationVar(&o.slice, "slice", 20*time.Millisecond, "time slice of a task")
	fs.Float64Var(&o.push, "push", 0.10, "a domain pushes load when above the average by this fraction")
	fs.Float64Var(&o.pull, "pull", 0.10, "a domain pulls load when below the average by this fraction")
	fs.Float64Var(&o.minLoad, "min-load", 0.05, "tasks lighter than this fraction of the average load per CPU are not moved")
	fs.DurationVar(&o.stats, "stats", time.Second, "interval between counter lines (0 turns them off)")
	fs.Uint64Var(&o.stealQueued, "steal", 4, "an idle CPU steals from another domain only when it holds more tasks than this")
	fs.StringVar(&o.domains, "domains", "", "domains as colon-separated cpulists, e.g. 0-3:4-7 (default: one per LLC)")
	fs.BoolVar(&o.verbose, "v", false, "log every balancing round")
	if err := cli.Parse(fs, args); err != nil {
		return nil, err
	}
	for _, err := range []error{
		cli.Interval("interval", o.interval, false, "1s"),
		cli.Slice("slice", o.slice),
		cli.Interval("stats", o.stats, true, "1s"),
		// lb.Options: a push threshold above 0, a pull threshold in
		// (0, 1) (a domain cannot be below the average by all of it).
		cli.Float("push", o.push, 0, math.Inf(1), true, true, "0.1"),
		cli.Float("pull", o.pull, 0, 1, true, true, "0.1"),
		cli.Float("min-load", o.minLoad, 0, 1, true, false, "0.05"),
		cli.Uint32("steal", o.stealQueued, "4"),
	} {
		if err != nil {
			return nil, err
		}
	}
	if o.domains != "" {
		for _, part := range strings.Split(o.domains, ":") {
			m, err := topology.ParseCPUList(part)
			if err != nil {
				return nil, cli.Usagef("-domains %q: %v: give colon-separated cpulists, e.g. -domains 0-3:4-7", o.domains, err)
			}
			if m.Empty() {
				return nil, cli.Usagef("-domains %q: domain %q has no CPUs: give colon-separated cpulists, e.g. -domains 0-3:4-7", o.domains, part)
			}
			o.domainMasks = append(o.domainMasks, m)
		}
	}
	return o, nil
}

// layout builds the DSQ layout: the -domains masks, or one per LLC.
func (o *options) layout(topo *topology.Topology) (*dsq.Layout, error) {
	opts := dsq.Options{Kind: dsq.PerLLC, StealMinQueued: uint32(o.stealQueued)}
	if o.domains != "" {
		opts.Kind = dsq.Custom
		opts.Domains = o.domainMasks
	}
	l, err := dsq.New(topo, opts)
	if err != nil {
		return nil, fmt.Errorf("domains: %w", err)
	}
	return l, nil
}

// balancer runs one balancing round per interval.
type balancer struct {
	layout   *dsq.Layout
	lb       *lb.Balancer
	tracker  *lb.Tracker
	tasks    []lb.Task
	plan     []lb.Migration
	loads    []lb.DomainLoad
	counters []lb.DomainCounters
	fromTask []float64
	log      *slog.Logger

	// The stats line reads these from Run's goroutine while rounds run
	// on their own.
	mu   sync.Mutex
	last summary
}

// summary is what the stats line shows of the rounds so far.
type summary struct {
	rounds, moved int
	before, after float64   // the last round's imbalance
	runnable      []float64 // per domain, from the BPF side's buckets
}

func (b *balancer) round(context.Context, *scx.Scheduler) error {
	var err error
	now := lb.Now()
	n := len(b.layout.DSQs)
	if b.tasks, err = b.tracker.Tasks(b.tasks, now, n); err != nil {
		return err
	}
	if b.loads, err = b.tracker.DomainLoads(b.loads, now, n); err != nil {
		return err
	}
	var st lb.RoundStats
	if b.plan, st, err = b.lb.Balance(b.plan, b.tasks); err != nil {
		return err
	}
	if err := b.tracker.Apply(b.plan); err != nil {
		return err
	}

	b.mu.Lock()
	b.last.rounds++
	b.last.moved += st.Moved
	b.last.before, b.last.after = st.ImbalanceBefore, st.ImbalanceAfter
	b.last.runnable = b.last.runnable[:0]
	for _, l := range b.loads {
		b.last.runnable = append(b.last.runnable, l.Runnable)
	}
	b.mu.Unlock()

	if b.log.Enabled(context.Background(), slog.LevelDebug) {
		// The domains' runnable tasks two ways: summed over the tasks'
		// own duty cycles, and from the domains' buckets.
		b.fromTask = append(b.fromTask[:0], make([]float64, n)...)
		for _, t := range b.tasks {
			b.fromTask[t.Domain] += t.DutyCycle
		}
		b.log.Debug("balance", "tasks", len(b.tasks), "round", st,
			"runnable_tasks", floats(b.fromTask), "runnable_buckets", floats(b.last.runnable))
	}
	return nil
}

// floats formats v as comma-separated numbers with two decimals.
func floats(v []float64) string {
	var sb strings.Builder
	for i, f := range v {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, "%.2f", f)
	}
	return sb.String()
}

// statsLine formats the counters of s, the rounds so far and each
// domain's run time and runnable tasks.
func (b *balancer) statsLine(s *scx.Stats) string {
	b.mu.Lock()
	last := b.last
	last.runnable = slices.Clone(last.runnable)
	b.mu.Unlock()
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s %s rounds=%d moved=%d imbalance=%.2f->%.2f",
		s.Time.Format(time.TimeOnly), s, last.rounds, last.moved, last.before, last.after)
	c, err := b.tracker.DomainCounters(b.counters, len(b.layout.DSQs))
	if err != nil {
		return sb.String()
	}
	b.counters = c
	for i, d := range c {
		fmt.Fprintf(&sb, " dom%d_run=%dms", i, d.RuntimeNs/1e6)
		if i < len(last.runnable) {
			fmt.Fprintf(&sb, " dom%d_rq=%.2f", i, last.runnable[i])
		}
	}
	return sb.String()
}

// setup hands the machine's domains to the loaded scheduler s and makes
// the balancer for them.
func (b *balancer) setup(s *scx.Scheduler, o *options) error {
	topo, err := topology.Discover(nil)
	if err != nil {
		return err
	}
	if b.layout, err = o.layout(topo); err != nil {
		return err
	}
	if err := b.layout.Check(s.Kernel()); err != nil {
		return err
	}
	if err := b.layout.WriteBPF(s.Collection()); err != nil {
		return err
	}
	var doms []lb.Domain
	for _, d := range b.layout.DSQs {
		doms = append(doms, lb.Domain{ID: d.Index, Node: max(d.Node, 0), CPUs: d.CPUs.Weight()})
	}
	if b.lb, err = lb.NewBalancer(doms, lb.Options{PushThreshold: o.push, PullThreshold: o.pull, MinTaskLoad: o.minLoad}); err != nil {
		return err
	}
	b.tracker, err = lb.NewTracker(s.Collection())
	return err
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	// First of all, so that no step ignores a SIGINT or SIGTERM.
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	o, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	level := slog.LevelInfo
	if o.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	spec, err := scx.Open(scx.Objects{Base: loadDomains, V2: loadDomainsV2}, scx.Config{Name: "domains", Slice: o.slice})
	if err != nil {
		return err
	}
	b := &balancer{log: log}
	runOpts := &scx.RunOptions{
		StatsInterval: o.stats,
		Periodic:      []scx.Periodic{{Name: "load balancer", Every: o.interval, Func: b.round}},
	}
	if o.stats > 0 {
		runOpts.OnStats = func(s *scx.Stats) { fmt.Fprintln(stdout, b.statsLine(s)) }
	}
	info, err := scx.Serve(ctx, spec, &scx.ServeOptions{
		Load: &scx.LoadOptions{Logger: log},
		Run:  runOpts,
		// Every (re)load reads the machine afresh: a restart follows CPU
		// hotplug.
		OnLoad: func(s *scx.Scheduler) error { return b.setup(s, o) },
		OnAttach: func(s *scx.Scheduler) error {
			log.Info("attached", "scheduler", s.Name(), "kernel", s.Kernel().Release, "domains", len(b.layout.DSQs))
			return nil
		},
	})
	if info != nil {
		if err != nil || o.verbose {
			fmt.Fprint(stderr, info.Report())
		} else {
			log.Info("detached", "exit", info.String())
		}
	}
	if cli.Stopped(ctx, err) {
		log.Info("stopped before attaching", "reason", err)
		return nil
	}
	return err
}
