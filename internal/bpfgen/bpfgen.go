// Package bpfgen compiles a scheduler's BPF C source into what scx.Objects
// takes: one object per kfunc generation (without and with
// -DSCXKIT_KFUNC_V2), each embedded in a generated Go file with its loader,
// as cilium/ebpf's bpf2go would with the flags scxkit's headers need.
//
// It is the engine of `scxkit gen`. It finds the scxkit headers through the
// go command (the module the source's directory requires, honouring
// replace directives), checks the toolchain first and names the package to
// install for anything missing, and writes files named as bpf2go names
// them: NAME_bpfel.go/.o and NAMEv2_bpfel.go/.o, whose loaders are loadNAME
// and loadNAMEV2.
package bpfgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"go/build/constraint"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/cmd/bpf2go/gen"
)

// ModulePath is the module whose bpf/include directory holds the headers
// (scxkit/scx.bpf.h, vmlinux.h) a scheduler's source includes.
const ModulePath = "github.com/scxkit/scxkit"

// Toolchain defaults: the compiler scxkit's committed objects are built
// with (Debian 12's clang-19, installed by scripts/setup).
const (
	DefaultCC = "clang-19"
	// MinClang is the oldest clang major version accepted: older ones
	// lack BPF atomics at -mcpu=v3 or miscompile sched_ext's headers.
	MinClang = 17
)

// Flags every scheduler is compiled with, after bpf2go's own (-O2 -g
// -target bpfel ...):
//   - -mcpu=v3: BPF atomics (__sync_fetch_and_add with a used result,
//     compare-and-exchange) and 32-bit jumps; bpf2go's default v1 makes
//     clang fail with "Cannot select: ... AtomicLoad..." on them. Every
//     kernel with sched_ext runs v3.
//   - -Wno-missing-declarations: vmlinux.h declares anonymous types that
//     clang otherwise warns about.
var baseFlags = []string{"-mcpu=v3", "-Wno-missing-declarations"}

// V2Define selects the newer kfunc generation in compat.bpf.h.
const V2Define = "-DSCXKIT_KFUNC_V2"

// Options say what to compile and how. Only Source is required.
type Options struct {
	// Source is the scheduler's BPF C file, e.g. "nest.bpf.c".
	Source string
	// Ident is the identifier stem of the generated Go code (loadIdent,
	// identObjects...); default: the source's base name up to its first
	// dot ("nest" for nest.bpf.c).
	Ident string
	// OutputDir is where the files go; default: the source's directory.
	OutputDir string
	// Package is the Go package of the generated files; default:
	// $GOPACKAGE (set by go generate), else the package of the Go files
	// in OutputDir, else "main".
	Package string
	// CC is the clang to use; default: $BPF_CLANG, else clang-19, else
	// clang if it is version MinClang or newer.
	CC string
	// Strip is the llvm-strip to use; default: the one matching CC
	// (llvm-strip-19 for clang-19).
	Strip string
	// Include is the directory holding scxkit/*.bpf.h and vmlinux.h;
	// default: bpf/include of the scxkit module the go command resolves
	// from the source's directory.
	Include string
	// CFlags are more compiler flags (-I, -D, -W...), after the defaults.
	CFlags []string
	// Log, if set, receives a line per file written.
	Log io.Writer

	includeFlags []string // from Include, set by fill
}

// ToolError is a missing or unusable tool; Fix says how to get it.
type ToolError struct {
	Tool string // what is missing, e.g. "clang-19" or "libbpf headers"
	Err  error  // what went wrong looking for it
	Fix  string // the command or step that installs it
}

func (e *ToolError) Error() string {
	return fmt.Sprintf("%s: %v; %s", e.Tool, e.Err, e.Fix)
}

func (e *ToolError) Unwrap() error { return e.Err }

// ErrNoSDK is wrapped by the error when the scxkit module cannot be found
// from the output directory.
var ErrNoSDK = errors.New("scxkit module not found")

const installClang = "install it with: apt-get install clang-19 llvm-19 (Debian 12; scxkit's scripts/setup does it), or name another clang >= 17 with -cc or $BPF_CLANG"

