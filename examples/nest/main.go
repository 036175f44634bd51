// Command nest is a core-packing sched_ext scheduler: work runs on a
// small primary nest of CPUs that grows by one idle CPU when waking tasks
// find every nest CPU busy -impatience times in a row or more tasks wait
// than the nest has CPUs, and
// CPUs idle for -shrink-after leave it,
// so that a light load keeps few CPUs busy and a heavy one uses them all.
// It is built on scxkit's CPU sets (cpuset.bpf.h, read here with package
// cpuset), idle-CPU claiming within a set, per-CPU idle times (package
// idle) and a periodic BPF timer (timer.bpf.h). Its stats show the nest's
// size (primary_cpus) beside its counters.
//
//	go run ./examples/nest -stats 1s
//	go run ./examples/nest -shrink-after 50ms -min-nest 2
package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/scxkit/scxkit/cpuset"
	"github.com/scxkit/scxkit/idle"
	"github.com/scxkit/scxkit/runner"
	"github.com/scxkit/scxkit/scx"
)

func main() { runner.Main(command()) }

// Defaults of nest's flags.
const (
	defaultShrinkAfter = 10 * time.Millisecond
	defaultSweep       = 5 * time.Millisecond
)

// command is nest's command: the runner's standard flags and its own.
func command() runner.Command {
	var (
		shrinkAfter, sweep time.Duration
		minNest            uint
		impatience         uint64
	)
	return runner.Command{
		Name:    "nest",
		Objects: scx.Objects{Base: loadNest, V2: loadNestV2},
		Flags: func(fs *flag.FlagSet) {
			fs.DurationVar(&shrinkAfter, "shrink-after", defaultShrinkAfter, "a primary CPU idle this long goes back to the reserve")
			fs.DurationVar(&sweep, "sweep", defaultSweep, "how often to look for primary CPUs idle for -shrink-after")
			fs.UintVar(&minNest, "min-nest", 1, "the primary nest keeps at least this many CPUs")
			fs.Uint64Var(&impatience, "impatience", 2, "grow the nest at the Nth wakeup in a row that finds every nest CPU busy (1: at the first)")
		},
		Check: func() error {
			if shrinkAfter <= 0 {
				return runner.Usagef("-shrink-after %v: want a positive duration, e.g. 20ms", shrinkAfter)
			}
			if sweep < 100*time.Microsecond || sweep > time.Second {
				return runner.Usagef("-sweep %v: want 100µs to 1s (the timer runs every -sweep)", sweep)
			}
			if minNest < 1 || minNest > 1<<16 {
				return runner.Usagef("-min-nest %d: want 1 or more", minNest)
			}
			if impatience < 1 {
				return runner.Usagef("-impatience %d: want 1 or more", impatience)
			}
			return nil
		},
		Setup: func(context.Context, *runner.Env) (scx.Config, error) {
			return scx.Config{
				Constants: map[string]any{
					"shrink_after_ns": uint64(shrinkAfter),
					"sweep_ns":        uint64(sweep),
					"min_primary":     uint32(minNest),
					"impatience":      impatience,
				},
				Components: []scx.Component{idle.New()},
			}, nil
		},
		OnAttach: func(_ context.Context, env *runner.Env, s *scx.Scheduler) error {
			primary, err := cpuset.Read(s.Collection().Variables["primary"])
			if err != nil {
				return fmt.Errorf("read the primary nest: %w", err)
			}
			env.Log.Info("nest starts", "primary", primary.String())
			return nil
		},
	}
}
