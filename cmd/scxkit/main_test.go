package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
)

// TestMain lets the test binary stand in for scxkit where the demo runs
// it as its payload: TestDemo's VM runs this binary with demo-guest, exactly
// as it runs the scxkit binary.
//
// With SCXKIT_TEST_MAIN=1 in its environment the test binary is scxkit
// itself, for tests that run it in another process (as another user).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && (os.Args[1] == guestCommand || os.Args[1] == benchGuestCommand) || os.Getenv(mainEnv) == "1" {
		main()
	}
	os.Exit(m.Run())
}

// mainEnv makes the test binary run main; see TestMain.
const mainEnv = "SCXKIT_TEST_MAIN"

// runArgs runs the command line args and returns the exit status and the
// output.
func runArgs(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestUsage(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		code      int
		stdout    []string // substrings of stdout; nil: stdout must be empty
		stderr    []string // substrings of stderr; nil: stderr must be empty
		notStdout []string
		notStderr []string
	}{
		{name: "no command", args: nil, code: 2, stderr: []string{"Usage:", "status", "demo", "help"}},
		{name: "help", args: []string{"help"}, code: 0, stdout: []string{"Usage:", "scxkit <command>", "status", "demo"}, notStdout: []string{guestCommand}},
		{name: "-h", args: []string{"-h"}, code: 0, stdout: []string{"Usage:", "status", "demo"}},
		{name: "--help", args: []string{"--help"}, code: 0, stdout: []string{"Usage:"}},
		{name: "help status", args: []string{"help", "status"}, code: 0, stdout: []string{"scxkit status [--json]", "-json"}},
		{name: "help demo", args: []string{"help", "demo"}, code: 0, stdout: []string{"scxkit demo", "-kernel NAME", "-cpus N", "-fifo", "-seconds S", "7.3"}},
		{name: "help unknown", args: []string{"help", "nope"}, code: 2, stderr: []string{`unknown command "nope"`, "Usage:"}},
		{name: "help hidden", args: []string{"help", guestCommand}, code: 2, stderr: []string{"unknown command"}},
		{name: "help extra argument", args: []string{"help", "topology", "extra"}, code: 2, stderr: []string{`scxkit help: unexpected argument "extra": help takes one command, as in scxkit help topology`, "Usage:"}, notStderr: []string{"unknown command"}},
		{name: "unknown command", args: []string{"frobnicate"}, code: 2, stderr: []string{`scxkit: unknown command "frobnicate"`, "Usage:", "status", "demo"}},
		{name: "status -h", args: []string{"status", "-h"}, code: 0, stdout: []string{"scxkit status [--json]", "-json"}},
		{name: "demo --help", args: []string{"demo", "--help"}, code: 0, stdout: []string{"scxkit demo", "-cpus N"}},
		{name: "status bad flag", args: []string{"status", "--yaml"}, code: 2, stderr: []string{"flag provided but not defined: -yaml", "scxkit status [--json]"}},
		{name: "status extra argument", args: []string{"status", "now"}, code: 2, stderr: []string{`unexpected argument "now"`, "scxkit status [--json]"}},
		{name: "demo zero cpus", args: []string{"demo", "--cpus", "0"}, code: 2, stderr: []string{"--cpus 0", "scxkit demo"}},
		{name: "demo too many cpus", args: []string{"demo", "--cpus=256"}, code: 2, stderr: []string{"--cpus 256"}},
		{name: "demo negative seconds", args: []string{"demo", "--seconds", "-1"}, code: 2, stderr: []string{"--seconds -1"}},
		{name: "demo bad seconds", args: []string{"demo", "--seconds", "soon"}, code: 2, stderr: []string{"invalid value"}},
		{name: "demo unknown kernel", args: []string{"demo", "--kernel", "2.6"}, code: 2, stderr: []string{`--kernel "2.6": unknown kernel (known: 6.16, 7.0, 7.3)`}},
		{name: "demo-guest bad seconds", args: []string{guestCommand, "--seconds", "0"}, code: 2, stderr: []string{"--seconds 0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runArgs(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit status %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, stdout, stderr)
			}
			check := func(what, got string, want, notWant []string) {
				t.Helper()
				if want == nil && got != "" {
					t.Errorf("%s not empty:\n%s", what, got)
				}
				for _, w := range want {
					if !strings.Contains(got, w) {
						t.Errorf("%s lacks %q:\n%s", what, w, got)
					}
				}
				for _, w := range notWant {
					if strings.Contains(got, w) {
						t.Errorf("%s has %q:\n%s", what, w, got)
					}
				}
			}
			check("stdout", stdout, tt.stdout, tt.notStdout)
			check("stderr", stderr, tt.stderr, tt.notStderr)
		})
	}
}
