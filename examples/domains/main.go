// Command domains is a multi-domain sched_ext scheduler composed from
// scxkit's components: topology finds the domains (one per LLC, or the
// CPU masks given with -domains), dsq gives each a DSQ ordered by weighted
// virtual time, and lb balances load between them from the tasks' duty
// cycles, handing migrations to the BPF side every -interval. Package
// runner gives it its command line and stats (`go doc ./runner`); -v logs
// every balancing round.
//
//	go run ./examples/domains -interval 500ms -stats 1s
//	go run ./examples/domains -domains 0-1,4-5:2-3,6-7
package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/scxkit/scxkit/dsq"
	"github.com/scxkit/scxkit/lb"
	"github.com/scxkit/scxkit/runner"
	"github.com/scxkit/scxkit/scx"
	"github.com/scxkit/scxkit/topology"
)

func main() { runner.Main(command()) }

// command is domains' command: the runner's standard flags and the
// balancer's.
func command() runner.Command {
	var (
		interval         time.Duration
		push, pull, minL float64
		steal            uint64
		domains          string
	)
	return runner.Command{
		Name:    "domains",
		Objects: scx.Objects{Base: loadDomains, V2: loadDomainsV2},
		Flags: func(fs *flag.FlagSet) {
			fs.DurationVar(&interval, "interval", time.Second, "load balancing interval")
			fs.Float64Var(&push, "push", 0.10, "a domain pushes load when above the average by this fraction")
			fs.Float64Var(&pull, "pull", 0.10, "a domain pulls load when below the average by this fraction")
			fs.Float64Var(&minL, "min-load", 0.05, "tasks lighter than this fraction of the average load per CPU are not moved")
			fs.Uint64Var(&steal, "steal", 4, "an idle CPU steals from another domain only when it holds more tasks than this")
			fs.StringVar(&domains, "domains", "", "domains as colon-separated cpulists, e.g. 0-3:4-7 (default: one per LLC)")
		},
		// Runs again before a restart (after CPU hotplug): the domains
		// are found afresh.
		Setup: func(context.Context, *runner.Env) (scx.Config, error) {
			if err := runner.FirstError(
				runner.CheckInterval("interval", interval, false, "1s"),
				// lb.Options: a push threshold above 0, a pull
				// threshold in (0, 1) (a domain cannot be below the
				// average by all of it).
				runner.CheckFloat("push", push, 0, math.Inf(1), true, true, "0.1"),
				runner.CheckFloat("pull", pull, 0, 1, true, true, "0.1"),
				runner.CheckFloat("min-load", minL, 0, 1, true, false, "0.05"),
				runner.CheckUint32("steal", steal, "4"),
			); err != nil {
				return scx.Config{}, err
			}
			opts := &dsq.Options{Kind: dsq.PerLLC, StealMinQueued: uint32(steal)}
			if domains != "" {
				opts.Kind = dsq.Custom
				for _, part := range strings.Split(domains, ":") {
					m, err := topology.ParseCPUList(part)
					if err == nil && m.Empty() {
						err = fmt.Errorf("domain %q has no CPUs", part)
					}
					if err != nil {
						return scx.Config{}, runner.Usagef("-domains %q: %v: give colon-separated cpulists, e.g. -domains 0-3:4-7", domains, err)
					}
					opts.Domains = append(opts.Domains, m)
				}
			}
			topo, err := topology.Discover(nil)
			if err != nil {
				return scx.Config{}, err
			}
			layout, err := dsq.New(topo, opts)
			if err != nil {
				return scx.Config{}, err
			}
			bal, err := lb.New(lb.DomainsOf(layout), &lb.Options{Interval: interval, PushThreshold: push, PullThreshold: pull, MinTaskLoad: minL})
			if err != nil {
				return scx.Config{}, err
			}
			return scx.Config{Components: []scx.Component{layout, bal}}, nil
		},
	}
}
