package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strings"
	"testing"
	"time"
)

func TestExitCode(t *testing.T) {
	for _, c := range []struct {
		err  error
		want int
	}{
		{nil, 0},
		{flag.ErrHelp, 0},
		{Usagef("-x 1: bad"), 2},
		{fmt.Errorf("wrapped: %w", Usagef("-x 1: bad")), 2},
		{Usage(errors.New("bad")), 2},
		{errors.New("load failed"), 1},
	} {
		if got := ExitCode(c.err); got != c.want {
			t.Errorf("ExitCode(%v) = %d, want %d", c.err, got, c.want)
		}
	}
	if Usage(nil) != nil {
		t.Error("Usage(nil) is not nil")
	}
}

func TestParse(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Int("n", 0, "")
	if err := Parse(fs, []string{"-n", "x"}); ExitCode(err) != 2 {
		t.Errorf("bad value: %v, want a usage error", err)
	}
	if err := Parse(fs, []string{"-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
	if err := Parse(fs, []string{"-n", "1", "arg"}); ExitCode(err) != 2 || !strings.Contains(err.Error(), `unexpected argument "arg"`) {
		t.Errorf("argument: %v", err)
	}
	if err := Parse(fs, []string{"-n", "1"}); err != nil {
		t.Errorf("good: %v", err)
	}
}

func TestChecks(t *testing.T) {
	inf := math.Inf(1)
	for _, c := range []struct {
		err  error
		want string // "" for no error
	}{
		{Interval("i", 0, true, "1s"), ""},
		{Interval("i", time.Millisecond, false, "1s"), ""},
		{Interval("i", 0, false, "1s"), "-i 0s: must be positive, e.g. -i 1s"},
		{Interval("i", -time.Second, true, "1s"), "-i -1s: must not be negative (0 turns it off)"},
		{Interval("i", time.Microsecond, true, "1s"), "-i 1µs: shorter than 1ms"},
		{Slice("s", time.Microsecond), ""},
		{Slice("s", MaxSlice), ""},
		{Slice("s", MaxSlice+1), "longer than 30s"},
		{Slice("s", -1), "must be positive"},
		{Slice("s", 999), "shorter than 1µs"},
		{Timeout("t", 0), ""},
		{Timeout("t", 5*time.Second), ""},
		{Timeout("t", 30*time.Second+time.Millisecond), "at most 30s"},
		{Timeout("t", time.Microsecond), "whole milliseconds"},
		{Float("f", 0.5, 0, 1, true, true, "0.1"), ""},
		{Float("f", 1, 0, 1, true, false, "0.1"), ""},
		{Float("f", 1, 0, 1, true, true, "0.1"), "-f 1: must be a number in (0, 1), e.g. -f 0.1"},
		{Float("f", 0, 0, 1, true, true, "0.1"), "-f 0: must be a number in (0, 1)"},
		{Float("f", 0, 0, 1, false, true, "0.1"), ""},
		{Float("f", math.NaN(), 0, inf, true, true, "0.1"), "-f NaN: must be a number in (0, +Inf)"},
		{Float("f", inf, 0, inf, true, false, "0.1"), "-f +Inf"},
		{Float("f", -inf, -inf, 0, false, false, "0.1"), "-f -Inf"},
		{Uint32("u", math.MaxUint32, "4"), ""},
		{Uint32("u", math.MaxUint32+1, "4"), "-u 4294967296: must be at most 4294967295, e.g. -u 4"},
	} {
		switch {
		case c.want == "" && c.err != nil:
			t.Errorf("unexpected error %v", c.err)
		case c.want != "" && (c.err == nil || !strings.Contains(c.err.Error(), c.want) || ExitCode(c.err) != 2):
			t.Errorf("error %v, want a usage error containing %q", c.err, c.want)
		}
	}
}

func TestStoppedAndDo(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	if Stopped(ctx, fmt.Errorf("serve: %w", context.Canceled)) {
		t.Error("Stopped before ctx is done")
	}
	if err := Do(ctx, func() error { return io.EOF }); err != io.EOF {
		t.Errorf("Do = %v, want f's error", err)
	}
	cancel()
	if !Stopped(ctx, fmt.Errorf("serve: %w", context.Canceled)) {
		t.Error("not Stopped after cancel")
	}
	if Stopped(ctx, errors.New("load failed")) || Stopped(ctx, nil) {
		t.Error("Stopped for another error")
	}
	block := make(chan struct{})
	defer close(block)
	if err := Do(ctx, func() error { <-block; return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("Do with a done ctx = %v, want context.Canceled", err)
	}
}
