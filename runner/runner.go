// Package runner is the command line of a sched_ext scheduler built with
// scxkit: a main that holds only the scheduler's own flags and components
// hands them to Main, which does the rest the same way for every
// scheduler.
//
//	func main() {
//		var fifo bool
//		runner.Main(runner.Command{
//			Name:    "simple",
//			Objects: scx.Objects{Base: loadSimple, V2: loadSimpleV2},
//			Flags: func(fs *flag.FlagSet) {
//				fs.BoolVar(&fifo, "fifo", false, "run tasks in arrival order")
//			},
//			Setup: func(ctx context.Context, env *runner.Env) (scx.Config, error) {
//				return scx.Config{Constants: map[string]any{"fifo": fifo}}, nil
//			},
//		})
//	}
//
// # What Run does
//
// In this order, so that one signal always ends the command and a bad
// command line never reaches the kernel:
//
//  1. turn SIGINT and SIGTERM into the cancellation of its context;
//  2. parse the standard flags and the command's (Command.Flags), refuse
//     positional arguments, check the standard flags' values: a bad
//     command line is a UsageError, exit status 2; -h prints the flags,
//     status 0;
//  3. call Command.Check for the command's own flags, then bind -metrics,
//     if given (a bad or busy address is a usage error);
//  4. call Command.Setup, which checks the command's own flags, reads the
//     files they name and returns the scx.Config with its components;
//  5. scx.Open and scx.Serve: load, attach, run until a signal or the
//     kernel stops the scheduler, reloading it when the kernel asks for a
//     restart (after CPU hotplug). The stats socket is bound after the
//     first load, before the first attach; the stats servers read the
//     scheduler attached at the time;
//  6. print the scheduler's exit: the full report (ExitInfo.Report) after
//     a failure or with -v, else a "detached" log line; a signal before
//     the attach logs "stopped before attaching". Then close the stats
//     servers, which removes the socket.
//
// Run returns nil after a stop by a signal, and Main exits with ExitCode:
// 0 for nil and -h, 2 for a UsageError, 1 for any other error.
//
// # Standard flags
//
//	-slice D          time slice of a task (default 20ms, Command.Slice)
//	-timeout D        watchdog timeout (default 0, the kernel's)
//	-stats D          interval between stats lines on stdout (default 1s, 0 turns them off)
//	-v                debug logging, and the full exit report on every exit
//	-metrics ADDR     serve Prometheus metrics at http://ADDR/metrics (off by default)
//	-stats-socket P   the scx_stats socket (default /var/run/scx/NAME/stats, "off" turns it off)
//
// With the default -stats-socket, the stats are also served at
// /var/run/scx/root/stats, where scx's own tools (scxtop, scx_*
// --monitor) look, unless a live server already has that path.
//
// The checks of their values (CheckSlice, CheckTimeout, CheckInterval,
// ...) are exported for the commands' own flags.
//
// # Stats
//
// The scheduler's stats (scx.Snapshot: its own counters and gauges and
// every Reporter component's stats) are shown three ways, with the same names
// and values:
//
//   - a line on stdout every -stats interval (AppendStatsLine):
//     "12:00:01 enqueued=1520 dsq.queued{domain=0}=2";
//   - Prometheus metrics at -metrics ADDR (NewCollector):
//     scxkit_sched_enqueued_total{scheduler="simple"} 1520;
//   - the scx_stats protocol of sched-ext/scx's Rust schedulers on a unix
//     socket (NewStatsServer), which `scxkit stats NAME` and the scx tools
//     read.
package runner

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/scxkit/scxkit/scx"
	"github.com/scxkit/scxkit/scx/scxstats"
)

