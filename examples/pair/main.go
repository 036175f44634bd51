// Command pair is a sched_ext scheduler that isolates cgroups from each
// other on SMT cores: the hardware threads of a core only run tasks of one
// -isolate cgroup at a time (or, together, tasks of no isolated cgroup),
// built from scxkit's smt component. A thread with nothing compatible to
// run stays idle; that forced idle is charged to the cgroup holding the
// core and shown with every stats line (smt.forced_idle_ns{class=...}),
// with each cgroup's run time, core takeovers and violations (which
// should stay 0). Package runner gives it its command line: see
// `go doc ./runner`.
//
//	go run ./examples/pair -isolate /a,/b -stats 1s
package main

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/scxkit/scxkit/runner"
	"github.com/scxkit/scxkit/scx"
	"github.com/scxkit/scxkit/smt"
	"github.com/scxkit/scxkit/topology"
)

func main() { runner.Main(command()) }

// command is pair's command: the runner's standard flags, -isolate,
// -cgroup-root and -hold.
func command() runner.Command {
	var (
		isolate string
		opts    smt.Options
	)
	return runner.Command{
		Name:    "pair",
		Objects: scx.Objects{Base: loadPair, V2: loadPairV2},
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&isolate, "isolate", "", "comma-separated cgroups to isolate from each other, e.g. /a,/b (required)")
			fs.StringVar(&opts.Root, "cgroup-root", smt.DefaultCgroupRoot, "where cgroup v2 is mounted")
			fs.DurationVar(&opts.Hold, "hold", 40*time.Millisecond, "how long a cgroup keeps a core while another waits for it")
		},
		// Every (re)start reads the machine and the cgroups afresh.
		Setup: func(ctx context.Context, env *runner.Env) (scx.Config, error) {
			opts.Isolate = nil
			for _, p := range strings.Split(isolate, ",") {
				if p = strings.TrimSpace(p); p != "" {
					opts.Isolate = append(opts.Isolate, p)
				}
			}
			switch {
			case len(opts.Isolate) == 0:
				return scx.Config{}, runner.Usagef("-isolate: name at least one cgroup, e.g. -isolate /a,/b")
			case !filepath.IsAbs(opts.Root):
				return scx.Config{}, runner.Usagef("-cgroup-root %q: give the absolute path where cgroup v2 is mounted, e.g. -cgroup-root %s", opts.Root, smt.DefaultCgroupRoot)
			case opts.Hold <= 0:
				return scx.Config{}, runner.Usagef("-hold %v: must be positive, e.g. -hold 40ms", opts.Hold)
			case opts.Hold > runner.MaxSlice:
				return scx.Config{}, runner.Usagef("-hold %v: longer than %v, the longest watchdog timeout, would starve the cgroups waiting for a core; use e.g. -hold 40ms", opts.Hold, runner.MaxSlice)
			}
			// The form of the paths (no ".." leaving the cgroup root)
			// is a usage error; a missing cgroup is found by New.
			if err := opts.Validate(); err != nil {
				return scx.Config{}, runner.Usagef("-isolate: %v", err)
			}
			topo, err := topology.Discover(nil)
			if err != nil {
				return scx.Config{}, err
			}
			isolation, err := smt.New(topo, &opts)
			if err != nil {
				return scx.Config{}, err
			}
			var names []string
			for _, c := range isolation.Classes[1:] {
				names = append(names, fmt.Sprintf("%s(id %d)", c.Path, c.CgroupID))
			}
			env.Log.Info("isolating", "cgroups", strings.Join(names, ","))
			return scx.Config{Components: []scx.Component{isolation}}, nil
		},
	}
}
