package preempt

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"
)

// Parse reads a Config from its text form: one class per line, highest
// priority first, a '#' starting a comment:
//
//	# name   members...                 policy...
//	web      cgroup=/web comm=nginx     wakeup=lower slice=3ms
//	default                             wakeup=after:2ms
//	batch    cgroup=/batch              slice=50ms tick=runon runon-max=500ms nopreempt
//	scrub    cgroup=/system.slice/scrub.service background
//
// Members: cgroup=PATH (a cgroup v2 path, descendants included) and
// comm=NAME (a task name), each as often as needed. Policy: wakeup=never,
// wakeup=lower or wakeup=after:DURATION; slice=DURATION; tick=yield or
// tick=runon; runon-max=DURATION; the flags nopreempt and background.
// Left out: wakeup=never, slice=20ms, tick=yield. Durations are Go
// durations ("500us", "3ms"). The result is validated as by
// Config.Validate; errors name the line and wrap ErrInvalid (or ErrTooBig
// for a config beyond a limit).
func Parse(text []byte) (*Config, error) {
	c := &Config{}
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	lines := map[string]int{}
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		k, err := parseClass(fields)
		if err != nil {
			err.Line = n
			return nil, err
		}
		lines[k.Name] = n
		c.Classes = append(c.Classes, *k)
	}
	if err := sc.Err(); err != nil {
		return nil, &ConfigError{Msg: fmt.Sprintf("reading the text: %v (lines are limited to 64 KiB)", err)}
	}
	if _, err := c.normalize(); err != nil {
		if ce, ok := err.(*ConfigError); ok && ce.Class != "" {
			ce.Line = lines[ce.Class]
		}
		return nil, err
	}
	return c, nil
}

// parseClass parses the fields of one line.
func parseClass(fields []string) (*Class, *ConfigError) {
	k := &Class{Name: fields[0]}
	if strings.Contains(k.Name, "=") || !nameRE.MatchString(k.Name) {
		return nil, &ConfigError{Msg: fmt.Sprintf("%q: a line starts with the class name (letters, digits, '-', '_', '.'), e.g. web cgroup=/web", k.Name)}
	}
	fail := func(format string, args ...any) *ConfigError {
		return &ConfigError{Class: k.Name, Msg: fmt.Sprintf(format, args...)}
	}
	seen := map[string]bool{}
	for _, f := range fields[1:] {
		key, val, hasVal := strings.Cut(f, "=")
		if key != "cgroup" && key != "comm" {
			if seen[key] {
				return nil, fail("%s given twice", key)
			}
			seen[key] = true
		}
		if flag := key == "nopreempt" || key == "background"; flag != !hasVal {
			if flag {
				return nil, fail("%s is a flag and takes no value", key)
			}
			return nil, fail("%q: want KEY=VALUE (cgroup, comm, wakeup, slice, tick, runon-max) or a flag (nopreempt, background)", f)
		}
		var err error
		switch key {
		case "cgroup":
			k.Cgroups = append(k.Cgroups, val)
		case "comm":
			k.Comms = append(k.Comms, val)
		case "wakeup":
			err = parseWakeup(val, &k.Policy)
		case "slice":
			k.Slice, err = positiveDuration(val)
		case "tick":
			switch val {
			case "yield":
				k.Tick = TickYield
			case "runon":
				k.Tick = TickRunOn
			default:
				err = fmt.Errorf("want yield or runon")
			}
		case "runon-max":
			k.RunOnMax, err = positiveDuration(val)
		case "nopreempt":
			k.NoPreempt = true
		case "background":
			k.Background = true
		default:
			return nil, fail("unknown key %q: want cgroup, comm, wakeup, slice, tick, runon-max, nopreempt or background", key)
		}
		if err != nil {
			return nil, fail("%s=%s: %v", key, val, err)
		}
	}
	return k, nil
}

func parseWakeup(val string, p *Policy) error {
	kind, arg, hasArg := strings.Cut(val, ":")
	switch {
	case kind == "never" && !hasArg:
		p.Wakeup = WakeupNever
	case kind == "lower" && !hasArg:
		p.Wakeup = WakeupLower
	case kind == "after" && hasArg:
		d, err := positiveDuration(arg)
		if err != nil {
			return err
		}
		p.Wakeup, p.After = WakeupAfter, d
	case kind == "after":
		return fmt.Errorf("after needs the run time, e.g. wakeup=after:2ms")
	default:
		return fmt.Errorf("want never, lower or after:DURATION")
	}
	return nil
}

// durationRE matches the syntax time.ParseDuration accepts, whatever the
// size of the numbers.
var durationRE = regexp.MustCompile(`^[-+]?(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+$`)

func positiveDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		if durationRE.MatchString(s) {
			// Well formed, so ParseDuration failed on the overflow.
			return 0, fmt.Errorf("too large: a duration is at most %v; use e.g. 500us, 3ms or 1s", time.Duration(math.MaxInt64))
		}
		return 0, fmt.Errorf("not a duration: use e.g. 500us, 3ms or 1s")
	}
	if d <= 0 {
		return 0, fmt.Errorf("must be positive")
	}
	return d, nil
}

// String returns c in the text form Parse reads; Parse(c.String())
// gives back an equal Config.
func (c *Config) String() string {
	var b strings.Builder
	for _, k := range c.Classes {
		b.WriteString(k.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// String returns the class as one line of a Config's text form.
func (k *Class) String() string {
	var b strings.Builder
	b.WriteString(k.Name)
	for _, g := range k.Cgroups {
		fmt.Fprintf(&b, " cgroup=%s", g)
	}
	for _, n := range k.Comms {
		fmt.Fprintf(&b, " comm=%s", n)
	}
	if s := k.Policy.String(); s != "" {
		b.WriteByte(' ')
		b.WriteString(s)
	}
	return b.String()
}

// String returns the policy's fields that differ from the zero Policy in
// the text form, "" for the zero Policy.
func (p *Policy) String() string {
	var f []string
	switch p.Wakeup {
	case WakeupNever:
	case WakeupAfter:
		f = append(f, "wakeup=after:"+p.After.String())
	default:
		f = append(f, "wakeup="+p.Wakeup.String())
	}
	if p.Slice != 0 {
		f = append(f, "slice="+p.Slice.String())
	}
	if p.Tick != TickYield {
		f = append(f, "tick="+p.Tick.String())
	}
	if p.RunOnMax != 0 {
		f = append(f, "runon-max="+p.RunOnMax.String())
	}
	if p.NoPreempt {
		f = append(f, "nopreempt")
	}
	if p.Background {
		f = append(f, "background")
	}
	return strings.Join(f, " ")
}
