package main

import (
	"context"
	"flag"
	"io"
	"strings"

	"github.com/scxkit/scxkit/internal/scaffold"
)

func newCommand() (*flag.FlagSet, func(context.Context, io.Writer, io.Writer) error) {
	fs := flag.NewFlagSet("new", flag.ContinueOnError)
	var o scaffold.Options
	fs.StringVar(&o.Dir, "dir", "", "create the module in `DIR`, which must not exist or be empty (default: ./NAME)")
	fs.StringVar(&o.Module, "module", "", "the module `PATH` (default: NAME)")
	fs.StringVar(&o.Replace, "replace", "", "use the scxkit checkout in `DIR` (a replace directive) instead of a published version")
	fs.StringVar(&o.Version, "version", "", "require scxkit `VERSION` (default: this program's)")
	fs.BoolVar(&o.SkipTidy, "no-tidy", false, "do not run go mod tidy (no module proxy here)")
	fs.BoolVar(&o.SkipGenerate, "no-gen", false, "do not compile the BPF source (no clang here): run go generate ./... later")
	setUsage(fs, "scxkit new [flags] NAME", `New writes a complete sched_ext scheduler module called NAME: its BPF C
source (NAME.bpf.c, a shared queue ordered by weighted virtual time), the
go:generate line that compiles it for both kfunc generations (scxkit gen),
a Go main on package runner (flags, stats, Prometheus, clean detach), and
a VM test that attaches it, runs a workload and checks the kernel's view.
It then runs go mod tidy and compiles the BPF source, so that the module
builds and its test passes as written:

	scxkit new -replace ~/src/scxkit nest && cd nest
	go test ./...                 # boots a sched_ext kernel in qemu
	go tool scxkit vm . -- -stats 1s

NAME is lowercase letters and digits, starting with a letter.`)
	return fs, func(ctx context.Context, stdout, _ io.Writer) error {
		switch fs.NArg() {
		case 0:
			return usagef("no name: name the scheduler, e.g. scxkit new nest")
		case 1:
		default:
			return usagef("one name, got %d: %s", fs.NArg(), strings.Join(fs.Args(), " "))
		}
		o.Name = fs.Arg(0)
		o.Log = stdout
		return scaffold.Create(ctx, o)
	}
}
