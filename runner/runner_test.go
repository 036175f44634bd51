package runner

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/scxkit/scxkit/scx"
)

// errNoObject stops a test command at scx.Open, before any kernel work.
var errNoObject = errors.New("test: no BPF object")

// testCommand is a command whose own flag is -n and whose Setup records
// the Env; its Open fails, so Run never reaches the kernel.
func testCommand(got **Env, n *int) Command {
	noObject := func() (*ebpf.CollectionSpec, error) { return nil, errNoObject }
	return Command{
		Name:    "test",
		Objects: scx.Objects{Base: noObject, V2: noObject},
		Flags:   func(fs *flag.FlagSet) { fs.IntVar(n, "n", 1, "a number") },
		Setup: func(_ context.Context, env *Env) (scx.Config, error) {
			*got = env
			if *n < 0 {
				return scx.Config{}, Usagef("-n %d: must not be negative, e.g. -n 1", *n)
			}
			if *n == 99 {
				return scx.Config{}, errors.New("setup failed")
			}
			return scx.Config{}, nil
		},
	}
}

// run runs cmd with args and returns Run's error, the exit status and
// stderr.
func run(t *testing.T, cmd Command, args ...string) (error, int, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := Run(context.Background(), cmd, args, &stdout, &stderr)
	if stdout.Len() > 0 {
		t.Errorf("%q: stdout %q, want nothing", args, stdout.String())
	}
	return err, ExitCode(err), stderr.String()
}

func TestRunFlags(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	long := "/" + strings.Repeat("x", maxSocketPath)
	for _, c := range []struct {
		args []string
		code int
		want string // in the error, or stderr for status 0
	}{
		{[]string{"-nope"}, 2, "flag provided but not defined: -nope"},
		{[]string{"extra"}, 2, `unexpected argument "extra"`},
		{[]string{"-slice", "0"}, 2, "-slice 0s: must be positive"},
		{[]string{"-slice", "1h"}, 2, "-slice 1h0m0s: longer than 30s"},
		{[]string{"-stats", "-1s"}, 2, "-stats -1s: must not be negative (0 turns it off)"},
		{[]string{"-stats", "1ns"}, 2, "-stats 1ns: shorter than 1ms"},
		{[]string{"-timeout", "1500us"}, 2, "-timeout 1.5ms: must be whole milliseconds"},
		{[]string{"-timeout", "31s"}, 2, "-timeout 31s: the kernel allows at most 30s"},
		{[]string{"-n", "x"}, 2, `invalid value "x" for flag -n`},
		{[]string{"-n", "-1"}, 2, "-n -1: must not be negative"},
		{[]string{"-n", "99"}, 1, "setup failed"},
		{[]string{"-metrics", "nope"}, 2, `-metrics "nope": address nope: missing port in address`},
		{[]string{"-metrics", "127.0.0.1:"}, 2, `-metrics "127.0.0.1:": no port`},
		{[]string{"-metrics", "127.0.0.1:99999"}, 2, `port "99999": not a port number`},
		{[]string{"-metrics", busy.Addr().String()}, 2, "address already in use"},
		{[]string{"-stats-socket", long}, 2, "-stats-socket " + long + ": 108 bytes, a unix socket's path holds at most 107"},
		{[]string{"-stats-socket", "/run/x/"}, 2, "-stats-socket /run/x/: a directory"},
		{nil, 1, errNoObject.Error()},
		{[]string{"-h"}, 0, "-stats-socket PATH"},
	} {
		var env *Env
		var n int
		err, code, stderr := run(t, testCommand(&env, &n), c.args...)
		msg := stderr
		if err != nil {
			msg = err.Error()
		}
		if code != c.code || !strings.Contains(msg, c.want) {
			t.Errorf("%q: status %d, %q; want status %d and %q\nstderr:\n%s", c.args, code, msg, c.code, c.want, stderr)
		}
	}
}