// Generate compiles o.Source once per kfunc generation and writes the
// objects and their Go files. It returns the paths it wrote.
func Generate(ctx context.Context, o Options) ([]string, error) {
	if err := o.fill(ctx); err != nil {
		return nil, err
	}
	if err := checkSource(o.Source); err != nil {
		return nil, err
	}
	if err := checkHeaders(ctx, o.CC); err != nil {
		return nil, err
	}
	var written []string
	for _, v := range []struct {
		ident string
		extra []string
	}{
		{o.Ident, nil},
		{o.Ident + "V2", []string{V2Define}},
	} {
		files, err := o.generateOne(ctx, v.ident, v.extra)
		written = append(written, files...)
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

// identRE is what bpf2go accepts as a stem (a Go identifier).
var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// fill validates o and sets its defaults.
func (o *Options) fill(ctx context.Context) error {
	if o.Source == "" {
		return errors.New("no source file: name the scheduler's BPF C file, e.g. scxkit gen nest.bpf.c")
	}
	src, err := filepath.Abs(o.Source)
	if err != nil {
		return err
	}
	o.Source = src
	if o.Ident == "" {
		o.Ident, _, _ = strings.Cut(filepath.Base(src), ".")
	}
	if !identRE.MatchString(o.Ident) {
		return fmt.Errorf("identifier %q (from %s) is not a Go identifier: rename the file or pass -ident NAME", o.Ident, filepath.Base(src))
	}
	if o.OutputDir == "" {
		o.OutputDir = filepath.Dir(src)
	}
	if o.OutputDir, err = filepath.Abs(o.OutputDir); err != nil {
		return err
	}
	if o.Package == "" {
		o.Package = os.Getenv("GOPACKAGE")
	}
	if o.Package == "" {
		o.Package, err = packageOf(o.OutputDir)
		if err != nil {
			return err
		}
	}
	if o.CC == "" {
		o.CC = os.Getenv("BPF_CLANG")
	}
	if o.CC, err = findClang(ctx, o.CC); err != nil {
		return err
	}
	if o.Strip == "" {
		o.Strip = stripFor(o.CC)
	}
	if _, err := exec.LookPath(o.Strip); err != nil {
		return &ToolError{Tool: o.Strip, Err: err, Fix: "install it with: apt-get install llvm-19 (Debian 12), or name another llvm-strip with -strip"}
	}
	if o.Include == "" {
		if o.Include, err = FindInclude(ctx, filepath.Dir(o.Source)); err != nil {
			return err
		}
	}
	if _, err := os.Stat(filepath.Join(o.Include, "scxkit", "scx.bpf.h")); err != nil {
		return fmt.Errorf("include directory %s has no scxkit/scx.bpf.h: %w; point -include at the bpf/include directory of a scxkit checkout or module", o.Include, err)
	}
	o.includeFlags = includeFlags(o.OutputDir, o.Include)
	return nil
}

// checkSource makes sure the source exists and carries a //go:build ignore
// line: the go command refuses a package with .c files unless it uses cgo
// ("C source files not allowed when not using cgo"), and the constraint
// keeps the file out of the build.
func checkSource(src string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	// Only blank lines and // comments may come before the constraint.
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "//go:build") {
			expr, err := constraint.Parse(line)
			// Excluded from every build: false with no tag set and
			// with every tag but "ignore" set.
			if err == nil && !expr.Eval(func(string) bool { return false }) && !expr.Eval(func(tag string) bool { return tag != "ignore" }) {
				return nil
			}
			break
		}
		if line != "" && !strings.HasPrefix(line, "//") {
			break
		}
	}
	return fmt.Errorf("%s lacks a //go:build ignore line before its code: the go command refuses C files in a package without cgo (\"C source files not allowed when not using cgo\"); make //go:build ignore its first line", filepath.Base(src))
}

// packageOf returns the package name of the Go files in dir (tests
// excluded), or "main" when there are none.
func packageOf(dir string) (string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return "", err
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, parser.PackageClauseOnly)
		if err != nil {
			continue // a broken file: the build will say
		}
		return file.Name.Name, nil
	}
	return "main", nil
}

