package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scxkit/scxkit/vmtest"
)

func TestVMOperands(t *testing.T) {
	tests := []struct {
		args    []string
		pkg     string
		sched   []string
		wantErr string // substring of the usage error; "" for none
	}{
		{args: []string{"./cmd/mysched"}, pkg: "./cmd/mysched"},
		{args: []string{"example.com/m/cmd/x", "--"}, pkg: "example.com/m/cmd/x", sched: []string{}},
		{args: []string{"./x", "--", "-stats", "1s", "--", "y"}, pkg: "./x", sched: []string{"-stats", "1s", "--", "y"}},
		{args: nil, wantErr: "name the scheduler's main PACKAGE"},
		{args: []string{""}, wantErr: "name the scheduler's main PACKAGE"},
		{args: []string{"./x", "-stats", "1s"}, wantErr: `unexpected argument "-stats" after PACKAGE`},
		{args: []string{"./x", "extra"}, wantErr: `unexpected argument "extra" after PACKAGE`},
		{args: []string{"-x", "--"}, wantErr: `PACKAGE "-x" looks like a flag`},
	}
	for _, tt := range tests {
		o := &vmOptions{}
		err := o.setOperands(tt.args)
		if tt.wantErr != "" {
			var usage *usageError
			if !errors.As(err, &usage) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("setOperands(%q) = %v, want a usage error with %q", tt.args, err, tt.wantErr)
			}
			continue
		}
		if err != nil || o.pkg != tt.pkg || !slices.Equal(o.args, tt.sched) {
			t.Errorf("setOperands(%q) = %v, pkg %q, args %q; want pkg %q, args %q", tt.args, err, o.pkg, o.args, tt.pkg, tt.sched)
		}
	}
}

