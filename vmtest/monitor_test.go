package vmtest

import (
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		line string
		want FailureKind // 0: not a failure
	}{
		{"[    1.917476] Kernel panic - not syncing: Fatal exception in interrupt", FailPanic},
		{"[    1.881932] Oops: int3: 0000 [#1] SMP NOPTI", FailOops},
		{"[   12.000000] BUG: kernel NULL pointer dereference, address: 0000000000000008", FailBug},
		{"[   30.000000] watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [stress:123]", FailBug},
		{"[    5.000000] kernel BUG at kernel/sched/ext.c:1234!", FailBug},
		{`[    9.100000] sched_ext: BPF scheduler "simple" disabled (runnable task stall)`, FailSchedExtDisabled},
		{`[    9.100000] sched_ext: BPF scheduler "simple" disabled (scx_bpf_error)`, FailSchedExtDisabled},
		{`[    9.100000] sched_ext: BPF scheduler "simple" disabled (unregistered from user space)`, 0},
		{`[    9.100000] sched_ext: BPF scheduler "simple" disabled (unregistered from the main kernel)`, 0},
		{`[    9.000000] sched_ext: BPF scheduler "simple" enabled`, 0},
		{"[    3.809286] Run /init as init process", 0},
		{"[    0.000000] BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable", 0},
	} {
		got, bad := classify(tc.line)
		if !bad {
			got = 0
		}
		if got != tc.want {
			t.Errorf("classify(%q) = %v, want %v", tc.line, got, tc.want)
		}
	}
}

// feed runs console and payload text through a monitor and returns what it
// reported and copied.
func feed(t *testing.T, nonce, console, payload string) (events []monitorEvent, out string, m *monitor) {
	t.Helper()
	m = newMonitor(nonce)
	ch := make(chan monitorEvent, 16)
	m.watchConsole(io.NopCloser(strings.NewReader(console)), nil, ch)
	var b strings.Builder
	m.watchPayload(io.NopCloser(strings.NewReader(payload)), &b)
	close(ch)
	for ev := range ch {
		events = append(events, ev)
	}
	return events, b.String(), m
}

func TestMonitorStatus(t *testing.T) {
	const nonce = "vmtest-abc123"
	payload := "garbage" + nonce + " start\r\n=== RUN   TestX\r\n--- PASS: TestX\r\nexit 3\n" + nonce + " exit 3\n" + nonce + " exit 9\npartial"
	events, out, m := feed(t, nonce, "", payload)
	if len(events) != 0 {
		t.Errorf("events = %v, want none", events)
	}
	if want := "=== RUN   TestX\n--- PASS: TestX\nexit 3\npartial"; out != want {
		t.Errorf("payload output = %q, want %q", out, want)
	}
	if code, ok := m.exitCode(); !ok || code != 3 {
		t.Errorf("exit code = %d, %v; want the first status, 3", code, ok)
	}
	if _, ok := m.started(); !ok {
		t.Error("start line not recognised")
	}
}

func TestMonitorStatusNeedsNonce(t *testing.T) {
	_, out, m := feed(t, "vmtest-secret", "", "vmtest-guess exit 0\n")
	if _, ok := m.exitCode(); ok {
		t.Error("a status line without the nonce was accepted")
	}
	if out != "vmtest-guess exit 0\n" {
		t.Errorf("output = %q", out)
	}
}

func TestMonitorExpectSchedExtDisable(t *testing.T) {
	stall := `[ 9.1] sched_ext: BPF scheduler "s" disabled (runnable task stall)`
	console := strings.Join([]string{
		"[ 9.0] " + expectMarker + `"s" disabled \(runnable task stall\)`,
		stall, // expected: consumed
		stall, // a second one was not announced
		"",
	}, "\n")
	events, _, _ := feed(t, "n", console, "")
	want := []monitorEvent{{failure: FailSchedExtDisabled, line: stall}}
	if diff := cmp.Diff(want, events, cmp.AllowUnexported(monitorEvent{})); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestMonitorTail(t *testing.T) {
	var console strings.Builder
	for i := range consoleTail + 15 {
		fmt.Fprintf(&console, "line %d\n", i)
	}
	_, _, m := feed(t, "n", console.String(), "")
	tail := m.tail()
	if len(tail) != consoleTail || tail[0] != "line 15" || tail[len(tail)-1] != fmt.Sprintf("line %d", consoleTail+14) {
		t.Errorf("tail = %d lines, %q ... %q", len(tail), tail[0], tail[len(tail)-1])
	}
}

func FuzzMonitor(f *testing.F) {
	f.Add("n1 exit 3\n", "[ 1.0] Oops: x\n")
	f.Add("n1 start\r\nn1 exit -1\n", expectMarker+"(\n")
	f.Add("n1 exit 99999999999999999999\n", `sched_ext: "x" disabled (boom)`)
	f.Fuzz(func(t *testing.T, payload, console string) {
		m := newMonitor("n1")
		ch := make(chan monitorEvent, 16)
		m.watchConsole(io.NopCloser(strings.NewReader(console)), io.Discard, ch)
		var b strings.Builder
		m.watchPayload(io.NopCloser(strings.NewReader(payload)), &b)
		for _, line := range strings.SplitAfter(b.String(), "\n") {
			if newMonitor("n1").status(strings.TrimRight(line, "\r\n")) {
				t.Errorf("status line %q copied to the payload output", line)
			}
		}
		if len(m.tail()) > consoleTail {
			t.Errorf("tail has %d lines", len(m.tail()))
		}
	})
}