// Command describes a scheduler command.
type Command struct {
	// Name is the command's name, in errors and the usage, and the
	// scheduler's (Config.Name) unless Setup names it otherwise. It also
	// names the stats socket's directory, /var/run/scx/NAME/stats, so
	// `scxkit stats NAME` finds it whatever Config.NameSuffix is.
	Name string
	// Objects are the scheduler's BPF objects (scx.Open).
	Objects scx.Objects
	// Slice is the default of -slice; zero means 20ms.
	Slice time.Duration
	// Flags, if set, registers the command's own flags. It must not
	// define the standard ones (-slice, -timeout, -stats, -v, -metrics,
	// -stats-socket).
	Flags func(fs *flag.FlagSet)
	// Check, if set, checks the command's own flags once they are
	// parsed, before anything else happens (no listener bound, no file
	// read): return a UsageError for a bad value. Setup may check too,
	// but runs again before every restart.
	Check func() error
	// Setup, if set, runs once the flags are parsed and the standard
	// ones checked, before any kernel work, and again before every
	// restart (after CPU hotplug), so that the components it builds see
	// the machine as it is then. It checks the command's own
	// flags, returning a UsageError (Usagef, Usage, the Check functions)
	// for a bad one, and returns the scheduler's configuration with its
	// components. Fields left zero default from the command: Name from
	// Name, Slice from -slice, Timeout from -timeout. Blocking work that
	// cannot take ctx should go through Do, so that a signal still ends
	// the command; an error wrapping ctx's error after a signal is a
	// clean stop.
	Setup func(ctx context.Context, env *Env) (scx.Config, error)
	// OnAttach, if set, is called after every attach, after the
	// "attached" log line, with the scheduler now attached. An error
	// detaches the scheduler and ends the run.
	OnAttach func(ctx context.Context, env *Env, s *scx.Scheduler) error
	// StatsFields, if set, returns more fields for each stats line,
	// appended after a space (e.g. "rounds=3 moved=1"); "" adds nothing.
	// It is called on the goroutine that runs the scheduler.
	StatsFields func(snap *scx.Snapshot) string
}

// Env is what a command's hooks get: the standard flags' values, the
// logger and the outputs.
type Env struct {
	Name          string        // Command.Name
	Slice         time.Duration // -slice
	Timeout       time.Duration // -timeout; 0 is the kernel's default
	StatsInterval time.Duration // -stats; 0: no stats lines
	Verbose       bool          // -v
	MetricsAddr   string        // -metrics; "" when off
	StatsSocket   string        // -stats-socket; "" when off

	// Log writes text records to Stderr, at debug level with -v.
	Log            *slog.Logger
	Stdout, Stderr io.Writer

	kernel *scx.Kernel    // probed by Kernel, reused by the load
	exits  []func() error // OnExit
}

// Main runs cmd with the process's arguments, stdout and stderr, and
// exits with ExitCode of the result, printing an error first.
func Main(cmd Command) {
	Exit(cmd.Name, Run(context.Background(), cmd, os.Args[1:], os.Stdout, os.Stderr))
}

