package preempt

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Limits of the BPF side (bpf/include/scxkit/preempt.h and preempt.bpf.h).
const (
	// MaxClasses is the most classes in a Config, the default class
	// included (SK_PREEMPT_MAX_CLASSES).
	MaxClasses = 16
	// MaxMembers is the most cgroups plus task names in a Config
	// (SK_PREEMPT_MAX_MEMBERS).
	MaxMembers = 256
	// MaxCommLen is the longest task name the kernel keeps (TASK_COMM_LEN
	// less the NUL).
	MaxCommLen = 15
)

// Defaults for the zero fields of a Policy.
const (
	// DefaultSlice is the slice of a Policy with Slice 0.
	DefaultSlice = 20 * time.Millisecond
	// DefaultRunOnFactor: a TickRunOn class with RunOnMax 0 runs on for
	// at most this many slices past its first.
	DefaultRunOnFactor = 10
)

// DefaultClass is the name of the class of every task no other class
// matches. A Config may place it among its classes (to set its policy and
// priority); one without it gets it with the zero Policy, just above its
// first background class, or last.
const DefaultClass = "default"

// The package's sentinel errors. Errors wrap them with what was wrong and
// how to fix it; match them with errors.Is. ErrNotRegular (config files)
// says what the file system holds instead.
var (
	// ErrInvalid is wrapped by every error about a Config or its text
	// that cannot work: a malformed line, a bad name or policy, a cgroup
	// or task name in two classes, a missing cgroup.
	ErrInvalid = errors.New("invalid input")
	// ErrTooBig is wrapped by the errors about a Config beyond a limit of
	// the BPF side (more than MaxClasses classes or MaxMembers members,
	// more class names than a Controller can count) and about a config
	// file larger than MaxFileSize.
	ErrTooBig = errors.New("too big")
)

// Wakeup says which running tasks a waking task of a class may preempt
// when it finds no idle CPU. Whatever it says, background tasks are
// preempted by every other class, and no-preempt tasks by none.
type Wakeup uint8

const (
	// WakeupNever: its wakeups wait for a CPU to become free.
	WakeupNever Wakeup = iota
	// WakeupLower: they preempt tasks of lower-priority classes.
	WakeupLower
	// WakeupAfter: they preempt any task, of any class, that has run
	// for Policy.After since it was last switched in.
	WakeupAfter
)

var wakeupNames = []string{"never", "lower", "after"}

func (w Wakeup) String() string {
	if int(w) < len(wakeupNames) {
		return wakeupNames[w]
	}
	return fmt.Sprintf("Wakeup(%d)", w)
}

// Tick says what happens when a task of a class uses up its slice.
type Tick uint8

const (
	// TickYield: it goes back to its class's queue, behind the tasks of
	// its class with less virtual time.
	TickYield Tick = iota
	// TickRunOn: it gets another slice as long as no task of a
	// higher-priority class waits, for at most Policy.RunOnMax past its
	// first slice; tasks of its own class and lower ones wait.
	TickRunOn
)

var tickNames = []string{"yield", "runon"}

func (t Tick) String() string {
	if int(t) < len(tickNames) {
		return tickNames[t]
	}
	return fmt.Sprintf("Tick(%d)", t)
}

// Policy is how a class of tasks preempts and is preempted. The zero
// Policy: DefaultSlice, yield at its end, preempt nothing, be preempted
// by the classes that may.
type Policy struct {
	// Wakeup says whom its waking tasks preempt.
	Wakeup Wakeup
	// After is, for WakeupAfter, how long a task must have run to be
	// preempted; it must be 0 for other Wakeup values.
	After time.Duration
	// Slice is the time slice of its tasks; 0 means DefaultSlice.
	Slice time.Duration
	// Tick says what happens at the end of a slice.
	Tick Tick
	// RunOnMax bounds, for TickRunOn, how long a task runs on past its
	// first slice; 0 means DefaultRunOnFactor slices. It must be 0 for
	// TickYield.
	RunOnMax time.Duration
	// NoPreempt: its tasks are never preempted by a wakeup; they run to
	// the end of their slice (or block) while other classes wait.
	NoPreempt bool
	// Background: its tasks are preempted by the wakeups of every other
	// class, whatever their Wakeup, and its own wakeups preempt nothing.
	Background bool
}