// clangVersionRE finds the major version in clang --version's first line.
var clangVersionRE = regexp.MustCompile(`clang version (\d+)\.`)

// findClang returns the compiler to use: cc if set, else clang-19, else
// clang. It checks the version.
func findClang(ctx context.Context, cc string) (string, error) {
	candidates := []string{cc}
	if cc == "" {
		candidates = []string{DefaultCC, "clang"}
	}
	var firstErr error
	for _, c := range candidates {
		path, err := exec.LookPath(c)
		if err != nil {
			firstErr = orErr(firstErr, err)
			continue
		}
		out, err := exec.CommandContext(ctx, path, "--version").Output()
		if err != nil {
			firstErr = orErr(firstErr, fmt.Errorf("%s --version: %w", c, err))
			continue
		}
		m := clangVersionRE.FindSubmatch(out)
		if m == nil {
			firstErr = orErr(firstErr, fmt.Errorf("%s --version does not name a clang version: %q", c, firstLine(out)))
			continue
		}
		if v, _ := strconv.Atoi(string(m[1])); v < MinClang {
			firstErr = orErr(firstErr, fmt.Errorf("%s is clang %d, want %d or newer", c, v, MinClang))
			continue
		}
		return c, nil
	}
	tool := cc
	if tool == "" {
		tool = DefaultCC
	}
	return "", &ToolError{Tool: tool, Err: firstErr, Fix: installClang}
}

// orErr returns a if it is an error, else b.
func orErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func firstLine(b []byte) string {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	return string(line)
}

// stripFor returns the llvm-strip that goes with cc: llvm-strip-19 for
// clang-19, llvm-strip for clang.
func stripFor(cc string) string {
	base := filepath.Base(cc)
	if v, ok := strings.CutPrefix(base, "clang-"); ok {
		return "llvm-strip-" + v
	}
	return "llvm-strip"
}

// headerProbe fails to preprocess unless libbpf's BPF headers are there
// and new enough for scxkit's (bpf_ksym_exists came with libbpf 1.2).
const headerProbe = `#include <bpf/bpf_helpers.h>
#ifndef bpf_ksym_exists
#error libbpf headers too old: no bpf_ksym_exists
#endif
`

// checkHeaders checks that cc finds libbpf's headers.
func checkHeaders(ctx context.Context, cc string) error {
	cmd := exec.CommandContext(ctx, cc, "-target", "bpf", "-E", "-x", "c", "-o", os.DevNull, "-")
	cmd.Stdin = strings.NewReader(headerProbe)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return &ToolError{
			Tool: "libbpf headers (bpf/bpf_helpers.h)",
			Err:  fmt.Errorf("%s cannot use them: %w: %s", cc, err, strings.TrimSpace(stderr.String())),
			Fix:  "install libbpf-dev 1.2 or newer: apt-get install -t bookworm-backports libbpf-dev (Debian 12; scxkit's scripts/setup does it)",
		}
	}
	return nil
}

// FindInclude returns the bpf/include directory of the scxkit module as
// the go command resolves it from dir: the main module itself in a scxkit
// checkout, the replace target, or the module cache (downloading the
// module if needed).
func FindInclude(ctx context.Context, dir string) (string, error) {
	moduleDir := func() (string, error) {
		cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", ModulePath)
		cmd.Dir = dir
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			if errors.Is(err, exec.ErrNotFound) {
				return "", &ToolError{Tool: "go", Err: err, Fix: "install Go from https://go.dev/dl and put it on $PATH"}
			}
			return "", fmt.Errorf("%w: go list -m %s in %s: %v: %s; run scxkit gen inside a Go module that requires it (go get %s)",
				ErrNoSDK, ModulePath, dir, err, strings.TrimSpace(stderr.String()), ModulePath)
		}
		return strings.TrimSpace(string(out)), nil
	}
	d, err := moduleDir()
	if err != nil {
		return "", err
	}
	if d == "" { // required but not downloaded yet
		cmd := exec.CommandContext(ctx, "go", "mod", "download", ModulePath)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("%w: go mod download %s: %v: %s", ErrNoSDK, ModulePath, err, strings.TrimSpace(string(out)))
		}
		if d, err = moduleDir(); err != nil {
			return "", err
		}
		if d == "" {
			return "", fmt.Errorf("%w: the go command knows no directory for %s in %s", ErrNoSDK, ModulePath, dir)
		}
	}
	return filepath.Join(d, "bpf", "include"), nil
}

