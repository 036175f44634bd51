// Command simple is a sched_ext scheduler with one global queue, ordered by
// weighted virtual time (or FIFO with -fifo), built from scxkit's parts.
// It attaches on start, prints its counters every -stats interval, serves
// them to `scxkit stats simple` (and with -metrics to Prometheus), and
// detaches on SIGINT or SIGTERM, leaving every task on the fair class.
// Package runner gives it its command line: see `go doc ./runner`.
//
//	go run ./examples/simple -stats 1s
package main

import (
	"context"
	"flag"

	"github.com/scxkit/scxkit/runner"
	"github.com/scxkit/scxkit/scx"
)

func main() { runner.Main(command()) }

// command is simple's command: the runner's standard flags and -fifo.
func command() runner.Command {
	var fifo bool
	return runner.Command{
		Name:    "simple",
		Objects: scx.Objects{Base: loadSimple, V2: loadSimpleV2},
		Flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&fifo, "fifo", false, "run tasks in arrival order instead of by weighted virtual time")
		},
		Setup: func(context.Context, *runner.Env) (scx.Config, error) {
			cfg := scx.Config{Constants: map[string]any{"fifo": fifo}}
			if fifo {
				cfg.NameSuffix = "_fifo"
			}
			return cfg, nil
		},
	}
}
