package scx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// ErrInvalid is wrapped by every error about a bad input: a Config value,
// a component's Needs, an object that lacks what the Config or a
// component needs.
var ErrInvalid = errors.New("invalid input")

// OpsFlag names a bit of sched_ext_ops.flags, as the kernel's enum
// scx_ops_flags spells it. Its value is read from the running kernel's BTF
// at Load, so a flag the kernel does not know is an error there.
type OpsFlag string

// The sched_ext_ops flags scxkit knows. Which of them a kernel accepts
// depends on its version; see the kernel's sched-ext documentation.
const (
	// KeepBuiltinIdle keeps the builtin idle tracking when ops.update_idle
	// is implemented.
	KeepBuiltinIdle OpsFlag = "SCX_OPS_KEEP_BUILTIN_IDLE"
	// EnqLast passes the last task of a CPU to ops.enqueue with
	// SCX_ENQ_LAST instead of letting it keep running.
	EnqLast OpsFlag = "SCX_OPS_ENQ_LAST"
	// EnqExiting passes exiting tasks to ops.enqueue.
	EnqExiting OpsFlag = "SCX_OPS_ENQ_EXITING"
	// SwitchPartial schedules only tasks with SCHED_EXT policy instead of
	// every fair task.
	SwitchPartial OpsFlag = "SCX_OPS_SWITCH_PARTIAL"
	// EnqMigrationDisabled passes migration-disabled tasks to ops.enqueue.
	EnqMigrationDisabled OpsFlag = "SCX_OPS_ENQ_MIGRATION_DISABLED"
	// AllowQueuedWakeup lets the kernel queue remote wakeups (ttwu_queue).
	AllowQueuedWakeup OpsFlag = "SCX_OPS_ALLOW_QUEUED_WAKEUP"
	// BuiltinIdlePerNode keeps one builtin idle mask per NUMA node.
	BuiltinIdlePerNode OpsFlag = "SCX_OPS_BUILTIN_IDLE_PER_NODE"
)

var knownFlags = []OpsFlag{KeepBuiltinIdle, EnqLast, EnqExiting, SwitchPartial,
	EnqMigrationDisabled, AllowQueuedWakeup, BuiltinIdlePerNode}

// Kernel limits that Validate checks before anything is loaded.
const (
	// MaxNameLen is the longest ops name the kernel accepts
	// (SCX_OPS_NAME_LEN minus the terminating NUL).
	MaxNameLen = 127
	// MaxTimeout is the kernel's upper bound for the watchdog timeout.
	MaxTimeout = 30 * time.Second
	// MaxExitDumpLen is the size of the dump buffer in exit.bpf.h
	// (SK_EXIT_DUMP_LEN); a longer kernel dump would be cut there.
	MaxExitDumpLen = 32768
)

// Config holds what the loader sets in struct sched_ext_ops and in the
// object's read-only globals before load. Only Name is required.
type Config struct {
	// Name identifies the scheduler in /sys/kernel/sched_ext/root/ops and
	// in kernel messages: letters, digits, '_' and '.', at most MaxNameLen
	// bytes together with NameSuffix.
	Name string
	// NameSuffix is appended to Name, e.g. "_fifo" to tell two modes of one
	// scheduler apart.
	NameSuffix string
	// Timeout is the watchdog timeout: a runnable task that does not run
	// for this long gets the scheduler ejected. Zero means the kernel's
	// default (30s). Whole milliseconds, at most MaxTimeout.
	Timeout time.Duration
	// Flags are ORed into sched_ext_ops.flags.
	Flags []OpsFlag
	// DispatchMaxBatch bounds how many tasks one ops.dispatch may insert;
	// zero means the kernel's default.
	DispatchMaxBatch uint32
	// ExitDumpLen is the size of the debug dump the kernel writes when the
	// scheduler fails; zero means the kernel's default. At most
	// MaxExitDumpLen.
	ExitDumpLen uint32
	// Slice is the time slice sk_slice() returns in BPF. Zero means the
	// kernel's SCX_SLICE_DFL; otherwise at least one microsecond.
	Slice time.Duration
	// Constants sets read-only globals (const volatile) of the object by
	// name before load, e.g. {"fifo": true}. Values must match the C type's
	// size (bool, uint32, uint64, ...); Go's int, uint and other types of no
	// fixed size are refused with an error that names the sized types.
	Constants map[string]any
	// Components are the reusable parts the scheduler is composed of, in
	// the order they bind. Open checks what each needs against the object
	// and against the others; see Component.
	Components []Component
	// OmitCallbacks names callbacks the object implements that this run
	// leaves out of sched_ext_ops ("quiescent", "set_cpumask"): the kernel
	// then never calls them. Every callback in sched_ext_ops costs a BPF
	// program call at each event, even one that does nothing, so a
	// scheduler that composes a component only on some machines (a load
	// balancer where there is more than one LLC) omits the callbacks that
	// serve only that component where it runs without it. Open refuses a
	// callback the object does not implement, ops.exit (scx reads the exit
	// info it records), and one a component of Components needs.
	OmitCallbacks []string
}

