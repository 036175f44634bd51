package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scxkit/scxkit/vmtest"
)

// committed is bpf/include/vmlinux.h, from this package's directory.
var committed = filepath.Join("..", "..", "..", filepath.FromSlash(defaultOutput))

// unavailable skips the test, or fails it when CI=true: CI must check
// everything.
func unavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format+" (CI=true makes this fail)", args...)
}

// TestCommittedHeaderUpToDate regenerates vmlinux.h from the default kernel
// and compares it with the committed one.
func TestCommittedHeaderUpToDate(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: regenerating vmlinux.h takes a second or two")
	}
	if _, err := exec.LookPath("bpftool"); err != nil {
		unavailable(t, "%v", errNoBpftool)
	}
	k := vmtest.Matrix[len(vmtest.Matrix)-1]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := k.Vmlinuz(ctx); err != nil {
		unavailable(t, "kernel %s unavailable: %v", k, err)
	}

	out := filepath.Join(t.TempDir(), "vmlinux.h")
	if err := writeHeader(ctx, k, out); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(committed)
	if err != nil {
		t.Fatalf("bpf/include/vmlinux.h is stale: run scripts/vmlinux-h (%v)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("bpf/include/vmlinux.h is stale: run scripts/vmlinux-h (kernel %s gives %d bytes, the committed file has %d; first difference at line %d)",
			k, len(got), len(want), firstDiffLine(got, want))
	}
	if !bytes.HasPrefix(got, []byte(banner(k))) {
		t.Errorf("generated header does not start with the banner %q", banner(k))
	}
}

// firstDiffLine returns the 1-based number of the first line where a and b
// differ.
func firstDiffLine(a, b []byte) int {
	n := min(len(a), len(b))
	i := 0
	for i < n && a[i] == b[i] {
		i++
	}
	return bytes.Count(a[:i], []byte("\n")) + 1
}

func TestLookupKernel(t *testing.T) {
	for _, k := range vmtest.Matrix {
		got, err := lookupKernel(k.Name)
		if err != nil || got.Package != k.Package {
			t.Errorf("lookupKernel(%q) = %v, %v; want %v", k.Name, got, err, k)
		}
	}
	_, err := lookupKernel("2.6")
	if err == nil || !strings.Contains(err.Error(), `unknown kernel "2.6"`) {
		t.Errorf("lookupKernel(2.6) = %v, want an unknown kernel error", err)
	}
}

func TestRunArgs(t *testing.T) {
	if err := run([]string{"-kernel", "2.6"}, io.Discard); err == nil || !strings.Contains(err.Error(), "unknown kernel") {
		t.Errorf("run(-kernel 2.6) = %v, want an unknown kernel error", err)
	}
	if err := run([]string{"stray"}, io.Discard); err == nil || !strings.Contains(err.Error(), "unexpected arguments") {
		t.Errorf("run(stray) = %v, want an unexpected arguments error", err)
	}
}

func TestNoBpftool(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	out := filepath.Join(t.TempDir(), "vmlinux.h")
	err := writeHeader(context.Background(), vmtest.Matrix[0], out)
	if !errors.Is(err, errNoBpftool) || !strings.Contains(err.Error(), "scripts/setup") {
		t.Errorf("writeHeader without bpftool = %v, want an error that says to run scripts/setup", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("writeHeader without bpftool left %s behind (stat: %v)", out, err)
	}
}
