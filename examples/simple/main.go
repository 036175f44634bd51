// Command simple is a sched_ext scheduler with one global queue, ordered by
// weighted virtual time (or FIFO with -fifo), built from scxkit's parts.
// It attaches on start, prints its counters every -stats interval, and
// detaches on SIGINT or SIGTERM, leaving every task on the fair class.
//
//	go run ./examples/simple -stats 1s
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
	"syscall"
	"time"

	"github.com/scxkit/scxkit/examples/internal/cli"
	"github.com/scxkit/scxkit/scx"
)

func main() {
	cli.Exit("simple", run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// options are the command line flags.
type options struct {
	slice   time.Duration
	fifo    bool
	verbose bool
	stats   time.Duration
	timeout time.Duration
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("simple", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	fs.DurationVar(&o.slice, "slice", 20*time.Millisecond, "time slice of a task")
	fs.BoolVar(&o.fifo, "fifo", false, "run tasks in arrival order instead of by weighted virtual time")
	fs.BoolVar(&o.verbose, "v", false, "log load decisions and every exit in detail")
	fs.DurationVar(&o.stats, "stats", time.Second, "interval between counter lines (0 turns them off)")
	fs.DurationVar(&o.timeout, "timeout", 0, "watchdog timeout (0: the kernel's default)")
	if err := cli.Parse(fs, args); err != nil {
		return nil, err
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
	return o, nil
}

func (o *options) config() scx.Config {
	cfg := scx.Config{
		Name:      "simple",
		Slice:     o.slice,
		Timeout:   o.timeout,
		Constants: map[string]any{"fifo": o.fifo},
	}
	if o.fifo {
		cfg.NameSuffix = "_fifo"
	}
	return cfg
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

	spec, err := scx.Open(scx.Objects{Base: loadSimple, V2: loadSimpleV2}, o.config())
	if err != nil {
		return err
	}
	runOpts := &scx.RunOptions{StatsInterval: o.stats}
	if o.stats > 0 {
		runOpts.OnStats = func(s *scx.Stats) {
			fmt.Fprintf(stdout, "%s %s\n", s.Time.Format(time.TimeOnly), s)
		}
	}
	info, err := scx.Serve(ctx, spec, &scx.ServeOptions{
		Load: &scx.LoadOptions{Logger: log},
		Run:  runOpts,
		OnAttach: func(s *scx.Scheduler) error {
			log.Info("attached", "scheduler", s.Name(), "kernel", s.Kernel().Release, "kfuncs", s.Kernel().Gen)
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
