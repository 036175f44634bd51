package scaffold

import (
	"bytes"
	"context"
	"errors"
	"go/format"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestNames(t *testing.T) {
	for _, name := range []string{"", "Nest", "1nest", "my-sched", "my_sched", "nest.x", strings.Repeat("a", 33)} {
		err := Create(context.Background(), Options{Name: name, Dir: t.TempDir(), SkipTidy: true, SkipGenerate: true, Version: "v0.1.0"})
		if err == nil || !strings.Contains(err.Error(), "lowercase letters and digits") {
			t.Errorf("name %q: %v, want an error saying what a name may be", name, err)
		}
	}
}

func TestRefusesNonEmptyDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := Create(context.Background(), Options{Name: "nest", Dir: dir, SkipTidy: true, SkipGenerate: true, Version: "v0.1.0"})
	if !errors.Is(err, ErrExists) {
		t.Fatalf("Create in a non-empty directory: %v, want ErrExists", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "main.go")); string(b) != "package main\n" {
		t.Errorf("main.go was overwritten: %q", b)
	}
}

// TestGoVersion checks that a new module states the go version scxkit's
// own go.mod does.
func TestGoVersion(t *testing.T) {
	b, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(b)
	if m == nil || string(m[1]) != GoVersion {
		t.Errorf("scxkit's go.mod says go %q, GoVersion is %s: make them agree", m, GoVersion)
	}
}

// TestFiles checks what Create writes with a published version: a go.mod
// that requires it with the scxkit tool, and Go files that parse, name the
// scheduler and import the SDK only by its public packages.
func TestFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nest")
	if err := Create(context.Background(), Options{Name: "nest", Dir: dir, Module: "example.com/nest", Version: "v0.3.1", SkipTidy: true, SkipGenerate: true}); err != nil {
		t.Fatal(err)
	}
	mod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"module example.com/nest", "go " + GoVersion, "require github.com/scxkit/scxkit v0.3.1", "tool github.com/scxkit/scxkit/cmd/scxkit"} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(line) + `$`).Match(mod) {
			t.Errorf("go.mod lacks the line %q:\n%s", line, mod)
		}
	}
	if bytes.Contains(mod, []byte("replace")) {
		t.Errorf("go.mod has a replace directive, with a published version:\n%s", mod)
	}
	for _, name := range []string{"main.go", "gen.go", "nest_test.go", "nest.bpf.c", "README.md"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("scxkit/internal")) {
			t.Errorf("%s uses an internal package of scxkit, which another module cannot import", name)
		}
		if bytes.Contains(b, []byte("{{")) || bytes.Contains(b, []byte("<no value>")) {
			t.Errorf("%s has an unexpanded template:\n%s", name, b)
		}
		if strings.HasSuffix(name, ".go") {
			if formatted, err := format.Source(b); err != nil || !bytes.Equal(formatted, b) {
				t.Errorf("%s is not gofmt-formatted (%v)", name, err)
			}
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "nest.bpf.c")); !bytes.HasPrefix(b, []byte("//go:build ignore\n")) {
		t.Error("nest.bpf.c does not start with //go:build ignore")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "gen.go")); !bytes.Contains(b, []byte("//go:generate go tool scxkit gen nest.bpf.c\n")) {
		t.Errorf("gen.go lacks the generate line:\n%s", b)
	}
}

// TestNewModulePassesItsTest is what an author does on day one, from a
// clean directory: scxkit new, the README's commands (go generate, go vet,
// go test), in a module of its own that imports scxkit by its module path
// with a replace to this checkout. Its generated test runs in a VM on 7.3
// and must pass. It skips where VMs cannot run (vmtest skips the inner
// test), unless CI=true.
func TestNewModulePassesItsTest(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds a module and boots a VM")
	}
	for _, tool := range []string{"go", "clang-19", "llvm-strip-19"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s missing: run scripts/setup", tool)
			}
			t.Skipf("%s missing (scripts/setup installs it)", tool)
		}
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	scxkit := filepath.Join(tmp, "bin", "scxkit")
	run(t, root, nil, "go", "build", "-o", scxkit, "./cmd/scxkit")

	// An empty working directory outside the checkout: the module must
	// not find scxkit but through its go.mod.
	work := filepath.Join(tmp, "work")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, work, nil, scxkit, "new", "-module", "example.com/nest", "-replace", root, "nest")
	mod := filepath.Join(work, "nest")
	objects := filepath.Join(mod, "nest_bpfel.o")
	first, err := os.ReadFile(objects)
	if err != nil {
		t.Fatalf("scxkit new did not compile the BPF source: %v", err)
	}
	// The documented build: go generate rebuilds the same objects.
	run(t, mod, nil, "go", "generate", "./...")
	if again, err := os.ReadFile(objects); err != nil || !bytes.Equal(first, again) {
		t.Errorf("go generate rebuilt nest_bpfel.o differently from scxkit new (%v)", err)
	}
	run(t, mod, nil, "go", "vet", "./...")
	out := run(t, mod, []string{"SCXKIT_KERNELS=7.3"}, "go", "test", "-count=1", "-v", "./...")
	if strings.Contains(out, "vmtest: SKIP") || strings.Contains(out, "--- SKIP") {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the generated test skipped with CI=true:\n%s", out)
		}
		t.Skipf("the generated test skipped (no VM here):\n%s", out)
	}
	for _, want := range []string{"--- PASS: TestAttachUnderLoad", "vmtest: kernel 7.3: ok", `BPF scheduler "nest" enabled`, `BPF scheduler "nest" disabled`} {
		if !strings.Contains(out, want) {
			t.Errorf("the generated module's go test output lacks %q:\n%s", want, out)
		}
	}
}

// run runs a command in dir with env added, fails the test if it fails,
// and returns its combined output.
func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("%s %s (in %s, %v)", name, strings.Join(args, " "), dir, time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("%s %s in %s: %v\n%s", name, strings.Join(args, " "), dir, err, out)
	}
	return string(out)
}
