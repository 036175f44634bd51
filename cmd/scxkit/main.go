// Command scxkit is the sched_ext scheduler author's and operator's tool:
// it reports what the running kernel offers sched_ext schedulers, writes
// and compiles a new scheduler module, runs a scheduler (an example of this
// repository or the author's own) under a workload, in a virtual machine
// when the machine's own kernel has no sched_ext, compares schedulers, and
// reads a running scheduler's stats.
//
// Usage:
//
//	scxkit status [--json]
//	scxkit new [--dir DIR] [--module PATH] [--replace DIR] [--version V] NAME
//	scxkit gen [--ident STEM] [-o DIR] [-I DIR]... [-D NAME]... SOURCE.bpf.c
//	scxkit vm [--kernel NAME] [--cpus N] [--workload KIND] [--seconds S] [--ops NAME] PACKAGE [-- ARGS...]
//	scxkit demo [--kernel NAME] [--cpus N] [--example NAME] [--fifo] [--seconds S]
//	scxkit topology [--sysfs DIR] [--json] [--llc-cores N]
//	scxkit latency [--cgroup PATH]... [--interval D] [--duration D] [--json] [--listen ADDR]
//	scxkit stats [--socket PATH] [--json] [--meta] NAME
//	scxkit bench [--kernel NAME] [--cpus N] [--reps N] [--duration D] [--benchmarks LIST] [--json FILE] [--chart FILE] [--peer NAME]... [SCHEDULER...]
//	scxkit help [command]
//
// status prints what scx.Probe and scx.ReadStatus see: the kernel release,
// whether it has sched_ext and, if so, which scheduler is attached, the
// sysfs counters, the kfunc generation, the members of struct sched_ext_ops
// and the values of key SCX_ enumerators. With --json it prints one JSON
// object instead, with every SCX_ enumerator. A kernel without sched_ext is
// a normal answer (supported=false, exit status 0); failing to find out is
// an error (exit status 1).
//
// new writes a scheduler module called NAME that builds and passes its VM
// test as written (BPF source, a go:generate line, a main on package
// runner, a test on packages vmtest, scxtest and workload), runs go mod
// tidy and compiles its BPF source.
//
// gen compiles a scheduler's BPF C source for both kfunc generations into
// objects and Go loaders (scx.Objects), with the flags scxkit's headers need
// and the headers found through the go command; it names what to install
// when clang, llvm-strip or libbpf's headers are missing. In a scheduler's
// package: //go:generate go tool scxkit gen nest.bpf.c.
//
// vm builds PACKAGE, a scheduler's main package in the current module, and
// runs it with ARGS on a pinned sched_ext kernel in qemu (or on this host
// if it has sched_ext), under a workload; it prints the scheduler's output,
// the kernel's view and per-CPU busy time, then stops it and checks that
// every task is back on the fair class.
//
// demo runs examples/simple under a bounded, self-checking workload and
// compares the workload's time under simple with its time under the
// kernel's default scheduler. When this machine's kernel lacks sched_ext,
// as most do, demo boots the newest pinned sched_ext kernel of package
// vmtest in qemu and runs there; with sched_ext on the host (and as root)
// it runs on the host. It builds examples/simple with the go command, so it
// runs from a scxkit checkout:
//
//	go run ./cmd/scxkit demo
//	scripts/demo            # installs qemu and friends first (scripts/setup)
//
// bench runs hackbench, cyclictest under CPU hogs and stress-ng's
// context-switch test under the kernel's default scheduler and under each
// SCHEDULER (an example's name, built from the checkout, or a scheduler
// program), in one VM unless this host has sched_ext, alternating their
// order over the repetitions; it prints medians with confidence intervals
// and ratios against the default scheduler, and writes a JSON file and a
// chart (package bench). With --peer NAME it also runs the kernel's own
// tools/sched_ext schedulers (scx_simple, scx_flatcg, ...), built on first
// use from Debian's linux-source-7.3 package and cached.
//
// topology prints the CPU topology that package topology discovers, from
// this machine or from an unpacked sysfs snapshot (--sysfs), as a tree or
// as JSON.
//
// latency profiles scheduling latency per cgroup with package latency's BPF
// tracing programs, on any kernel with BTF, and prints per-interval
// queueing-delay histograms as text or JSON lines; --listen 127.0.0.1:9100
// serves them as Prometheus metrics (an address without a host, such as
// :9100, serves every network interface, unauthenticated: it warns).
//
// stats prints the stats of a running scheduler, read from its scx_stats
// socket, /var/run/scx/NAME/stats: schedulers built with package runner
// serve theirs there, and so do sched-ext/scx's Rust schedulers.
//
// Exit status: 0 on success, 1 on failure, 2 for a usage error.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/scxkit/scxkit/vmtest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, a second one kills the process as usual.
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit statuses.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// command is a subcommand: its flags and what it does with them.
type command struct {
	name    string
	summary string
	hidden  bool // not listed in the usage
	// operands: the command takes arguments after its flags, which it
	// reads from its flag set's Args.
	operands bool
	// flags returns the command's flag set and a function that runs the
	// command once the flags are parsed.
	flags func() (*flag.FlagSet, func(ctx context.Context, stdout, stderr io.Writer) error)
}

