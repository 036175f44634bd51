// Command interactive is a sched_ext scheduler with a preemption policy per
// class of work, built from scxkit's preempt component: which wakeups
// preempt which running tasks, how long slices are, and whether a task
// yields at the end of its slice or runs on. Within a class, tasks share
// the CPUs by weighted virtual time.
//
// Classes come from a config file, which the scheduler watches and
// applies again whenever it changes, without reloading, and from -class
// flags (one line of the file each); see preempt.Parse for the syntax:
//
//	go run ./examples/interactive -config classes.conf
//	go run ./examples/interactive -class 'web cgroup=/web wakeup=lower slice=3ms' \
//		-class 'batch cgroup=/batch background slice=50ms'
//
// A bad config at start is an error; a bad change to the file is logged
// and the policy in force stays. Every -stats interval it prints the
// scheduler's counters and each class's: run time, wakeups and their
// wait percentiles, preemptions made and suffered.
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
	"strings"
	"syscall"
	"time"

	"github.com/scxkit/scxkit/examples/internal/cli"
	"github.com/scxkit/scxkit/preempt"
	"github.com/scxkit/scxkit/scx"
)

func main() {
	cli.Exit("interactive", run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// options are the command line flags.
type options struct {
	config  string
	classes []string
	watch   time.Duration
	slice   time.Duration
	stats   time.Duration
	timeout time.Duration
	verbose bool
}

// classFlags collects repeated -class flags.
type classFlags []string

func (c *classFlags) String() string     { return strings.Join(*c, "; ") }
func (c *classFlags) Set(s string) error { *c = append(*c, s); return nil }

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("interactive", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	fs.StringVar(&o.config, "config", "", "`FILE` of classes, one per line, highest priority first (a regular file of at most 1 MiB); watched for changes")
	fs.Var((*classFlags)(&o.classes), "class", "a class, as one line of the config file (repeatable; after the file's classes)")
	fs.DurationVar(&o.watch, "watch", time.Second, "how often to look for changes of -config")
	fs.DurationVar(&o.slice, "slice", preempt.DefaultSlice, "time slice before a configuration is applied")
	fs.DurationVar(&o.stats, "stats", time.Second, "interval between counter lines (0 turns them off)")
	fs.DurationVar(&o.timeout, "timeout", 0, "watchdog timeout (0: the kernel's default)")
	fs.BoolVar(&o.verbose, "v", false, "log every configuration change and every exit in detail")
	if err := cli.Parse(fs, args); err != nil {
		return nil, err
	}
	for _, err := range []error{
		cli.Slice("slice", o.slice),
		cli.Interval("watch", o.watch, false, "1s"),
		cli.Interval("stats", o.stats, true, "1s"),
		cli.Timeout("timeout", o.timeout),
	} {
		if err != nil {
			return nil, err
		}
	}
	if o.config != "" && len(o.classes) > 0 {
		return nil, cli.Usagef("-config and -class: give the classes in one place (the file is watched, the flags are not)")
	}
	return o, nil
}

// loadConfig reads -config or the -class flags.
func (o *options) loadConfig() (*preempt.Config, error) {
	if o.config != "" {
		cfg, err := preempt.ParseFile(o.config)
		if err != nil {
			return nil, fmt.Errorf("-config: %w", err)
		}
		return cfg, nil
	}
	var text []byte
	for _, c := range o.classes {
		if strings.Contains(c, "\n") {
			return nil, fmt.Errorf("-class %q: one class per flag, without newlines", c)
		}
		text = append(text, '\n')
		text = append(text, c...)
	}
	cfg, err := preempt.Parse(text)
	if err != nil {
		return nil, fmt.Errorf("-class: %w", err)
	}
	return cfg, nil
}

// source names where the classes come from, for errors.
func (o *options) source() string {
	if o.config != "" {
		return "-config " + o.config
	}
	return "-class"
}

// statsLine formats the scheduler's counters and every class's.
func statsLine(s *scx.Stats, c *preempt.Controller, buf *[]preempt.ClassStats) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s %s", s.Time.Format(time.TimeOnly), s)
	st, err := c.Read(*buf)
	if err != nil {
		fmt.Fprintf(&sb, " preempt: %v", err)
		return sb.String()
	}
	*buf = st
	for i := range st {
		fmt.Fprintf(&sb, " | %s", &st[i])
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

	// A bad config at start is a bad flag: refuse it before loading
	// anything. (ParseFile never blocks, a FIFO included.)
	cfg, err := o.loadConfig()
	if err != nil {
		return cli.Usage(err)
	}
	if err := cfg.CheckCgroups(); err != nil {
		return cli.Usage(fmt.Errorf("%s: %w", o.source(), err))
	}
	spec, err := scx.Open(scx.Objects{Base: loadInteractive, V2: loadInteractiveV2}, scx.Config{
		Name:    "interactive",
		Slice:   o.slice,
		Timeout: o.timeout,
	})
	if err != nil {
		return err
	}
	var (
		ctl       *preempt.Controller
		buf       []preempt.ClassStats
		stopWatch = func() {}
	)
	defer func() { stopWatch() }()
	runOpts := &scx.RunOptions{StatsInterval: o.stats}
	if o.stats > 0 {
		runOpts.OnStats = func(s *scx.Stats) { fmt.Fprintln(stdout, statsLine(s, ctl, &buf)) }
	}
	info, err := scx.Serve(ctx, spec, &scx.ServeOptions{
		Load: &scx.LoadOptions{Logger: log},
		Run:  runOpts,
		// Every (re)load starts from the config as it is now.
		OnLoad: func(s *scx.Scheduler) error {
			stopWatch() // the last scheduler's watcher
			if ctl, err = preempt.NewController(s.Collection(), &preempt.Options{Logger: log}); err != nil {
				return err
			}
			if o.config != "" {
				// The file may have changed since start: read it again.
				if c, err := o.loadConfig(); err == nil {
					cfg = c
				} else {
					log.Warn("config not applied, keeping the last good one", "err", err)
				}
			}
			return ctl.Apply(cfg)
		},
		OnAttach: func(s *scx.Scheduler) error {
			log.Info("attached", "scheduler", s.Name(), "kernel", s.Kernel().Release, "classes", classNames(ctl.Config()))
			if o.config != "" {
				stopWatch = watch(ctx, ctl, o, log)
			}
			return nil
		},
	})
	stopWatch()
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

// watch applies -config to ctl whenever the file changes, until the
// returned function is called.
func watch(ctx context.Context, ctl *preempt.Controller, o *options, log *slog.Logger) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		ctl.Watch(ctx, o.config, o.watch, func(cfg *preempt.Config, err error) {
			if err != nil {
				log.Error("config change not applied; the policy in force stays", "err", err)
				return
			}
			log.Info("config applied", "file", o.config, "classes", classNames(ctl.Config()))
		})
	}()
	return func() { cancel(); <-done }
}

// classNames lists a config's classes for the log.
func classNames(cfg *preempt.Config) string {
	if cfg == nil {
		return ""
	}
	var names []string
	for _, k := range cfg.Classes {
		names = append(names, k.Name)
	}
	return strings.Join(names, ",")
}