// TestVMCommandLine runs vm's command line through run: bad flags and
// operands are usage errors (status 2) found before anything is built.
func TestVMCommandLine(t *testing.T) {
	tests := []struct {
		args   []string
		code   int
		stdout string // substring
		stderr string // substring
	}{
		{[]string{"help", "vm"}, 0, "scxkit vm [--kernel NAME]", ""},
		{[]string{"vm", "-h"}, 0, "out-of-tree module", ""},
		{[]string{"vm"}, 2, "", "scxkit vm: name the scheduler's main PACKAGE"},
		{[]string{"vm", "--kernel", "9.9", "./examples/simple"}, 2, "", `--kernel "9.9": unknown kernel (known: 6.16, 7.0, 7.3)`},
		{[]string{"vm", "--workload", "nope", "./examples/simple"}, 2, "", `--workload "nope": unknown kind (known: mixed, spin, pingpong, requests, none)`},
		{[]string{"vm", "--cpus", "0", "./examples/simple"}, 2, "", "--cpus 0"},
		{[]string{"vm", "--seconds", "NaN", "./examples/simple"}, 2, "", "--seconds NaN"},
		{[]string{"vm", "--ops", "a b", "./examples/simple"}, 2, "", `--ops "a b"`},
		// Flags after PACKAGE belong to the scheduler, after --.
		{[]string{"vm", "./examples/simple", "--cpus", "2"}, 2, "", `unexpected argument "--cpus" after PACKAGE`},
		// A "--" before PACKAGE ends vm's flags: the next "--" still
		// separates the scheduler's arguments, and a bad kernel is still
		// caught first.
		{[]string{"vm", "--kernel", "9.9", "--", "./examples/simple", "--", "-stats", "1s"}, 2, "", `--kernel "9.9"`},
	}
	for _, tt := range tests {
		code, stdout, stderr := runArgs(t, tt.args...)
		if code != tt.code || !strings.Contains(stdout, tt.stdout) || !strings.Contains(stderr, tt.stderr) {
			t.Errorf("scxkit %q: exit status %d, stdout %q, stderr %q; want %d, stdout with %q, stderr with %q",
				tt.args, code, firstLine(stdout), firstLine(stderr), tt.code, tt.stdout, tt.stderr)
		}
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// TestVMPackageErrors checks what vm says about a PACKAGE it cannot run:
// not a main package, missing, failing to compile, no go command. Each is
// found on the host, before any VM boots.
func TestVMPackageErrors(t *testing.T) {
	t.Chdir(moduleDir(t, map[string]string{
		"go.mod":          "module example.com/mysched\n\ngo 1.24\n",
		"lib/lib.go":      "package lib\n\nfunc F() {}\n",
		"cmd/broken/x.go": "package main\n\nfunc main() { undefinedThing() }\n",
	}))
	ctx := context.Background()

	_, err := mainPackage(ctx, "./lib")
	if !errors.Is(err, errNotMainPackage) || !strings.Contains(err.Error(), "example.com/mysched/lib") {
		t.Errorf("mainPackage(./lib) = %v, want errNotMainPackage naming example.com/mysched/lib", err)
	}
	code, _, stderr := runArgs(t, "vm", "./lib")
	if code != 1 || !strings.Contains(stderr, "PACKAGE ./lib is package lib (example.com/mysched/lib), not a main package") {
		t.Errorf("scxkit vm ./lib: exit status %d, stderr %q; want 1 and not a main package", code, stderr)
	}

	if _, err := mainPackage(ctx, "./missing"); err == nil || !strings.Contains(err.Error(), "go list ./missing") || !strings.Contains(err.Error(), "missing") {
		t.Errorf("mainPackage(./missing) = %v, want go list's complaint", err)
	}

	// go list accepts the broken package; the build shows the compiler's
	// output.
	if name, err := mainPackage(ctx, "./cmd/broken"); err != nil || name != "broken" {
		t.Fatalf("mainPackage(./cmd/broken) = %q, %v; want broken", name, err)
	}
	_, err = buildPackage(ctx, "", filepath.Join(t.TempDir(), "broken"), "./cmd/broken")
	if err == nil || !strings.Contains(err.Error(), "undefined: undefinedThing") {
		t.Errorf("build ./cmd/broken: %v, want the compiler's output", err)
	}

	t.Setenv("PATH", t.TempDir())
	if _, err := mainPackage(ctx, "./cmd/broken"); err == nil || !strings.Contains(err.Error(), "the go command is not on PATH") {
		t.Errorf("mainPackage without go: %v, want the go command missing", err)
	}
}

// TestVMBuildsInCurrentModule checks that vm builds PACKAGE in the module
// of the current directory, not in scxkit's: a main package of a module
// elsewhere builds, static.
func TestVMBuildsInCurrentModule(t *testing.T) {
	t.Chdir(moduleDir(t, map[string]string{
		"go.mod":              "module example.com/mysched\n\ngo 1.24\n",
		"cmd/mysched/main.go": "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"mysched\") }\n",
	}))
	ctx := context.Background()
	name, err := mainPackage(ctx, "./cmd/mysched")
	if err != nil || name != "mysched" {
		t.Fatalf("mainPackage(./cmd/mysched) = %q, %v; want mysched", name, err)
	}
	bin, err := buildPackage(ctx, "", filepath.Join(t.TempDir(), name), "example.com/mysched/cmd/mysched")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin).Output()
	if err != nil || string(out) != "mysched\n" {
		t.Errorf("%s: %q, %v", bin, out, err)
	}
}

// moduleDir writes files (path -> contents) into a new directory and
// returns it.
func moduleDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestVMGuestArgs(t *testing.T) {
	o := &vmGuestOptions{seconds: 2.5, workload: loadRequests, ops: "mysched", name: "mysched", scheduler: guestScheduler,
		schedArgs: []string{"-stats", "1s", "--", "x"}}
	fs, _ := vmGuestCommandFlags()
	if code, ok := parse(fs, o.args()[1:], new(bytes.Buffer), new(bytes.Buffer)); !ok {
		t.Fatalf("parse %q: exit status %d", o.args(), code)
	}
	for name, want := range map[string]string{"seconds": "2.5", "workload": "requests", "ops": "mysched", "name": "mysched", "scheduler": guestScheduler} {
		if got := fs.Lookup(name).Value.String(); got != want {
			t.Errorf("--%s = %s, want %s", name, got, want)
		}
	}
	if !slices.Equal(fs.Args(), o.schedArgs) {
		t.Errorf("the scheduler's arguments parse back as %q, want %q", fs.Args(), o.schedArgs)
	}
}

func TestFormatBusy(t *testing.T) {
	if got, want := formatBusy([]float64{0.971, 0, 1}), "cpu0 0.97 cpu1 0.00 cpu2 1.00"; got != want {
		t.Errorf("formatBusy = %q, want %q", got, want)
	}
}

// TestKernelLog writes a record to /dev/kmsg (root) and reads it back,
// past a record that does not match.
func TestKernelLog(t *testing.T) {
	k, err := openKernelLog()
	if err != nil {
		t.Skipf("cannot read the kernel log here: %v", err)
	}
	defer k.Close()
	marker := "scxkit-vm-test-" + time.Now().Format("150405.000000")
	w, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("cannot write the kernel log here: %v", err)
	}
	defer w.Close()
	for _, msg := range []string{"unrelated " + time.Now().String(), marker + " one", marker + " two"} {
		if _, err := w.WriteString(msg + "\n"); err != nil {
			t.Fatal(err)
		}
	}
	got := k.Lines(marker)
	if len(got) != 2 || !strings.HasSuffix(got[0], marker+" one") || !strings.HasSuffix(got[1], marker+" two") {
		t.Errorf("Lines(%q) = %q, want the two records", marker, got)
	}
	if again := k.Lines(marker); len(again) != 0 {
		t.Errorf("a second Lines returned %q again", again)
	}
	var none *kernelLog
	if none.Lines("x") != nil || none.Close() != nil {
		t.Error("a nil kernelLog has lines or fails to close")
	}
}

