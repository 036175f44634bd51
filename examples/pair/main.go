// Command pair is a sched_ext scheduler that isolates cgroups from each
// other on SMT cores: the hardware threads of a core only run tasks of one
// -isolate cgroup at a time (or, together, tasks of no isolated cgroup),
// built from scxkit's smt component. A thread with nothing compatible to
// run stays idle; that forced idle is charged to the cgroup holding the
// core and printed with every stats line, with each cgroup's run time,
// core takeovers and violations (which should stay 0).
//
//	go run ./examples/pair -isolate /a,/b -stats 1s
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/scxkit/scxkit/examples/internal/cli"
	"github.com/scxkit/scxkit/scx"
	"github.com/scxkit/scxkit/smt"
	"github.com/scxkit/scxkit/topology"
)

func main() {
	cli.Exit("pair", run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// options are the command line flags.
type options struct {
	isolate []string
	root    string
	slice   time.Duration
	hold    time.Duration
	stats   time.Duration
	timeout time.Duration
	verbose bool
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("pair", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	var isolate string
	fs.StringVar(&isolate, "isolate", "", "comma-separated cgroups to isolate from each other, e.g. /a,/b (required)")
	fs.StringVar(&o.root, "cgroup-root", smt.DefaultCgroupRoot, "where cgroup v2 is mounted")
	fs.DurationVar(&o.slice, "slice", 20*time.Millisecond, "time slice of a task")
	fs.DurationVar(&o.hold, "hold", 40*time.Millisecond, "how long a cgroup keeps a core while another waits for it")
	fs.DurationVar(&o.stats, "stats", time.Second, "interval between counter lines (0 turns them off)")
	fs.DurationVar(&o.timeout, "timeout", 0, "watchdog timeout (0: the kernel's default)")
	fs.BoolVar(&o.verbose, "v", false, "log load decisions and every exit in detail")
	if err := cli.Parse(fs, args); err != nil {
		return nil, err
	}
	for _, p := range strings.Split(isolate, ",") {
		if p = strings.TrimSpace(p); p != "" {
			o.isolate = append(o.isolate, p)
		}
	}
	switch {
	case len(o.isolate) == 0:
		return nil, cli.Usagef("-isolate: name at least one cgroup, e.g. -isolate /a,/b")
	case o.root == "" || !filepath.IsAbs(o.root):
		return nil, cli.Usagef("-cgroup-root %q: give the absolute path where cgroup v2 is mounted, e.g. -cgroup-root %s", o.root, smt.DefaultCgroupRoot)
	case o.hold <= 0:
		return nil, cli.Usagef("-hold %v: must be positive, e.g. -hold 40ms", o.hold)
	case o.hold > cli.MaxSlice:
		return nil, cli.Usagef("-hold %v: longer than %v, the longest watchdog timeout, would starve the cgroups waiting for a core; use e.g. -hold 40ms", o.hold, cli.MaxSlice)
	}
	for _, err := range []error{
		cli.Slice("slice", o.slice),
		cli.Interval("stats", o.stats, true, "1s"),
		cli.Timeout("timeout", o.timeout),
	} {
		if err != nil {
			return nil, err
		}
	}
	// The form of the paths (no ".." leaving the cgroup root); that the
	// cgroups exist is checked when the scheduler is loaded.
	if err := o.smtConfig().Validate(); err != nil {
		return nil, cli.Usagef("-isolate: %v", err)
	}
	return o, nil
}

// smtConfig is the smt component's configuration from the flags.
func (o *options) smtConfig() smt.Config {
	return smt.Config{Isolate: o.isolate, Root: o.root, Hold: o.hold}
}

// statsLine formats the scheduler's counters and every class's.
func statsLine(s *scx.Stats, r *smt.Reader, buf *[]smt.Counters) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s %s", s.Time.Format(time.TimeOnly), s)
	c, err := r.Read(*buf)
	if err != nil {
		fmt.Fprintf(&sb, " smt: %v", err)
		return sb.String()
	}
	*buf = c
	v, err := r.Violations()
	if err != nil {
		fmt.Fprintf(&sb, " smt: %v", err)
		return sb.String()
	}
	fmt.Fprintf(&sb, " violations=%d", v)
	for _, x := range c {
		fmt.Fprintf(&sb, " | %s", x)
	}
	return sb.String()
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

	spec, err := scx.Open(scx.Objects{Base: loadPair, V2: loadPairV2}, scx.Config{
		Name:    "pair",
		Slice:   o.slice,
		Timeout: o.timeout,
		Flags:   smt.OpsFlags,
	})
	if err != nil {
		return err
	}
	var (
		layout *smt.Layout
		reader *smt.Reader
		buf    []smt.Counters
	)
	runOpts := &scx.RunOptions{StatsInterval: o.stats}
	if o.stats > 0 {
		runOpts.OnStats = func(s *scx.Stats) { fmt.Fprintln(stdout, statsLine(s, reader, &buf)) }
	}
	info, err := scx.Serve(ctx, spec, &scx.ServeOptions{
		Load: &scx.LoadOptions{Logger: log},
		Run:  runOpts,
		// Every (re)load reads the machine and the cgroups afresh.
		OnLoad: func(s *scx.Scheduler) error {
			topo, err := topology.Discover(nil)
			if err != nil {
				return err
			}
			if layout, err = smt.New(topo, o.smtConfig()); err != nil {
				return err
			}
			if err := layout.WriteBPF(s.Collection()); err != nil {
				return err
			}
			reader, err = smt.NewReader(s.Collection(), layout)
			return err
		},
		OnAttach: func(s *scx.Scheduler) error {
			var names []string
			for _, c := range layout.Classes[1:] {
				names = append(names, fmt.Sprintf("%s(id %d)", c.Path, c.CgroupID))
			}
			log.Info("attached", "scheduler", s.Name(), "kernel", s.Kernel().Release, "isolated", strings.Join(names, ","))
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
