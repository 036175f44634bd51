// Command responsive is a general-purpose sched_ext scheduler that needs
// no configuration, composed from scxkit's components:
//
//   - behavior finds latency-sensitive tasks by their short run bursts and
//     lets their wakeups preempt tasks that have been running; wakeups from
//     a waker about to sleep (pipes, sockets) never preempt, and may wait
//     on the waker's CPU for it to sleep;
//   - topology places a wakeup on an idle CPU near its previous one, a
//     whole idle core first;
//   - dsq queues everything else in weighted virtual time order, on one
//     DSQ per CPU (-queues cpu, the default): a task waits on the CPU it
//     last ran on, idle CPUs steal nearest first, and an idle CPU found at
//     enqueue takes the task at once; while tasks wait, slices end at the
//     first tick after -min-slice, so that nothing waits a whole slice per
//     task ahead;
//   - with -queues llc, one DSQ per LLC instead, and lb balances load
//     between the LLCs from the tasks' duty cycles, on a machine with more
//     than one.
//
// Per-CPU queues are the default because a CPU that takes a task queued
// by another CPU has to move it between run queues under both locks, at
// every dispatch: with a DSQ per LLC that is most dispatches, and bench
// --profile measured 87µs per ops.dispatch with 4 vCPUs (13µs with a
// DSQ per CPU), and 0.64 against 0.85 of the default scheduler's
// hackbench time.
//
// Package runner gives it its command line and stats (`go doc ./runner`).
// `scxkit bench responsive` compares it with the kernel's default
// scheduler on standard benchmarks.
//
//	go run ./examples/responsive -stats 1s
package main

import (
	"context"
	"flag"
	"math"
	"time"

	"github.com/scxkit/scxkit/behavior"
	"github.com/scxkit/scxkit/dsq"
	"github.com/scxkit/scxkit/lb"
	"github.com/scxkit/scxkit/runner"
	"github.com/scxkit/scxkit/scx"
	"github.com/scxkit/scxkit/topology"
)

func main() { runner.Main(command()) }

// command is responsive's command: the runner's standard flags, the
// balancer's and the behavior component's.
func command() runner.Command {
	var (
		interval           time.Duration
		steal              uint64
		shortBurst, minRun time.Duration
		minSlice           time.Duration
		noPreempt, noAff   bool
		push, pull         float64
		queues             string
	)
	return runner.Command{
		Name:    "responsive",
		Objects: scx.Objects{Base: loadResponsive, V2: loadResponsiveV2},
		Flags: func(fs *flag.FlagSet) {
			fs.DurationVar(&interval, "interval", time.Second, "load balancing interval between LLCs (-queues llc)")
			fs.Float64Var(&push, "push", 0.10, "an LLC pushes load when above the average by this fraction")
			fs.Float64Var(&pull, "pull", 0.10, "an LLC pulls load when below the average by this fraction")
			fs.StringVar(&queues, "queues", "cpu", "`cpu`: a DSQ per CPU, idle CPUs steal; llc: a DSQ per LLC, lb balances between LLCs")
			fs.Uint64Var(&steal, "steal", 0, "an idle CPU steals from another DSQ only when it holds more tasks than this")
			fs.DurationVar(&shortBurst, "short-burst", behavior.DefaultShortBurst, "tasks whose run bursts average less than this are latency-sensitive")
			fs.DurationVar(&minRun, "victim-min-run", behavior.DefaultVictimMinRun, "a task may be preempted by a latency-sensitive wakeup once it ran this long since it woke")
			fs.DurationVar(&minSlice, "min-slice", 3*time.Millisecond, "while tasks wait, a task's slice ends at the first tick after it ran this long (0: whole slices)")
			fs.BoolVar(&noPreempt, "no-preempt", false, "never preempt for latency-sensitive wakeups (for comparison)")
			fs.BoolVar(&noAff, "no-affine", false, "never place a sync wakeup on the waker's CPU (for comparison)")
		},
		Check: func() error {
			return runner.FirstError(
				runner.CheckInterval("interval", interval, false, "1s"),
				runner.CheckFloat("push", push, 0, math.Inf(1), true, true, "0.1"),
				runner.CheckFloat("pull", pull, 0, 1, true, true, "0.1"),
				runner.CheckUint32("steal", steal, "2"),
				checkDuration("short-burst", shortBurst, "500us"),
				checkDuration("victim-min-run", minRun, "1ms"),
				checkMinSlice(minSlice),
				checkQueues(queues),
			)
		},
		// Runs again before a restart (after CPU hotplug): the LLCs are
		// found afresh.
		Setup: func(context.Context, *runner.Env) (scx.Config, error) {
			topo, err := topology.Discover(nil)
			if err != nil {
				return scx.Config{}, err
			}
			kind := dsq.PerCPU
			if queues == "llc" {
				kind = dsq.PerLLC
			}
			layout, err := dsq.New(topo, &dsq.Options{Kind: kind, StealMinQueued: uint32(steal)})
			if err != nil {
				return scx.Config{}, err
			}
			tracker, err := behavior.New(&behavior.Options{ShortBurst: shortBurst, VictimMinRun: minRun, NoPreempt: noPreempt, NoAffine: noAff})
			if err != nil {
				return scx.Config{}, err
			}
			cfg := scx.Config{
				Components: []scx.Component{topo, layout, tracker},
				Constants:  map[string]any{"min_slice_ns": uint64(minSlice)},
			}
			// A DSQ per CPU, or one LLC: lb does not run. The BPF side
			// skips its hooks (the constant balance), and the callbacks
			// that serve only lb are left out, so that the kernel does
			// not call them at every sleep and affinity change.
			if kind != dsq.PerLLC || len(layout.DSQs) <= 1 {
				cfg.OmitCallbacks = []string{"runnable", "quiescent", "set_cpumask", "disable"}
			} else {
				bal, err := lb.New(lb.DomainsOf(layout), &lb.Options{Interval: interval, PushThreshold: push, PullThreshold: pull})
				if err != nil {
					return scx.Config{}, err
				}
				cfg.Components = append(cfg.Components, bal)
				cfg.Constants["balance"] = true
			}
			return cfg, nil
		},
	}
}

// checkQueues refuses a -queues other than cpu and llc.
func checkQueues(q string) error {
	if q != "cpu" && q != "llc" {
		return runner.Usagef("-queues %q: give cpu (a DSQ per CPU) or llc (a DSQ per LLC, balanced by lb)", q)
	}
	return nil
}

// checkMinSlice refuses a -min-slice below 0 or above 1s.
func checkMinSlice(d time.Duration) error {
	if d < 0 || d > time.Second {
		return runner.Usagef("-min-slice %v: give 0 (whole slices) or a duration up to 1s, e.g. -min-slice 3ms", d)
	}
	return nil
}

// checkDuration refuses a duration flag outside (0, 1s].
func checkDuration(name string, d time.Duration, example string) error {
	if d <= 0 || d > time.Second {
		return runner.Usagef("-%s %v: give a duration above 0 and at most 1s, e.g. -%s %s", name, d, name, example)
	}
	return nil
}