// commands lists the subcommands in the order the usage shows them.
var commands = []*command{
	{name: "status", summary: "show what the running kernel offers sched_ext schedulers", flags: statusCommand},
	{name: "demo", summary: "run an example scheduler under a workload, in a VM if this kernel lacks sched_ext", flags: demoCommand},
	{name: "vm", summary: "run your own scheduler (a main package of your module) under a workload, in a VM", flags: vmCommand, operands: true},
	{name: "topology", summary: "print the CPU topology (packages, nodes, LLCs, cores, CPUs)", flags: topologyCommand},
	{name: "latency", summary: "profile scheduling latency per cgroup with BPF tracing (root)", flags: latencyCommand},
	{name: "stats", summary: "print a running scheduler's stats from its scx_stats socket", flags: statsCommand, operands: true},
	{name: "new", summary: "write a new scheduler module that builds and passes its VM test as written", flags: newCommand, operands: true},
	{name: "gen", summary: "compile a scheduler's BPF C source into objects and Go loaders, for both kfunc generations", flags: genCommand, operands: true},
	{name: "bench", summary: "compare schedulers with hackbench, cyclictest and stress-ng, in a VM", flags: benchCommand, operands: true},
	{name: guestCommand, hidden: true, flags: guestCommandFlags},
	{name: benchGuestCommand, hidden: true, flags: benchGuestCommandFlags},
	{name: vmGuestCommand, hidden: true, flags: vmGuestCommandFlags, operands: true},
}

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// usage writes the command's overall usage to w.
func usage(w io.Writer) {
	fmt.Fprint(w, `scxkit inspects the kernel's sched_ext support, writes, compiles and runs
sched_ext schedulers (in a VM when this kernel lacks sched_ext), compares
them, and reads their stats.

Usage:

	scxkit <command> [flags]

Commands:

`)
	for _, c := range commands {
		if !c.hidden {
			fmt.Fprintf(w, "\t%-8s %s\n", c.name, c.summary)
		}
	}
	fmt.Fprint(w, `	help     show this help, or a command's flags: scxkit help demo

demo and bench build this repository's examples: run them from a scxkit
checkout (go run ./cmd/scxkit demo). new, gen and vm work in any module,
e.g. go tool scxkit vm ./cmd/mysched once the module has the tool
(go get -tool github.com/scxkit/scxkit/cmd/scxkit).
`)
}

// run runs the command line args (without the program name) and returns the
// exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		if name == "help" && len(args) > 1 {
			c := lookup(args[1])
			if c == nil || c.hidden {
				fmt.Fprintf(stderr, "scxkit help: unknown command %q\n\n", args[1])
				usage(stderr)
				return exitUsage
			}
			if len(args) > 2 {
				fmt.Fprintf(stderr, "scxkit help: unexpected argument %q: help takes one command, as in scxkit help %s\n\n", args[2], args[1])
				usage(stderr)
				return exitUsage
			}
			fs, _ := c.flags()
			fs.SetOutput(stdout)
			fs.Usage()
			return exitOK
		}
		usage(stdout)
		return exitOK
	}
	c := lookup(name)
	if c == nil {
		fmt.Fprintf(stderr, "scxkit: unknown command %q\n\n", name)
		usage(stderr)
		return exitUsage
	}
	fs, do := c.flags()
	if code, ok := parse(fs, args[1:], stdout, stderr); !ok {
		return code
	}
	err := do(ctx, stdout, stderr)
	var usageErr *usageError
	var setupErr *vmtest.SetupError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &usageErr):
		fmt.Fprintf(stderr, "scxkit %s: %v\n", name, err)
		fs.SetOutput(stderr)
		fs.Usage()
		return exitUsage
	case errors.As(err, &setupErr):
		// It names what is missing and the fix: print it as it is.
		fmt.Fprintln(stderr, setupErr)
		return exitFail
	default:
		fmt.Fprintf(stderr, "scxkit %s: %v\n", name, err)
		return exitFail
	}
}

// parse parses a command's flags. -h prints the command's usage on stdout;
// a bad flag prints the error and the usage on stderr. ok is false when the
// command must not run, and code is then the exit status.
func parse(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (code int, ok bool) {
	var buf bytes.Buffer
	fs.SetOutput(&buf)
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		stdout.Write(buf.Bytes())
		return exitOK, false
	case err != nil:
		stderr.Write(buf.Bytes())
		return exitUsage, false
	case fs.NArg() > 0 && !takesOperands(fs.Name()):
		fmt.Fprintf(stderr, "scxkit %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		fs.SetOutput(stderr)
		fs.Usage()
		return exitUsage, false
	}
	fs.SetOutput(stderr)
	return exitOK, true
}

// takesOperands reports whether the command called name takes arguments.
func takesOperands(name string) bool {
	c := lookup(name)
	return c != nil && c.operands
}

// usageError is a bad flag value found after parsing; run prints it with
// the command's usage and exits with status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// setUsage gives fs a usage function that prints synopsis, then about, then
// the flags.
func setUsage(fs *flag.FlagSet, synopsis, about string) {
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: %s\n\n%s\n", synopsis, about)
		var n int
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprint(w, "\nFlags:\n")
			fs.PrintDefaults()
		}
	}
}
