package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/scxkit/scxkit/internal/bpfgen"
)

func genCommand() (*flag.FlagSet, func(context.Context, io.Writer, io.Writer) error) {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	var o bpfgen.Options
	var includes, defines, cflags stringList
	fs.StringVar(&o.Ident, "ident", "", "Go identifier `STEM` of the generated code: loadSTEM, STEMObjects... (default: the source's name up to its first dot)")
	fs.StringVar(&o.OutputDir, "o", "", "write the files to `DIR` (default: the source's directory)")
	fs.StringVar(&o.Package, "package", "", "Go package `NAME` of the generated files (default: $GOPACKAGE under go generate, else the directory's package, else main)")
	fs.StringVar(&o.CC, "cc", "", "the clang `COMMAND` (default: $BPF_CLANG, else "+bpfgen.DefaultCC+", else clang if it is version "+fmt.Sprint(bpfgen.MinClang)+" or newer)")
	fs.StringVar(&o.Strip, "strip", "", "the llvm-strip `COMMAND` (default: the one that goes with -cc, e.g. llvm-strip-19)")
	fs.StringVar(&o.Include, "include", "", "scxkit's bpf/include `DIR` (default: found with go list -m "+bpfgen.ModulePath+")")
	fs.Var(&includes, "I", "add `DIR` to the include path (repeatable)")
	fs.Var(&defines, "D", "define `NAME[=VALUE]` for the C preprocessor (repeatable)")
	fs.Var(&cflags, "cflag", "pass `FLAG` to clang (repeatable)")
	setUsage(fs, "scxkit gen [flags] SOURCE.bpf.c", `Gen compiles a scheduler's BPF C source for both kfunc generations (as is,
and with -D`+strings.TrimPrefix(bpfgen.V2Define, "-D")+`) into BPF objects with their Go loaders, the pair
scx.Objects takes: NAME_bpfel.o/.go and NAMEv2_bpfel.o/.go, with loaders
loadNAME and loadNAMEV2. It uses the flags scxkit's headers need (-mcpu=v3
for BPF atomics, -Wno-missing-declarations for vmlinux.h) and finds the
headers through the go command, so it works in a scheduler author's own
module as in this checkout. It checks for clang, llvm-strip and libbpf's
headers first and says how to install what is missing.

The source must start with //go:build ignore (the go command refuses C
files in a package without cgo).

In a scheduler's package, one line regenerates both objects:

	//go:generate go tool scxkit gen nest.bpf.c

after go get -tool `+bpfgen.ModulePath+`/cmd/scxkit; or without the tool
directive:

	//go:generate go run `+bpfgen.ModulePath+`/cmd/scxkit gen nest.bpf.c`)
	return fs, func(ctx context.Context, stdout, _ io.Writer) error {
		switch fs.NArg() {
		case 0:
			return usagef("no source file: name the scheduler's BPF C file")
		case 1:
		default:
			return usagef("one source file at a time, got %d: %s", fs.NArg(), strings.Join(fs.Args(), " "))
		}
		o.Source = fs.Arg(0)
		for _, d := range includes {
			o.CFlags = append(o.CFlags, "-I"+d)
		}
		for _, d := range defines {
			o.CFlags = append(o.CFlags, "-D"+d)
		}
		o.CFlags = append(o.CFlags, cflags...)
		o.Log = stdout
		_, err := bpfgen.Generate(ctx, o)
		return err
	}
}