// OpsName returns the name that goes into sched_ext_ops.name.
func (c Config) OpsName() string { return c.Name + c.NameSuffix }

// Validate reports the first problem with c, as an error wrapping
// ErrInvalid that names the field and how to fix it. It needs no
// kernel; Load checks what depends on the kernel.
func (c *Config) Validate() error {
	name := c.OpsName()
	switch {
	case c.Name == "":
		return configErr("Name is empty: name the scheduler, e.g. Config{Name: \"simple\"}")
	case len(name) > MaxNameLen:
		return configErr("name %q is %d bytes long: the kernel allows at most %d", name, len(name), MaxNameLen)
	}
	if i := strings.IndexFunc(name, func(r rune) bool { return !validNameRune(r) }); i >= 0 {
		return configErr("name %q has invalid character %q at byte %d: use letters, digits, '_' and '.'", name, name[i], i)
	}
	switch {
	case c.Timeout < 0:
		return configErr("Timeout is negative (%v): use zero for the kernel default", c.Timeout)
	case c.Timeout > MaxTimeout:
		return configErr("Timeout %v exceeds the kernel's maximum of %v", c.Timeout, MaxTimeout)
	case c.Timeout%time.Millisecond != 0:
		return configErr("Timeout %v is not a whole number of milliseconds", c.Timeout)
	case c.ExitDumpLen > MaxExitDumpLen:
		return configErr("ExitDumpLen %d exceeds %d, the dump buffer of exit.bpf.h", c.ExitDumpLen, MaxExitDumpLen)
	case c.Slice < 0:
		return configErr("Slice is negative (%v): use zero for the kernel's default slice", c.Slice)
	case c.Slice > 0 && c.Slice < time.Microsecond:
		return configErr("Slice %v is shorter than 1µs: a task would be preempted before it ran", c.Slice)
	}
	for _, f := range c.Flags {
		if !slices.Contains(knownFlags, f) {
			return configErr("unknown flag %q: known flags are %s", string(f), flagList())
		}
	}
	for name, v := range c.Constants {
		if name == "" {
			return configErr("Constants has an empty name")
		}
		if err := checkFixedSize(v); err != nil {
			return configErr("Constants[%q] = %v (%T): %v", name, v, v, err)
		}
	}
	for _, cb := range c.OmitCallbacks {
		switch {
		case cb == "":
			return configErr("OmitCallbacks has an empty name: name callbacks as sched_ext_ops does, e.g. \"quiescent\"")
		case strings.HasPrefix(cb, "ops."):
			return configErr("OmitCallbacks names %q: drop the \"ops.\" prefix (%q)", cb, strings.TrimPrefix(cb, "ops."))
		case cb == "exit":
			return configErr("OmitCallbacks names ops.exit: scx needs it to read why the scheduler exited (sk_exit_record)")
		}
	}
	return nil
}

// checkFixedSize refuses a constant's value whose size in memory Go does
// not fix (int, uint, uintptr, string, slices, nil): it cannot be matched
// with the size of a C global. The error names the sized types to use.
func checkFixedSize(v any) error {
	if v != nil && binary.Size(v) >= 0 {
		return nil
	}
	switch v.(type) {
	case int, uint, uintptr:
		return fmt.Errorf("%T has no fixed size: use the sized type of the C global, e.g. int32 or uint32 for an s32 or u32, int64 or uint64 for an s64 or u64", v)
	}
	return fmt.Errorf("%T has no fixed size: use bool, a sized integer (uint32, int64, ...), or an array or struct of them, matching the C global", v)
}

func validNameRune(r rune) bool {
	return r == '_' || r == '.' || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') || ('0' <= r && r <= '9')
}

func flagList() string {
	s := make([]string, len(knownFlags))
	for i, f := range knownFlags {
		s[i] = string(f)
	}
	return strings.Join(s, ", ")
}

func configErr(format string, args ...any) error {
	return fmt.Errorf("%w: config: %s", ErrInvalid, fmt.Sprintf(format, args...))
}
