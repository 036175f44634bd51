package bpfgen

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckSource(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		ok         bool
	}{
		{"first line", "//go:build ignore\n\n#include <x.h>\n", true},
		{"after comments", "// SPDX\n\n//go:build ignore\n\nint x;\n", true},
		{"missing", "/* x */\n#include <x.h>\n", false},
		{"after code", "#include <x.h>\n//go:build ignore\n", false},
		{"other tag", "//go:build linux\n", false},
		{"negated", "//go:build !ignore\n", false},
		{"empty", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := filepath.Join(t.TempDir(), "x.bpf.c")
			if err := os.WriteFile(src, []byte(tc.text), 0o644); err != nil {
				t.Fatal(err)
			}
			err := checkSource(src)
			if tc.ok && err != nil {
				t.Errorf("checkSource: %v", err)
			}
			if !tc.ok && (err == nil || !strings.Contains(err.Error(), "//go:build ignore")) {
				t.Errorf("checkSource: %v, want an error naming //go:build ignore", err)
			}
		})
	}
	if err := checkSource(filepath.Join(t.TempDir(), "missing.bpf.c")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want ErrNotExist", err)
	}
}

func TestFillErrors(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "9lives.bpf.c")
	os.WriteFile(src, []byte("//go:build ignore\n"), 0o644)
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"no source", Options{}, "no source file"},
		{"bad ident", Options{Source: src}, "not a Go identifier"},
		{"bad explicit ident", Options{Source: src, Ident: "a-b"}, "not a Go identifier"},
		{"missing clang", Options{Source: src, Ident: "x", CC: "no-such-clang-0"}, "apt-get install clang-19"},
		{"not clang", Options{Source: src, Ident: "x", CC: "true"}, "does not name a clang version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.o.fill(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("fill: %v, want an error containing %q", err, tc.want)
			}
		})
	}
	var te *ToolError
	o := Options{Source: src, Ident: "x", CC: "no-such-clang-0"}
	if err := o.fill(context.Background()); !errors.As(err, &te) || te.Tool != "no-such-clang-0" || !errors.Is(err, exec.ErrNotFound) {
		t.Errorf("missing clang: %v, want a *ToolError for no-such-clang-0 wrapping exec.ErrNotFound", err)
	}
}

func TestDefaults(t *testing.T) {
	if _, err := exec.LookPath(DefaultCC); err != nil {
		t.Skipf("%s not installed (scripts/setup installs it)", DefaultCC)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "nest.bpf.c")
	os.WriteFile(src, []byte("//go:build ignore\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "x.go"), []byte("package nestsched\n"), 0o644)
	t.Setenv("GOPACKAGE", "")
	t.Setenv("BPF_CLANG", "")
	o := Options{Source: src, Include: "../../bpf/include"}
	if err := o.fill(context.Background()); err != nil {
		t.Fatal(err)
	}
	if o.Ident != "nest" || o.Package != "nestsched" || o.CC != DefaultCC || o.Strip != "llvm-strip-19" || o.OutputDir != dir {
		t.Errorf("defaults: %+v", o)
	}
}

func TestFindInclude(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	inc, err := FindInclude(context.Background(), ".")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(inc, "scxkit", "scx.bpf.h")); err != nil {
		t.Errorf("FindInclude in this module: %s: %v", inc, err)
	}
	// Outside any module.
	_, err = FindInclude(context.Background(), t.TempDir())
	if !errors.Is(err, ErrNoSDK) || !strings.Contains(err.Error(), "go get "+ModulePath) {
		t.Errorf("FindInclude outside a module: %v, want ErrNoSDK naming go get", err)
	}
}

func TestIncludeFlags(t *testing.T) {
	if got := includeFlags("/a/b/examples/x", "/a/b/bpf/include"); len(got) != 1 || got[0] != "-I../../bpf/include" {
		t.Errorf("in the same tree: %q", got)
	}
	t.Setenv("GOMODCACHE", "/m")
	got := includeFlags("/home/u/src/x", "/m/github.com/scxkit/scxkit@v1/bpf/include")
	if len(got) != 2 || got[0] != "-I/m/github.com/scxkit/scxkit@v1/bpf/include" || got[1] != "-fdebug-prefix-map=/m=gomodcache" {
		t.Errorf("in the module cache: %q", got)
	}
}

func TestStripFor(t *testing.T) {
	for cc, want := range map[string]string{"clang-19": "llvm-strip-19", "/usr/bin/clang-20": "llvm-strip-20", "clang": "llvm-strip"} {
		if got := stripFor(cc); got != want {
			t.Errorf("stripFor(%q) = %q, want %q", cc, got, want)
		}
	}
}

// TestMissingHeaders runs the header check with a clang that searches no
// system include directory, as on a machine without libbpf-dev.
func TestMissingHeaders(t *testing.T) {
	cc, err := exec.LookPath(DefaultCC)
	if err != nil {
		t.Skipf("%s not installed (scripts/setup installs it)", DefaultCC)
	}
	if err := checkHeaders(context.Background(), cc); err != nil {
		t.Fatalf("with the system headers: %v", err)
	}
	wrapper := filepath.Join(t.TempDir(), "clang-nostdinc")
	script := "#!/bin/sh\nexec " + cc + " -nostdinc \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	err = checkHeaders(context.Background(), wrapper)
	var te *ToolError
	if !errors.As(err, &te) || !strings.Contains(te.Fix, "libbpf-dev") || !strings.Contains(err.Error(), "bpf_helpers.h") {
		t.Errorf("without headers: %v, want a *ToolError naming bpf_helpers.h and libbpf-dev", err)
	}
}
