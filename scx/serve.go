package scx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
)

// ServeOptions steers Serve. A nil *ServeOptions uses the defaults.
type ServeOptions struct {
	// Load steers every load; its Context defaults to Serve's ctx, so that
	// the wait for the verifier ends with it.
	Load *LoadOptions
	Run  *RunOptions
	// OnLoad, if set, is called after every load, before attach: the
	// place to fill globals and maps that ops.init reads, such as a
	// topology or DSQ layout.
	OnLoad func(*Scheduler) error
	// OnAttach, if set, is called after every successful attach.
	OnAttach func(*Scheduler) error
	// Reopen, if set, is called before every restart to build the Spec
	// afresh: the place to rediscover the machine (a restart follows CPU
	// hotplug) and rebuild components from it. Without it, a restart
	// loads the same Spec again, and its components bind again.
	Reopen func(ctx context.Context) (*Spec, error)
	// MaxRestarts bounds how often a restartable exit reloads the
	// scheduler; zero means 8. A scheduler that keeps asking to be
	// restarted is treated as failed after that.
	MaxRestarts int
}

// Serve is the whole life of a scheduler: it loads spec, attaches it, runs
// it until ctx is done or the kernel removes it, and detaches it. An exit
// that asks for a restart (ExitInfo.ShouldRestart, e.g. a CPU went offline)
// loads and attaches the scheduler again, reading the kernel afresh. The
// results are those of the last Run.
//
// Serve looks at ctx between its steps too: once ctx is done it loads
// nothing more and attaches nothing, so that a scheduler told to stop
// (a SIGTERM while the verifier runs) is never attached. It then returns
// a nil *ExitInfo and an error wrapping ctx's error (context.Canceled for
// a canceled ctx), which a command treats as a clean stop.
func Serve(ctx context.Context, spec *Spec, opts *ServeOptions) (*ExitInfo, error) {
	if opts == nil {
		opts = &ServeOptions{}
	}
	maxRestarts := opts.MaxRestarts
	if maxRestarts <= 0 {
		maxRestarts = 8
	}
	log := slog.Default()
	if opts.Load != nil && opts.Load.Logger != nil {
		log = opts.Load.Logger
	}
	for restarts := 0; ; restarts++ {
		info, err := serveOnce(ctx, spec, opts)
		if !errors.Is(err, ErrRestart) || ctx.Err() != nil {
			return info, err
		}
		if restarts == maxRestarts {
			return info, fmt.Errorf("serve %s: gave up after %d restarts: %w", spec.cfg.OpsName(), restarts, err)
		}
		log.Info("sched_ext: restarting scheduler", "scheduler", spec.cfg.OpsName(), "reason", info.String())
		if opts.Reopen != nil {
			next, err := opts.Reopen(ctx)
			if err != nil {
				return info, fmt.Errorf("serve %s: reopen for restart: %w", spec.cfg.OpsName(), err)
			}
			spec = next
		}
	}
}

func serveOnce(ctx context.Context, spec *Spec, opts *ServeOptions) (*ExitInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("serve %s: stopped before load: %w", spec.cfg.OpsName(), context.Cause(ctx))
	}
	// The load ends with ctx (a SIGINT while the verifier runs), unless
	// the caller bounded it otherwise.
	lo := LoadOptions{}
	if opts.Load != nil {
		lo = *opts.Load
	}
	if lo.Context == nil {
		lo.Context = ctx
	}
	sched, err := spec.Load(&lo)
	if err != nil {
		return nil, err
	}
	defer sched.Close()
	if opts.OnLoad != nil {
		if err := opts.OnLoad(sched); err != nil {
			return nil, fmt.Errorf("serve %s: on load: %w", sched.Name(), err)
		}
	}
	// Loading can take seconds (the verifier, OnLoad): a stop asked for
	// meanwhile must not attach the scheduler.
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("serve %s: stopped before attach: %w", sched.Name(), context.Cause(ctx))
	}
	if err := sched.Attach(); err != nil {
		var exit *ExitError
		if errors.As(err, &exit) {
			return exit.Info, err
		}
		return nil, err
	}
	if opts.OnAttach != nil {
		if err := opts.OnAttach(sched); err != nil {
			return nil, fmt.Errorf("serve %s: on attach: %w", sched.Name(), err)
		}
	}
	return sched.Run(ctx, opts.Run)
}