// includeFlags returns the -I flag for the headers. In the module cache,
// whose path differs between machines, the path is absolute and a debug
// prefix map names it "gomodcache" in the objects' line info. Elsewhere (a
// checkout, a replace) it is relative to the output directory, as the
// examples' go:generate lines write it, so that objects built from the
// same tree are identical wherever the tree lives.
func includeFlags(outputDir, include string) []string {
	if cache := goModCache(); cache != "" && strings.HasPrefix(include, cache+string(filepath.Separator)) {
		return []string{"-I" + include, "-fdebug-prefix-map=" + cache + "=gomodcache"}
	}
	if rel, err := filepath.Rel(outputDir, include); err == nil {
		return []string{"-I" + rel}
	}
	return []string{"-I" + include}
}

// goModCache returns the module cache directory, or "".
func goModCache() string {
	if d := os.Getenv("GOMODCACHE"); d != "" {
		return d
	}
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// generateOne compiles one object and writes its Go file, as bpf2go
// -tags linux -target bpfel -no-global-types would.
func (o *Options) generateOne(ctx context.Context, ident string, extra []string) ([]string, error) {
	target, arches, err := gen.FindTarget("bpfel")
	if err != nil {
		return nil, err
	}
	stem := fmt.Sprintf("%s_%s", strings.ToLower(ident), target.Suffix())
	obj := filepath.Join(o.OutputDir, stem+".o")
	goFile := filepath.Join(o.OutputDir, stem+".go")

	flags := slices.Concat(baseFlags, o.includeFlags, o.CFlags, extra)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// gen.Compile sends the compiler's messages to this process's
	// stderr, where they precede the error.
	err = gen.Compile(gen.CompileArgs{
		CC:      o.CC,
		Strip:   o.Strip,
		Flags:   flags,
		Workdir: o.OutputDir,
		Source:  o.Source,
		Dest:    obj,
		Target:  target,
	})
	if err != nil {
		os.Remove(obj)
		return nil, fmt.Errorf("compile %s (%s %s): %w (the compiler's messages are above)", filepath.Base(o.Source), o.CC, strings.Join(flags, " "), err)
	}
	written := []string{obj}
	o.logf("wrote %s", obj)

	spec, err := ebpf.LoadCollectionSpec(obj)
	if err != nil {
		return written, fmt.Errorf("read back %s: %w", obj, err)
	}
	var maps, vars, progs []string
	for name := range spec.Maps {
		if !strings.HasPrefix(name, ".") { // .rodata, .bss ...
			maps = append(maps, name)
		}
	}
	for name := range spec.Variables {
		vars = append(vars, name)
	}
	for name := range spec.Programs {
		progs = append(progs, name)
	}
	tags, err := constraint.Parse("//go:build linux")
	if err != nil {
		return written, err
	}
	var out bytes.Buffer
	err = gen.Generate(gen.GenerateArgs{
		Package:     o.Package,
		Stem:        ident,
		Constraints: &constraint.AndExpr{X: arches.Constraint(), Y: tags},
		Maps:        maps,
		Variables:   vars,
		Programs:    progs,
		ObjectFile:  filepath.Base(obj),
		Output:      &out,
	})
	if err != nil {
		return written, fmt.Errorf("generate %s: %w", goFile, err)
	}
	if err := os.WriteFile(goFile, out.Bytes(), 0o644); err != nil {
		return written, err
	}
	o.logf("wrote %s", goFile)
	return append(written, goFile), nil
}

func (o *Options) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, format+"\n", args...)
	}
}
