// Package scaffold writes a new scheduler module, the engine of `scxkit
// new`: a Go module of its own that requires scxkit, with the scheduler's
// BPF C source, the go:generate line that compiles it (scxkit gen), a Go
// main on package runner, and a VM test that attaches the scheduler, runs a
// workload under it and checks the kernel's view. As written, it builds and
// its test passes; the author changes the policy from there.
package scaffold

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"text/template"

	"github.com/scxkit/scxkit/internal/bpfgen"
)

// GoVersion is the go directive of a new module: the one scxkit's own
// go.mod states (a test checks they agree).
const GoVersion = "1.25.0"

// replacedVersion is the version a require line names for a module that a
// replace directive points at a directory.
const replacedVersion = "v0.0.0-00010101000000-000000000000"

//go:embed template
var templates embed.FS

// Options say what to create. Only Name is required.
type Options struct {
	// Name is the scheduler's name: lowercase letters and digits, starting
	// with a letter. It names the BPF ops (what
	// /sys/kernel/sched_ext/root/ops shows), the files, the command and
	// its stats socket.
	Name string
	// Dir is the module's directory, which must not exist or be empty;
	// default: ./Name.
	Dir string
	// Module is the module path; default: Name.
	Module string
	// Replace, if set, is a scxkit checkout the module uses instead of a
	// published version (a replace directive). Default: none if this
	// program knows its scxkit version, else the scxkit module the go
	// command finds from the current directory (a checkout).
	Replace string
	// Version is the scxkit version to require when Replace is empty;
	// default: the version this program was built from.
	Version string
	// SkipTidy and SkipGenerate leave out go mod tidy and compiling the
	// BPF source, for a machine without the module proxy or clang.
	SkipTidy, SkipGenerate bool
	// Log, if set, receives a line per step.
	Log io.Writer
}

// nameRE is what Name may be.
var nameRE = regexp.MustCompile(`^[a-z][a-z0-9]{0,31}$`)

// ErrExists is wrapped by the error for a directory that is not empty.
var ErrExists = errors.New("directory exists and is not empty")

// data is what the templates see.
type data struct {
	Name, Ident, Module, GoVersion string
	SDK, SDKVersion, SDKURL        string
	Replace                        string
}

// Create writes the module, tidies it and compiles its BPF source. On an
// error after the files are written, the files stay, and the error says
// which command finishes the job.
func Create(ctx context.Context, o Options) error {
	if !nameRE.MatchString(o.Name) {
		return fmt.Errorf("name %q: use 1 to 32 lowercase letters and digits, starting with a letter (it names the BPF ops, the Go identifiers, the files and the stats socket)", o.Name)
	}
	if o.Dir == "" {
		o.Dir = o.Name
	}
	if o.Module == "" {
		o.Module = o.Name
	}
	d := data{
		Name:      o.Name,
		Ident:     strings.ToUpper(o.Name[:1]) + o.Name[1:],
		Module:    o.Module,
		GoVersion: GoVersion,
		SDK:       bpfgen.ModulePath,
		SDKURL:    "https://" + bpfgen.ModulePath,
	}
	var err error
	if d.Replace, d.SDKVersion, err = o.sdk(ctx); err != nil {
		return err
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return err
	}
	if err := emptyDir(dir); err != nil {
		return err
	}
	files := []struct{ tmpl, name string }{
		{"go.mod.tmpl", "go.mod"},
		{"sched.bpf.c.tmpl", o.Name + ".bpf.c"},
		{"gen.go.tmpl", "gen.go"},
		{"main.go.tmpl", "main.go"},
		{"sched_test.go.tmpl", o.Name + "_test.go"},
		{"README.md.tmpl", "README.md"},
	}
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		if err := render(path, f.tmpl, d); err != nil {
			return err
		}
		o.logf("wrote %s", path)
	}
	if !o.SkipTidy {
		o.logf("go mod tidy")
		cmd := exec.CommandContext(ctx, "go", "mod", "tidy")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go mod tidy in %s: %w\n%s\nthe files are written: fix the cause and run go mod tidy there", dir, err, bytes.TrimSpace(out))
		}
	}
	if !o.SkipGenerate {
		_, err := bpfgen.Generate(ctx, bpfgen.Options{
			Source:  filepath.Join(dir, o.Name+".bpf.c"),
			Package: "main",
			Log:     o.Log,
		})
		if err != nil {
			return fmt.Errorf("compile %s.bpf.c: %w\nthe files are written: fix the cause and run go generate ./... in %s", o.Name, err, dir)
		}
	}
	return nil
}

// sdk returns the replace target and the version to require.
func (o *Options) sdk(ctx context.Context) (replace, version string, err error) {
	if o.Replace != "" {
		abs, err := filepath.Abs(o.Replace)
		if err != nil {
			return "", "", err
		}
		if _, err := os.Stat(filepath.Join(abs, "go.mod")); err != nil {
			return "", "", fmt.Errorf("replace %s: %w: want the root of a scxkit checkout (the directory with its go.mod)", o.Replace, err)
		}
		return abs, replacedVersion, nil
	}
	if o.Version == "" {
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Path == bpfgen.ModulePath && strings.HasPrefix(bi.Main.Version, "v") {
			o.Version = bi.Main.Version
		}
	}
	if o.Version != "" {
		return "", o.Version, nil
	}
	// Built from a checkout: use it if the go command finds it from here.
	inc, err := bpfgen.FindInclude(ctx, ".")
	if err != nil {
		return "", "", fmt.Errorf("this scxkit was built from a checkout and has no version to require, and none is found from the current directory (%v): pass -replace /path/to/scxkit (a checkout) or -version vX.Y.Z", err)
	}
	root := filepath.Dir(filepath.Dir(inc))
	o.logf("using the scxkit checkout %s (a replace directive)", root)
	return root, replacedVersion, nil
}

// emptyDir creates dir, or checks that it is empty.
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return os.MkdirAll(dir, 0o755)
	case err != nil:
		return err
	case len(entries) > 0:
		return fmt.Errorf("%s: %w: choose a new directory", dir, ErrExists)
	}
	return nil
}

// render executes template tmpl with d into path.
func render(path, tmpl string, d data) error {
	text, err := templates.ReadFile("template/" + tmpl)
	if err != nil {
		return err
	}
	t, err := template.New(tmpl).Option("missingkey=error").Parse(string(text))
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return err
	}
	if !bytes.HasSuffix(b.Bytes(), []byte("\n")) {
		b.WriteByte('\n')
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

func (o *Options) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, format+"\n", args...)
	}
}