// Run runs cmd with the command line args (without the program's name)
// until ctx is done, a SIGINT or SIGTERM arrives, or the kernel stops the
// scheduler; see the package documentation. It returns nil for -h and
// after a stop by ctx or a signal.
func Run(ctx context.Context, cmd Command, args []string, stdout, stderr io.Writer) (err error) {
	// First of all, so that no step ignores a SIGINT or SIGTERM.
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	env, err := parseFlags(cmd, args, stdout, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	log := env.Log
	if cmd.Check != nil {
		if err := cmd.Check(); err != nil {
			return err
		}
	}

	var metrics net.Listener
	if env.MetricsAddr != "" {
		if metrics, err = listenMetrics(env.MetricsAddr, log); err != nil {
			return err
		}
		defer metrics.Close()
	}

	defer func() { err = errors.Join(err, env.runExits()) }()
	spec, err := open(ctx, cmd, env)
	if err != nil {
		if Stopped(ctx, err) {
			log.Info("stopped before attaching", "reason", err)
			return nil
		}
		return err
	}

	cur := &current{}
	if metrics != nil {
		srv := serveMetrics(metrics, cur, log)
		defer srv.Close()
	}
	var sock *socket
	if env.StatsSocket != "" {
		sock = &socket{path: env.StatsSocket, src: cur, log: log}
		if def, err := scxstats.DefaultPath(cmd.Name); err == nil && env.StatsSocket == def && cmd.Name != scxstats.DefaultName {
			// scx's tools (scxtop, scx_* --monitor) look at
			// /var/run/scx/root/stats unless told otherwise.
			sock.compat, _ = scxstats.DefaultPath(scxstats.DefaultName)
		}
		defer sock.close()
	}

	runOpts := &scx.RunOptions{
		StatsInterval: env.StatsInterval,
	}
	if env.StatsInterval > 0 {
		var line []byte
		runOpts.OnSnapshot = func(snap *scx.Snapshot) {
			line = AppendStatsLine(line[:0], snap)
			n := len(line)
			if cmd.StatsFields != nil {
				if f := cmd.StatsFields(snap); f != "" {
					line = append(append(line, ' '), f...)
				}
			}
			if n == len(time.TimeOnly) && len(line) == n {
				return // nothing to show: no stats, no fields
			}
			line = append(line, '\n')
			env.Stdout.Write(line)
		}
	}
	info, err := scx.Serve(ctx, spec, &scx.ServeOptions{
		Load: &scx.LoadOptions{Logger: log, Kernel: env.kernel},
		Run:  runOpts,
		// A restart follows CPU hotplug: Setup builds the components
		// afresh from the machine as it is now.
		Reopen: func(ctx context.Context) (*scx.Spec, error) { return open(ctx, cmd, env) },
		// The socket is bound once the kernel took the scheduler (so
		// that a kernel without sched_ext, or a user without the
		// privileges, hears that first) but before it is attached.
		OnLoad: func(*scx.Scheduler) error {
			if sock != nil {
				return sock.start(ctx)
			}
			return nil
		},
		OnAttach: func(s *scx.Scheduler) error {
			cur.set(s)
			log.Info("attached", "scheduler", s.Name(), "kernel", s.Kernel().Release, "kfuncs", s.Kernel().Gen)
			if cmd.OnAttach != nil {
				return cmd.OnAttach(ctx, env, s)
			}
			return nil
		},
	})
	if info != nil {
		if err != nil || env.Verbose {
			fmt.Fprint(stderr, info.Report())
		} else {
			log.Info("detached", "exit", info.String())
		}
	}
	if Stopped(ctx, err) {
		log.Info("stopped before attaching", "reason", err)
		return nil
	}
	return err
}

// open runs Setup and opens the scheduler it configures.
func open(ctx context.Context, cmd Command, env *Env) (*scx.Spec, error) {
	var cfg scx.Config
	if cmd.Setup != nil {
		var err error
		if cfg, err = cmd.Setup(ctx, env); err != nil {
			return nil, err
		}
	}
	if cfg.Name == "" {
		cfg.Name = cmd.Name
	}
	if cfg.Slice == 0 {
		cfg.Slice = env.Slice
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = env.Timeout
	}
	return scx.Open(cmd.Objects, cfg)
}

// Kernel probes the running kernel once (scx.Probe) and returns what it
// found; later calls, and the load, reuse it. Setup calls it when it must
// know the kernel before any change to the machine (e.g. to refuse a
// kernel without sched_ext before touching cpufreq knobs); a signal ends
// the wait for the kernel's BTF.
func (e *Env) Kernel(ctx context.Context) (*scx.Kernel, error) {
	if e.kernel != nil {
		return e.kernel, nil
	}
	var k *scx.Kernel
	err := Do(ctx, func() error {
		var err error
		k, err = scx.Probe(nil)
		return err
	})
	if err != nil {
		return nil, err
	}
	e.kernel = k
	return k, nil
}

// OnExit registers f to run when Run returns, after the scheduler is
// detached and the stats servers are closed: the place to undo changes
// to the machine, such as cpufreq knobs a component turned. Functions run
// in the reverse order of registration; their errors are joined to Run's.
func (e *Env) OnExit(f func() error) { e.exits = append(e.exits, f) }

func (e *Env) runExits() error {
	var errs []error
	for i := len(e.exits) - 1; i >= 0; i-- {
		errs = append(errs, e.exits[i]())
	}
	e.exits = nil
	return errors.Join(errs...)
}

// Standard flags.
const (
	defaultSlice = 20 * time.Millisecond
	socketOff    = "off"
)

// parseFlags parses args into an Env.
func parseFlags(cmd Command, args []string, stdout, stderr io.Writer) (*Env, error) {
	fs := flag.NewFlagSet(cmd.Name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := &Env{Name: cmd.Name, Stdout: stdout, Stderr: stderr}
	slice := cmd.Slice
	if slice == 0 {
		slice = defaultSlice
	}
	defSocket := socketOff
	if p, err := scxstats.DefaultPath(cmd.Name); err == nil {
		defSocket = p
	}
	fs.DurationVar(&env.Slice, "slice", slice, "time slice of a task")
	fs.DurationVar(&env.Timeout, "timeout", 0, "watchdog timeout (0: the kernel's default)")
	fs.DurationVar(&env.StatsInterval, "stats", time.Second, "interval between stats lines on stdout (0 turns them off)")
	fs.BoolVar(&env.Verbose, "v", false, "log in detail, and report every exit in full")
	fs.StringVar(&env.MetricsAddr, "metrics", "", "serve Prometheus metrics at http://`ADDR`/metrics, e.g. 127.0.0.1:9100 (:9100 serves every interface, unauthenticated)")
	fs.StringVar(&env.StatsSocket, "stats-socket", defSocket, "serve the stats on the scx_stats unix socket at `PATH`, which scxkit stats "+cmd.Name+" reads (\"off\" turns it off)")
	if cmd.Flags != nil {
		cmd.Flags(fs)
	}
	if err := Parse(fs, args); err != nil {
		return nil, err
	}
	if env.StatsSocket == socketOff {
		env.StatsSocket = ""
	}
	if err := FirstError(
		CheckSlice("slice", env.Slice),
		CheckTimeout("timeout", env.Timeout),
		CheckInterval("stats", env.StatsInterval, true, "1s"),
		checkSocket(env.StatsSocket),
	); err != nil {
		return nil, err
	}
	level := slog.LevelInfo
	if env.Verbose {
		level = slog.LevelDebug
	}
	env.Log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	return env, nil
}

// maxSocketPath is the longest path a unix socket can have: sun_path is
// 108 bytes with the terminating NUL.
const maxSocketPath = 107

func checkSocket(path string) error {
	switch {
	case path == "":
		return nil
	case len(path) > maxSocketPath:
		return Usagef("-stats-socket %s: %d bytes, a unix socket's path holds at most %d; give a shorter one, or -stats-socket off", path, len(path), maxSocketPath)
	case strings.ContainsRune(path, 0):
		return Usagef("-stats-socket %q: contains NUL", path)
	case strings.HasSuffix(path, "/"):
		return Usagef("-stats-socket %s: a directory: give the socket's path, e.g. -stats-socket /run/scx/x/stats", path)
	}
	return nil
}

// current is the scheduler attached last, for the stats servers, which
// read it from their own goroutines. Serve closes a scheduler once it
// stopped and may load another (a restart); a read of a closed one fails
// with scx.ErrClosed, which reads as "no scheduler now" until the next
// attach publishes its successor.
type current struct {
	mu sync.Mutex
	s  *scx.Scheduler
}

func (c *current) set(s *scx.Scheduler) {
	c.mu.Lock()
	c.s = s
	c.mu.Unlock()
}

// ReadSnapshot reads the scheduler attached now, if any.
func (c *current) ReadSnapshot(dst *scx.Snapshot) (bool, error) {
	c.mu.Lock()
	s := c.s
	c.mu.Unlock()
	if s == nil {
		return false, nil
	}
	if err := s.ReadSnapshot(dst); err != nil {
		if errors.Is(err, scx.ErrClosed) {
			return false, nil
		}
		return true, err
	}
	return true, nil
}

// socket is the scx_stats server, bound at the first load.
type socket struct {
	path string
	// compat, if set, is where scx's tools look by default
	// (/var/run/scx/root/stats): served too, when no live server has it.
	compat string
	src    Source
	log    *slog.Logger

	srv, compatSrv *scxstats.Server
	done           chan struct{}
}

func (s *socket) start(ctx context.Context) error {
	if s.srv != nil {
		return nil // bound at an earlier load
	}
	srv, err := NewStatsServer(s.path, s.src, s.log)
	if err != nil {
		hint := "give another path with -stats-socket, or -stats-socket off"
		if errors.Is(err, scxstats.ErrBusy) {
			hint = "is another instance running? " + hint
		}
		return fmt.Errorf("stats socket: %w (%s)", err, hint)
	}
	s.srv, s.done = srv, make(chan struct{})
	if s.compat != "" {
		// Best effort: another scheduler's live server keeps it.
		if c, err := NewStatsServer(s.compat, s.src, s.log); err != nil {
			s.log.Info("stats socket for scx tools not served", "socket", s.compat, "reason", err)
		} else {
			s.compatSrv = c
		}
	}
	go func() {
		defer close(s.done)
		if s.compatSrv != nil {
			go s.compatSrv.Serve(ctx)
		}
		if err := srv.Serve(ctx); err != nil {
			s.log.Error("stats socket", "err", err)
		}
	}()
	s.log.Info("serving stats", "socket", s.path, "scx_tools_socket", s.compat)
	return nil
}

// close stops the servers and removes their sockets.
func (s *socket) close() {
	if s.compatSrv != nil {
		s.compatSrv.Close()
	}
	if s.srv != nil {
		s.srv.Close()
		<-s.done
	}
}
