// Package cli holds what the example schedulers' command lines share: the
// checks of flag values, whose errors name the flag and say how to fix
// it; the usage error, which makes a command exit with status 2 like the
// flag package's own errors; and the exit itself.
//
// It is the older form of package runner, which now holds all of it (and
// the rest of an example's main: flags, serving, stats): every function
// here calls runner's, and a UsageError of either package is the other's.
// Examples still on cli check every flag before any kernel work, in this
// order:
//
//	signal.NotifyContext  (first: a SIGTERM is never ignored)
//	parse and check flags (usage errors, status 2)
//	read files the flags name, without blocking
//	probe the kernel, load, attach (scx.Serve, which honours ctx)
package cli

import (
	"context"
	"flag"
	"time"

	"github.com/scxkit/scxkit/runner"
)

// UsageError is a bad command line: an unknown flag, a missing argument
// or a flag value out of range. Exit gives it status 2.
type UsageError = runner.UsageError

// Usage returns err as a UsageError; nil stays nil.
func Usage(err error) error { return runner.Usage(err) }

// Usagef formats a UsageError.
func Usagef(format string, args ...any) error { return runner.Usagef(format, args...) }

// ExitCode is the exit status for the result of a command's run: 0 for
// nil, flag.ErrHelp and a stop by a signal (ctx's cancellation), 2 for a
// UsageError and 1 for any other error.
func ExitCode(err error) int { return runner.ExitCode(err) }

// Exit ends the process with ExitCode(err), printing err first, prefixed
// with the command's name, unless it is nil or flag.ErrHelp.
func Exit(name string, err error) { runner.Exit(name, err) }

// Parse parses args with fs, which must use flag.ContinueOnError, and
// refuses positional arguments. Its errors are UsageErrors, except
// flag.ErrHelp, which it returns as is.
func Parse(fs *flag.FlagSet, args []string) error { return runner.Parse(fs, args) }

// Stopped reports whether err says that ctx ended the run: ctx is done
// and err wraps its error.
func Stopped(ctx context.Context, err error) bool { return runner.Stopped(ctx, err) }

// Do runs f and returns its error, or ctx's error as soon as ctx is done,
// leaving f to finish in the background.
func Do(ctx context.Context, f func() error) error { return runner.Do(ctx, f) }

// Checks of flag values. Each returns nil or a UsageError naming the
// flag and its value and giving an example of a good one.

// Interval is runner.CheckInterval.
func Interval(name string, d time.Duration, zeroOff bool, example string) error {
	return runner.CheckInterval(name, d, zeroOff, example)
}

// MaxSlice is the longest slice the examples accept: runner.MaxSlice.
const MaxSlice = runner.MaxSlice

// Slice is runner.CheckSlice.
func Slice(name string, d time.Duration) error { return runner.CheckSlice(name, d) }

// Timeout is runner.CheckTimeout.
func Timeout(name string, d time.Duration) error { return runner.CheckTimeout(name, d) }

// Float is runner.CheckFloat.
func Float(name string, f, lo, hi float64, openLo, openHi bool, example string) error {
	return runner.CheckFloat(name, f, lo, hi, openLo, openHi, example)
}

// Uint32 is runner.CheckUint32.
func Uint32(name string, v uint64, example string) error { return runner.CheckUint32(name, v, example) }
