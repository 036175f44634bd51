package runner

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"time"
)

// UsageError is a bad command line: an unknown flag, a missing argument
// or a flag value out of range. ExitCode gives it status 2.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Usage returns err as a UsageError; nil stays nil.
func Usage(err error) error {
	if err == nil {
		return nil
	}
	var u *UsageError
	if errors.As(err, &u) {
		return err
	}
	return &UsageError{Err: err}
}

// Usagef formats a UsageError.
func Usagef(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// ExitCode is the exit status for the result of a command's run: 0 for
// nil, flag.ErrHelp and a stop by a signal (Run returns nil then), 2 for
// a UsageError and 1 for any other error.
func ExitCode(err error) int {
	var u *UsageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &u):
		return 2
	}
	return 1
}

// Exit ends the process with ExitCode(err), printing err first, prefixed
// with the command's name, unless it is nil or flag.ErrHelp.
func Exit(name string, err error) {
	code := ExitCode(err)
	if code != 0 {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
	}
	os.Exit(code)
}

// Parse parses args with fs, which must use flag.ContinueOnError, and
// refuses positional arguments. Its errors are UsageErrors, except
// flag.ErrHelp, which it returns as is.
func Parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return Usage(err)
	}
	if fs.NArg() > 0 {
		return Usagef("unexpected argument %q: %s takes only flags (see -h)", fs.Arg(0), fs.Name())
	}
	return nil
}

// Stopped reports whether err says that ctx ended the run: ctx is done
// and err wraps its error. A command stopped by a signal before its
// scheduler attached exits with status 0, as one stopped later does.
func Stopped(ctx context.Context, err error) bool {
	return err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err())
}

// Do runs f and returns its error, or ctx's error as soon as ctx is done,
// leaving f to finish in the background: for blocking work that cannot
// take a ctx (reading a file that may be a FIFO, the kernel's BTF) before
// a command exits.
func Do(ctx context.Context, f func() error) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Checks of flag values. Each returns nil or a UsageError naming the
// flag and its value and giving an example of a good one.

// CheckInterval checks an interval of periodic work: at least 1ms (a
// shorter one would keep a CPU busy with the work), or 0 if zeroOff,
// which then means off.
func CheckInterval(name string, d time.Duration, zeroOff bool, example string) error {
	switch {
	case d == 0 && zeroOff:
		return nil
	case d < 0 && zeroOff:
		return Usagef("-%s %v: must not be negative (0 turns it off), e.g. -%s %s", name, d, name, example)
	case d <= 0:
		return Usagef("-%s %v: must be positive, e.g. -%s %s", name, d, name, example)
	case d < time.Millisecond:
		return Usagef("-%s %v: shorter than 1ms would keep a CPU busy; use e.g. -%s %s", name, d, name, example)
	}
	return nil
}

// MaxSlice is the longest slice the runner accepts: the kernel's longest
// watchdog timeout. A task holding a CPU longer than that could starve
// others into the watchdog.
const MaxSlice = 30 * time.Second

// CheckSlice checks a time slice: from 1µs (as scx.Config requires) to
// MaxSlice.
func CheckSlice(name string, d time.Duration) error {
	switch {
	case d <= 0:
		return Usagef("-%s %v: must be positive, e.g. -%s 20ms", name, d, name)
	case d < time.Microsecond:
		return Usagef("-%s %v: shorter than 1µs; use e.g. -%s 20ms", name, d, name)
	case d > MaxSlice:
		return Usagef("-%s %v: longer than %v, the longest watchdog timeout, would let one task starve others; use e.g. -%s 20ms", name, d, MaxSlice, name)
	}
	return nil
}

// CheckTimeout checks a watchdog timeout: 0 for the kernel's default,
// else whole milliseconds up to MaxSlice (scx.MaxTimeout).
func CheckTimeout(name string, d time.Duration) error {
	switch {
	case d == 0:
		return nil
	case d < 0:
		return Usagef("-%s %v: must not be negative (0 is the kernel's default), e.g. -%s 5s", name, d, name)
	case d%time.Millisecond != 0:
		return Usagef("-%s %v: must be whole milliseconds, e.g. -%s 5s", name, d, name)
	case d > MaxSlice:
		return Usagef("-%s %v: the kernel allows at most %v, e.g. -%s 5s", name, d, MaxSlice, name)
	}
	return nil
}

// CheckFloat checks that f is a finite number in [lo, hi], with lo or hi
// excluded if openLo or openHi.
func CheckFloat(name string, f, lo, hi float64, openLo, openHi bool, example string) error {
	ok := !math.IsNaN(f) && !math.IsInf(f, 0) &&
		(f > lo || !openLo && f == lo) && (f < hi || !openHi && f == hi)
	if ok {
		return nil
	}
	l, h := "[", "]"
	if openLo {
		l = "("
	}
	if openHi {
		h = ")"
	}
	return Usagef("-%s %v: must be a number in %s%v, %v%s, e.g. -%s %s", name, f, l, lo, hi, h, name, example)
}

// CheckUint32 checks that v fits the uint32 the BPF side keeps it in.
func CheckUint32(name string, v uint64, example string) error {
	if v > math.MaxUint32 {
		return Usagef("-%s %d: must be at most %d, e.g. -%s %s", name, v, uint64(math.MaxUint32), name, example)
	}
	return nil
}

// FirstError returns the first non-nil error of errs: a command checks
// its flags with
//
//	return runner.FirstError(
//		runner.CheckSlice("hold", hold),
//		runner.CheckFloat("push", push, 0, math.Inf(1), true, true, "0.1"),
//	)
func FirstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