// TestRunHelp: -h lists the standard flags with their defaults and the
// command's own.
func TestRunHelp(t *testing.T) {
	var env *Env
	var n int
	cmd := testCommand(&env, &n)
	cmd.Slice = 3 * time.Millisecond
	err, code, stderr := run(t, cmd, "-h")
	if err != nil || code != 0 {
		t.Fatalf("-h: %v, status %d", err, code)
	}
	for _, want := range []string{"-slice duration", "(default 3ms)", "-timeout", "-stats duration", "(default 1s)", "-v", "-metrics ADDR",
		"-stats-socket PATH", `(default "/var/run/scx/test/stats")`, "scxkit stats test", "-n int", "a number"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("-h lacks %q:\n%s", want, stderr)
		}
	}
	if env != nil {
		t.Error("-h ran Setup")
	}
}

// TestRunEnv checks what Setup gets.
func TestRunEnv(t *testing.T) {
	var env *Env
	var n int
	_, _, _ = run(t, testCommand(&env, &n))
	want := Env{Name: "test", Slice: 20 * time.Millisecond, StatsInterval: time.Second, StatsSocket: "/var/run/scx/test/stats"}
	if env == nil {
		t.Fatal("Setup did not run")
	}
	if got := (Env{Name: env.Name, Slice: env.Slice, Timeout: env.Timeout, StatsInterval: env.StatsInterval, Verbose: env.Verbose,
		MetricsAddr: env.MetricsAddr, StatsSocket: env.StatsSocket}); !cmp.Equal(got, want, cmpopts.IgnoreUnexported(Env{})) {
		t.Errorf("defaults: %+v, want %+v", got, want)
	}
	if env.Log == nil || env.Stdout == nil || env.Stderr == nil || env.Log.Enabled(context.Background(), -4) {
		t.Errorf("defaults: log %v (debug off), stdout %v, stderr %v", env.Log, env.Stdout, env.Stderr)
	}

	sock := filepath.Join(t.TempDir(), "s")
	_, _, stderr := run(t, testCommand(&env, &n), "-slice", "5ms", "-timeout", "2s", "-stats", "0", "-v", "-metrics", ":0", "-stats-socket", sock, "-n", "7")
	if env.Slice != 5*time.Millisecond || env.Timeout != 2*time.Second || env.StatsInterval != 0 || !env.Verbose ||
		env.MetricsAddr != ":0" || env.StatsSocket != sock || n != 7 {
		t.Errorf("flags: %+v, n %d", env, n)
	}
	if !env.Log.Enabled(context.Background(), -4) {
		t.Error("-v: debug logging off")
	}
	if !strings.Contains(stderr, "level=WARN") || !strings.Contains(stderr, "every network interface") {
		t.Errorf("-metrics :0 did not warn that every interface is served:\n%s", stderr)
	}
	if _, _, _ = run(t, testCommand(&env, &n), "-stats-socket", "off"); env.StatsSocket != "" {
		t.Errorf("-stats-socket off: %q, want \"\"", env.StatsSocket)
	}
	if _, _, _ = run(t, testCommand(&env, &n), "-stats-socket", ""); env.StatsSocket != "" {
		t.Errorf("-stats-socket \"\": %q, want \"\"", env.StatsSocket)
	}
}