// buildSelf builds scxkit (this package) for the VM's payload: the test
// binary cannot stand in for it, as TestMain runs main only for the demo's
// and bench's guest commands.
func buildSelf(t *testing.T) string {
	t.Helper()
	bin, err := buildPackage(context.Background(), "", filepath.Join(t.TempDir(), "scxkit"), ".")
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// vmOrSkip runs vm as o says from the module root and returns its output
// and error, skipping when VMs cannot run here, unless CI=true.
func vmOrSkip(t *testing.T, o *vmOptions) (string, error) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: vm boots a VM")
	}
	if vmtest.InGuest() {
		t.Skip("vm boots its own VM from the host")
	}
	o.self = buildSelf(t)
	t.Chdir("../..")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var out bytes.Buffer
	start := time.Now()
	err := runVM(ctx, o, &out)
	if errors.Is(err, vmtest.ErrUnavailable) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("vm cannot run with CI=true: %v", err)
		}
		t.Skipf("vm cannot run here: %v", err)
	}
	t.Logf("vm output (%.1fs):\n%s", time.Since(start).Seconds(), out.String())
	return out.String(), err
}

var (
	vmAttachedLine = regexp.MustCompile(`(?m)^vm: attached: sched_ext enabled ops=simple switch_all=\w+ enable_seq=[1-9]\d*`)
	vmBusyLine     = regexp.MustCompile(`(?m)^vm: CPUs busy over the workload \(/proc/stat\): cpu0 [01]\.\d\d cpu1 [01]\.\d\d$`)
	vmDoneLine     = regexp.MustCompile(`(?m)^vm: workload mixed completed in \d+\.\ds: workload: `)
	vmDetachedLine = regexp.MustCompile(`(?m)^vm: detached: sched_ext disabled switch_all=false enable_seq=[1-9]\d*`)
)

// TestVM runs vm end to end on examples/simple of this checkout: it
// attaches, the workload completes, the CPUs' busy fractions are shown,
// and SIGINT detaches it.
func TestVM(t *testing.T) {
	out, err := vmOrSkip(t, &vmOptions{cpus: 2, seconds: 1, workload: loadMixed, ops: "simple",
		// Stats lines every 50ms: the run from attach to SIGINT lasts the
		// workload, sized to about 1s but faster on a quiet host (0.8s
		// seen), so a 1s interval may print none.
		pkg: "./examples/simple", args: []string{"-stats", "50ms"}})
	if err != nil {
		t.Fatalf("vm: %v", err)
	}
	for _, re := range []*regexp.Regexp{vmAttachedLine, vmDoneLine, vmBusyLine, vmDetachedLine, statsLine} {
		if !re.MatchString(out) {
			t.Errorf("output lacks a line matching %s", re)
		}
	}
	for _, want := range []string{
		"vm: starting simple: /vmtest/scheduler -stats 50ms",
		"vm: stopping simple (SIGINT)",
		"vm: simple exited (exit status 0)",
		"vm: sched_ext disabled: every task is back on the kernel's default scheduler",
		// The kernel's own word on the exit.
		`vm: kernel: sched_ext: BPF scheduler "simple" disabled (unregistered from user space)`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// TestVMNotAttached runs vm on a scheduler that exits before attaching
// (pair without its required -isolate): vm fails, saying so.
func TestVMNotAttached(t *testing.T) {
	out, err := vmOrSkip(t, &vmOptions{cpus: 2, seconds: 1, workload: loadNone, pkg: "./examples/pair"})
	if err == nil || !strings.Contains(err.Error(), "the scheduler's run failed in the VM") && !strings.Contains(err.Error(), "pair did not attach") {
		t.Fatalf("vm of a scheduler that never attaches: %v, want it to fail", err)
	}
	if re := regexp.MustCompile(`(?m)^vm: starting pair: \S+$`); !re.MatchString(out) {
		t.Errorf("output lacks a line matching %s (no arguments)", re)
	}
	for _, want := range []string{"pair exited before attaching", "vm: not attached: sched_ext disabled"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}
