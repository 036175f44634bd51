package scxkit_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestFailuresSummary runs scripts/failures, which closes a failed
// scripts/test run, on a log shaped like `go test -v ./...` with VM
// packages: each failure must name its kernel and carry its own log lines,
// and nothing from passing tests or other kernels may leak in.
func TestFailuresSummary(t *testing.T) {
	const log = `=== RUN   TestHost
    host_test.go:10: host detail
--- PASS: TestHost (0.00s)
ok  	example.com/host	0.1s
vmtest: kernel 6.16 (6.16.3+deb13-amd64), 2 vCPUs (1 sockets x 2 cores x 1 threads): booting
=== RUN   TestStall
    stall_test.go:20: ejected after 4s on 6.16
--- PASS: TestStall (4.00s)
=== RUN   TestSignals
=== RUN   TestSignals/interrupt
    signals_test.go:30: loader exited 1
        second line of the message
--- FAIL: TestSignals (1.00s)
    --- FAIL: TestSignals/interrupt (1.00s)
console[6.16]: [    6.8] reboot: Power down
vmtest: kernel 6.16: FAIL: guest tests failed (tcg, boot 7s, total 40s)
vmtest: kernel 7.3 (7.3.4+deb13-amd64), 2 vCPUs (1 sockets x 2 cores x 1 threads): booting
=== RUN   TestStall
    stall_test.go:20: ejected after 4s on 7.3
    stall_test.go:44: after the stall: disabling; want disabled
--- FAIL: TestStall (4.00s)
vmtest: kernel 7.3: FAIL: guest tests failed (tcg, boot 7s, total 40s)
FAIL
FAIL	example.com/vm	80.0s
`
	want := []string{
		"[kernel 6.16] --- FAIL: TestSignals (1.00s)",
		"    signals_test.go:30: loader exited 1",
		"        second line of the message",
		"[kernel 6.16] --- FAIL: TestSignals/interrupt (1.00s)",
		"vmtest: kernel 6.16: FAIL: guest tests failed (tcg, boot 7s, total 40s)",
		"[kernel 7.3] --- FAIL: TestStall (4.00s)",
		"    stall_test.go:20: ejected after 4s on 7.3",
		"    stall_test.go:44: after the stall: disabling; want disabled",
		"vmtest: kernel 7.3: FAIL: guest tests failed (tcg, boot 7s, total 40s)",
		"FAIL\texample.com/vm\t80.0s",
	}
	if diff := cmp.Diff(want, runFailures(t, log)); diff != "" {
		t.Errorf("scripts/failures (-want +got):\n%s", diff)
	}

	passing := "=== RUN   TestA\n--- PASS: TestA (0.00s)\nok  \texample.com/a\t0.1s\n"
	if got := runFailures(t, passing); len(got) != 1 || !strings.HasPrefix(got[0], "(no failed test") {
		t.Errorf("summary of a passing log: %q; want one line saying nothing failed", got)
	}
}

func runFailures(t *testing.T, log string) []string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "test.log")
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("scripts/failures", path).CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/failures: %v\n%s", err, out)
	}
	return strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
}

// TestTimingsTable runs scripts/timings, which closes every scripts/test
// run, on a log with a host package and a VM package: packages sorted by
// wall time, each with its VM runs (durations in the forms vmtest prints).
func TestTimingsTable(t *testing.T) {
	const log = `ok  	github.com/scxkit/scxkit/energy	1.054s
vmtest: kernel 6.16 (6.16.3+deb13-amd64), 2 vCPUs (1 sockets x 2 cores x 1 threads): booting
vmtest: kernel 6.16: ok (tcg, boot 8.318s, total 1m2.5s)
vmtest: kernel 7.3 (7.3.4+deb13-amd64), 2 vCPUs (1 sockets x 2 cores x 1 threads): booting
vmtest: kernel 7.3: FAIL: vmtest: kernel 7.3: payload exited with status 1 (tcg, boot 950ms, total 20.25s)
FAIL	github.com/scxkit/scxkit/examples/simple	90.2s
ok  	github.com/scxkit/scxkit	24.379s
`
	path := filepath.Join(t.TempDir(), "test.log")
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("scripts/timings", path).CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/timings: %v\n%s", err, out)
	}
	want := []string{
		"timings: package wall time (s), slowest first; VM runs as kernel:boot/total s",
		"     90.2  examples/simple                              6.16:8/62 7.3:1/20",
		"     24.4  .                                           ",
		"      1.1  energy                                      ",
		"timings: 3 packages, 116 s summed; 2 VM runs, 83 s in them, 9 s of it booting",
	}
	if diff := cmp.Diff(want, strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")); diff != "" {
		t.Errorf("scripts/timings (-want +got):\n%s", diff)
	}
}