// TestRunStoppedInSetup: a signal (here ctx) while Setup blocks is a clean
// stop, with nothing attached.
func TestRunStoppedInSetup(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	started, block := make(chan struct{}), make(chan struct{})
	defer close(block)
	cmd := Command{
		Name: "test",
		Setup: func(ctx context.Context, env *Env) (scx.Config, error) {
			close(started)
			err := Do(ctx, func() error { <-block; return nil })
			return scx.Config{}, fmt.Errorf("read the config: %w", err)
		},
	}
	var stderr bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cmd, nil, io.Discard, &stderr) }()
	<-started
	cancel()
	if err := <-done; err != nil || !strings.Contains(stderr.String(), "stopped before attaching") {
		t.Errorf("Run = %v, want nil and a log of the stop; stderr:\n%s", err, stderr.String())
	}
}

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
	u := Usagef("x")
	if Usage(u) != u {
		t.Error("Usage wrapped a UsageError again")
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
		{CheckInterval("i", 0, true, "1s"), ""},
		{CheckInterval("i", time.Millisecond, false, "1s"), ""},
		{CheckInterval("i", 0, false, "1s"), "-i 0s: must be positive, e.g. -i 1s"},
		{CheckInterval("i", -time.Second, true, "1s"), "-i -1s: must not be negative (0 turns it off)"},
		{CheckInterval("i", time.Microsecond, true, "1s"), "-i 1µs: shorter than 1ms"},
		{CheckSlice("s", time.Microsecond), ""},
		{CheckSlice("s", MaxSlice), ""},
		{CheckSlice("s", MaxSlice+1), "longer than 30s"},
		{CheckSlice("s", -1), "must be positive"},
		{CheckSlice("s", 999), "shorter than 1µs"},
		{CheckTimeout("t", 0), ""},
		{CheckTimeout("t", 5*time.Second), ""},
		{CheckTimeout("t", 30*time.Second+time.Millisecond), "at most 30s"},
		{CheckTimeout("t", time.Microsecond), "whole milliseconds"},
		{CheckTimeout("t", -time.Second), "must not be negative"},
		{CheckFloat("f", 0.5, 0, 1, true, true, "0.1"), ""},
		{CheckFloat("f", 1, 0, 1, true, false, "0.1"), ""},
		{CheckFloat("f", 1, 0, 1, true, true, "0.1"), "-f 1: must be a number in (0, 1), e.g. -f 0.1"},
		{CheckFloat("f", 0, 0, 1, false, true, "0.1"), ""},
		{CheckFloat("f", math.NaN(), 0, inf, true, true, "0.1"), "-f NaN: must be a number in (0, +Inf)"},
		{CheckFloat("f", inf, 0, inf, true, false, "0.1"), "-f +Inf"},
		{CheckUint32("u", math.MaxUint32, "4"), ""},
		{CheckUint32("u", math.MaxUint32+1, "4"), "-u 4294967296: must be at most 4294967295, e.g. -u 4"},
		{FirstError(nil, CheckSlice("a", 0), CheckSlice("b", 0)), "-a 0s"},
		{FirstError(nil, nil), ""},
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

// TestOnExit checks that what Setup registers runs when Run returns, also
// when the run fails before the kernel, last registered first, with the
// errors joined to Run's.
func TestOnExit(t *testing.T) {
	var order []int
	errUndo := errors.New("undo failed")
	noObject := func() (*ebpf.CollectionSpec, error) { return nil, errNoObject }
	cmd := Command{
		Name:    "test",
		Objects: scx.Objects{Base: noObject, V2: noObject},
		Setup: func(_ context.Context, env *Env) (scx.Config, error) {
			env.OnExit(func() error { order = append(order, 1); return nil })
			env.OnExit(func() error { order = append(order, 2); return errUndo })
			return scx.Config{}, nil
		},
	}
	err, code, _ := run(t, cmd)
	if !errors.Is(err, errNoObject) || !errors.Is(err, errUndo) || code != 1 {
		t.Errorf("Run = %v (status %d); want the open error and the undo error joined, status 1", err, code)
	}
	if !cmp.Equal(order, []int{2, 1}) {
		t.Errorf("exits ran in order %v, want [2 1]", order)
	}
}

// TestEnvKernel checks that Env.Kernel probes once and reports a kernel
// without sched_ext as scx.ErrNotSupported; on a sched_ext kernel it
// returns the same *Kernel twice.
func TestEnvKernel(t *testing.T) {
	env := &Env{}
	k1, err := env.Kernel(context.Background())
	if err != nil {
		if !errors.Is(err, scx.ErrNotSupported) && !errors.Is(err, scx.ErrPermission) {
			t.Fatalf("Kernel: %v; want a kernel, ErrNotSupported or ErrPermission", err)
		}
		return
	}
	if k2, err := env.Kernel(context.Background()); err != nil || k2 != k1 {
		t.Errorf("second Kernel = %p, %v; want the first, %p", k2, err, k1)
	}
}

// TestCheck checks that Command.Check runs after parsing and before Setup,
// and that its UsageError ends the run with status 2.
func TestCheck(t *testing.T) {
	var env *Env
	var n int
	cmd := testCommand(&env, &n)
	cmd.Check = func() error {
		if n == 7 {
			return Usagef("-n 7: unlucky, e.g. -n 1")
		}
		return nil
	}
	err, code, _ := run(t, cmd, "-n", "7")
	if code != 2 || err == nil || !strings.Contains(err.Error(), "-n 7: unlucky") || env != nil {
		t.Errorf("Run -n 7 = %v (status %d), Setup ran: %v; want the usage error, status 2, no Setup", err, code, env != nil)
	}
}