// slice returns Slice or its default.
func (p *Policy) slice() time.Duration {
	if p.Slice == 0 {
		return DefaultSlice
	}
	return p.Slice
}

// runOnMax returns RunOnMax or its default.
func (p *Policy) runOnMax() time.Duration {
	if p.Tick != TickRunOn {
		return 0
	}
	if p.RunOnMax == 0 {
		return DefaultRunOnFactor * p.slice()
	}
	return p.RunOnMax
}

// Class is a named set of tasks and their Policy.
type Class struct {
	// Name names the class in counters and errors: letters, digits, '-',
	// '_' and '.'.
	Name string
	// Cgroups are cgroup v2 paths as /proc/PID/cgroup shows them
	// ("/batch", "/system.slice/nginx.service"). A task belongs to the
	// class of the nearest listed cgroup among its cgroup and that
	// cgroup's ancestors. They must exist when the Config is applied.
	Cgroups []string
	// Comms are task names (what /proc/PID/task/TID/comm shows, at most
	// 15 bytes). A task whose name is listed belongs to that class
	// whatever its cgroup.
	Comms []string
	Policy
}

// Config is a set of classes, highest priority first.
type Config struct {
	Classes []Class
}

// Errors about one field say so through a *ConfigError. It matches
// ErrInvalid, or ErrTooBig for a config beyond a limit of the BPF side.
type ConfigError struct {
	Class string // the class concerned, "" for the whole config
	Line  int    // the line of the config text, 0 when not parsed from text
	Msg   string // what is wrong and how to fix it

	tooBig bool // the config exceeds a limit: ErrTooBig rather than ErrInvalid
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString("preempt config")
	if e.Line > 0 {
		fmt.Fprintf(&b, " line %d", e.Line)
	}
	if e.Class != "" {
		fmt.Fprintf(&b, ": class %q", e.Class)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// Is makes errors.Is(err, ErrInvalid) true, or errors.Is(err, ErrTooBig)
// for a config beyond a limit.
func (e *ConfigError) Is(target error) bool {
	if e.tooBig {
		return target == ErrTooBig
	}
	return target == ErrInvalid
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// Validate checks c without touching the system: names, members, the
// policies and the limits. Write and Bind also check that the cgroups
// exist and that no running task falls into two classes.
func (c *Config) Validate() error {
	_, err := c.normalize()
	return err
}

// normalize validates c and returns its classes with the default class in
// place.
func (c *Config) normalize() ([]Class, error) {
	classes := slices.Clone(c.Classes)
	if !slices.ContainsFunc(classes, func(k Class) bool { return k.Name == DefaultClass }) {
		at := slices.IndexFunc(classes, func(k Class) bool { return k.Background })
		if at < 0 {
			at = len(classes)
		}
		classes = slices.Insert(classes, at, Class{Name: DefaultClass})
	}
	if len(classes) > MaxClasses {
		return nil, &ConfigError{Msg: fmt.Sprintf("%d classes, the default class included: at most %d fit (SK_PREEMPT_MAX_CLASSES); merge some", len(classes), MaxClasses), tooBig: true}
	}
	names := map[string]bool{}
	cgroups := map[string]string{}
	comms := map[string]string{}
	members := 0
	for _, k := range classes {
		fail := func(format string, args ...any) error {
			return &ConfigError{Class: k.Name, Msg: fmt.Sprintf(format, args...)}
		}
		if !nameRE.MatchString(k.Name) {
			return nil, &ConfigError{Msg: fmt.Sprintf("class name %q: use letters, digits, '-', '_' and '.'", k.Name)}
		}
		if names[k.Name] {
			return nil, fail("named twice: give each class its own name")
		}
		names[k.Name] = true
		if k.Name == DefaultClass && len(k.Cgroups)+len(k.Comms) > 0 {
			return nil, fail("takes every task no other class matches: give it no cgroup= or comm=, or rename it")
		}
		if k.Name != DefaultClass && len(k.Cgroups)+len(k.Comms) == 0 {
			return nil, fail("matches no task: give it at least one cgroup=PATH or comm=NAME")
		}
		for _, g := range k.Cgroups {
			p, err := cleanCgroup(g)
			if err != nil {
				return nil, fail("%v", err)
			}
			if other, ok := cgroups[p]; ok {
				return nil, fail("cgroup %s is also in class %q: its tasks would be in two classes; list it once", p, other)
			}
			cgroups[p] = k.Name
		}
		for _, n := range k.Comms {
			switch {
			case n == "":
				return nil, fail("empty task name in comm=")
			case len(n) > MaxCommLen:
				return nil, fail("task name %q is %d bytes: the kernel keeps at most %d; use the name /proc/PID/comm shows", n, len(n), MaxCommLen)
			case strings.ContainsAny(n, " \t\n#=\x00"):
				return nil, fail("task name %q: spaces, '#', '=' and NUL cannot be matched here", n)
			}
			if other, ok := comms[n]; ok {
				return nil, fail("task name %q is also in class %q: those tasks would be in two classes; list it once", n, other)
			}
			comms[n] = k.Name
		}
		members += len(k.Cgroups) + len(k.Comms)
		if err := k.Policy.check(); err != nil {
			return nil, fail("%v", err)
		}
	}
	if members > MaxMembers {
		return nil, &ConfigError{Msg: fmt.Sprintf("%d cgroups and task names: at most %d fit (SK_PREEMPT_MAX_MEMBERS); list fewer", members, MaxMembers), tooBig: true}
	}
	return classes, nil
}

// check validates a policy.
func (p *Policy) check() error {
	switch {
	case p.Wakeup > WakeupAfter:
		return fmt.Errorf("wakeup %v: want never, lower or after", p.Wakeup)
	case p.Tick > TickRunOn:
		return fmt.Errorf("tick %v: want yield or runon", p.Tick)
	case p.Slice < 0:
		return fmt.Errorf("slice %v: must be positive, e.g. slice=5ms", p.Slice)
	case p.Slice > 0 && p.Slice < 10*time.Microsecond:
		return fmt.Errorf("slice %v: shorter than 10µs is all scheduling overhead; use e.g. slice=1ms", p.Slice)
	case p.Slice > time.Minute:
		return fmt.Errorf("slice %v: longer than a minute would trip the watchdog; use e.g. slice=100ms", p.Slice)
	case p.Wakeup == WakeupAfter && p.After <= 0:
		return fmt.Errorf("wakeup=after needs a positive run time, e.g. wakeup=after:2ms")
	case p.Wakeup != WakeupAfter && p.After != 0:
		return fmt.Errorf("a run time (%v) only goes with wakeup=after", p.After)
	case p.RunOnMax < 0:
		return fmt.Errorf("runon-max %v: must be positive", p.RunOnMax)
	case p.Tick != TickRunOn && p.RunOnMax != 0:
		return fmt.Errorf("runon-max only goes with tick=runon")
	case p.RunOnMax > time.Minute:
		return fmt.Errorf("runon-max %v: longer than a minute would trip the watchdog", p.RunOnMax)
	case p.NoPreempt && p.Background:
		return fmt.Errorf("nopreempt and background contradict each other: background tasks are preempted by every class")
	case p.Background && p.Wakeup != WakeupNever:
		return fmt.Errorf("a background class preempts nothing: drop wakeup=%v", p.Wakeup)
	}
	return nil
}

// cleanCgroup returns a cgroup path in canonical form ("/a/b").
func cleanCgroup(g string) (string, error) {
	if g == "" {
		return "", errors.New("empty cgroup path in cgroup=")
	}
	if strings.ContainsAny(g, " \t\n#=\x00") {
		return "", fmt.Errorf("cgroup %q: spaces, '#', '=' and NUL are not supported", g)
	}
	// The suggestion is the path from the root, which never holds "..",
	// as /proc/PID/cgroup shows it.
	clean := path.Clean("/" + g)
	if slices.Contains(strings.Split(g, "/"), "..") {
		return "", fmt.Errorf("cgroup %q: \"..\" is not allowed: give the path from the cgroup2 root, as /proc/PID/cgroup shows it, e.g. %s", g, clean)
	}
	if !strings.HasPrefix(g, "/") {
		return "", fmt.Errorf("cgroup %q: give the path from the cgroup2 root, as /proc/PID/cgroup shows it, e.g. %s", g, clean)
	}
	return clean, nil
}

// Class returns the class named name, or nil.
func (c *Config) Class(name string) *Class {
	for i := range c.Classes {
		if c.Classes[i].Name == name {
			return &c.Classes[i]
		}
	}
	return nil
}
