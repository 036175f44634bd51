// Command interactive is a sched_ext scheduler with a preemption policy per
// class of work, built from scxkit's preempt component: which wakeups
// preempt which running tasks, how long slices are, and whether a task
// yields at the end of its slice or runs on. Within a class, tasks share
// the CPUs by weighted virtual time.
//
// Classes come from a config file, which the preempt component watches and
// applies again whenever it changes, without reloading, or from -class
// flags (one line of the file each); see preempt.Parse for the syntax:
//
//	go run ./examples/interactive -config classes.conf
//	go run ./examples/interactive -class 'web cgroup=/web wakeup=lower slice=3ms' \
//		-class 'batch cgroup=/batch background slice=50ms'
//
// A bad config at start is a usage error; a bad change to the file is
// logged and the policy in force stays, also across a restart. Package
// runner gives it the rest of its command line (see `go doc ./runner`):
// every -stats interval it prints the scheduler's counters and each
// class's (preempt.runtime_ns{class=web}=..., wakeups, wait percentiles,
// preemptions made and suffered), which `scxkit stats interactive` and
// -metrics serve too.
package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/scxkit/scxkit/preempt"
	"github.com/scxkit/scxkit/runner"
	"github.com/scxkit/scxkit/scx"
)

func main() { runner.Main(command()) }

// classFlags collects repeated -class flags.
type classFlags []string

func (c *classFlags) String() string     { return strings.Join(*c, "; ") }
func (c *classFlags) Set(s string) error { *c = append(*c, s); return nil }

// command is interactive's command: the runner's standard flags and
// -config, -class and -watch.
func command() runner.Command {
	var (
		file    string
		classes classFlags
		watch   time.Duration
		last    *preempt.Controller // built by the last Setup
	)
	return runner.Command{
		Name:    "interactive",
		Objects: scx.Objects{Base: loadInteractive, V2: loadInteractiveV2},
		Slice:   preempt.DefaultSlice,
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&file, "config", "", "`FILE` of classes, one per line, highest priority first (a regular file of at most 1 MiB); watched for changes")
			fs.Var(&classes, "class", "a class, as one line of the config file (repeatable)")
			fs.DurationVar(&watch, "watch", preempt.DefaultWatchInterval, "how often to look for changes of -config")
		},
		// Again before every restart: the policy in force then is the
		// file as it is now, or the last one applied if it went bad.
		Setup: func(_ context.Context, env *runner.Env) (scx.Config, error) {
			if err := runner.CheckInterval("watch", watch, false, "1s"); err != nil {
				return scx.Config{}, err
			}
			if file != "" && len(classes) > 0 {
				return scx.Config{}, runner.Usagef("-config and -class: give the classes in one place (the file is watched, the flags are not)")
			}
			cfg, err := loadConfig(file, classes)
			if err != nil && last != nil {
				env.Log.Warn("config not applied at the restart, keeping the one in force", "err", err)
				cfg, err = last.Config(), nil
			}
			if err != nil {
				return scx.Config{}, runner.Usage(err)
			}
			ctl, err := preempt.New(cfg, &preempt.Options{ConfigFile: file, WatchInterval: watch})
			if err != nil {
				return scx.Config{}, err
			}
			last = ctl
			return scx.Config{Components: []scx.Component{ctl}}, nil
		},
	}
}

// loadConfig reads the classes of -config, or of the -class flags, and
// checks that their cgroups exist, so that a bad config is refused before
// anything is loaded. (ParseFile never blocks, a FIFO included.)
func loadConfig(file string, classes []string) (*preempt.Config, error) {
	var cfg *preempt.Config
	var err error
	source := "-class"
	if file != "" {
		source = "-config " + file
		cfg, err = preempt.ParseFile(file)
	} else {
		var text []byte
		for _, c := range classes {
			if strings.Contains(c, "\n") {
				return nil, fmt.Errorf("-class %q: one class per flag, without newlines", c)
			}
			text = append(append(text, '\n'), c...)
		}
		cfg, err = preempt.Parse(text)
	}
	if err == nil {
		err = cfg.CheckCgroups()
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	return cfg, nil
}
