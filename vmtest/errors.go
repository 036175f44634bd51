package vmtest

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// SetupCommand is the command that installs what vmtest needs on a Debian
// machine, run from the root of the scxkit module.
const SetupCommand = "scripts/setup"

// ErrUnavailable is wrapped by every error that means the host lacks something
// vmtest needs (qemu, busybox, apt, a kernel package). Main skips VM tests on
// such errors unless CI=true.
var ErrUnavailable = errors.New("vmtest unavailable on this host")

// SetupError reports a missing prerequisite and what to do about it.
type SetupError struct {
	Missing string // what is missing, e.g. "qemu-system-x86_64"
	Fix     string // what to run or set
	Err     error  // the underlying error, if any
}

func (e *SetupError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "vmtest: %s", e.Missing)
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if e.Fix != "" {
		fmt.Fprintf(&b, " (fix: %s)", e.Fix)
	}
	return b.String()
}

func (e *SetupError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrUnavailable}
	}
	return []error{ErrUnavailable, e.Err}
}

// FailureKind classifies why a VM run failed.
type FailureKind int

const (
	// FailExit: the payload exited with a non-zero status.
	FailExit FailureKind = iota + 1
	// FailPanic: the kernel panicked.
	FailPanic
	// FailOops: the kernel reported an oops.
	FailOops
	// FailBug: the kernel reported a BUG (including soft lockups).
	FailBug
	// FailSchedExtDisabled: a sched_ext scheduler was disabled with an
	// error reason that the guest had not announced with
	// ExpectSchedExtDisable.
	FailSchedExtDisabled
	// FailTimeout: the run did not finish within VM.Timeout.
	FailTimeout
	// FailNoStatus: qemu exited before the payload's exit status arrived
	// (qemu error, guest reboot, init killed).
	FailNoStatus
	// FailBootTimeout: the guest did not start its payload within
	// VM.BootTimeout, on two boots in a row.
	FailBootTimeout
)

var failureNames = map[FailureKind]string{
	FailExit:             "payload failed",
	FailPanic:            "kernel panic",
	FailOops:             "kernel oops",
	FailBug:              "kernel BUG",
	FailSchedExtDisabled: "unexpected sched_ext disable",
	FailTimeout:          "timeout",
	FailNoStatus:         "no exit status",
	FailBootTimeout:      "boot timeout",
}

func (k FailureKind) String() string {
	if s, ok := failureNames[k]; ok {
		return s
	}
	return fmt.Sprintf("FailureKind(%d)", int(k))
}

// RunError reports a VM run that failed. Console holds the last lines of the
// kernel console, which usually say why.
type RunError struct {
	Kernel   string        // Kernel.Name
	Kind     FailureKind   // what went wrong
	ExitCode int           // payload exit status, for FailExit
	Line     string        // the console line that triggered a kernel failure
	Timeout  time.Duration // the bound that ran out, for FailTimeout and FailBootTimeout
	Detail   string        // qemu's own output, for FailNoStatus and FailBootTimeout
	Console  []string      // last console lines
	// Report holds the console line that triggered a kernel failure and
	// the lines that followed it (an oops's registers and Code line, say),
	// kept even when a long dump pushed them out of Console.
	Report []string
}

func (e *RunError) Error() string {
	switch e.Kind {
	case FailExit:
		return fmt.Sprintf("vmtest: kernel %s: payload exited with status %d", e.Kernel, e.ExitCode)
	case FailTimeout:
		return fmt.Sprintf("vmtest: kernel %s: timed out after %v", e.Kernel, e.Timeout)
	case FailBootTimeout:
		msg := fmt.Sprintf("vmtest: kernel %s: the guest did not start its payload within %v, twice (a hung boot; the console tail shows how far it got)", e.Kernel, e.Timeout)
		if d := strings.TrimSpace(e.Detail); d != "" {
			msg += "; qemu said: " + d
		}
		return msg
	case FailNoStatus:
		msg := fmt.Sprintf("vmtest: kernel %s: qemu exited before the payload reported its exit status", e.Kernel)
		if d := strings.TrimSpace(e.Detail); d != "" {
			msg += ": " + d
		}
		return msg
	default:
		return fmt.Sprintf("vmtest: kernel %s: %v: %s", e.Kernel, e.Kind, e.Line)
	}
}

// ConsoleTail formats the console lines kept in e for a failure report.
func (e *RunError) ConsoleTail() string { return formatTail(e.Kernel, e.Console) }

// formatTail formats console lines of a kernel's run for a report.
func formatTail(kernel string, lines []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "last %d console lines (kernel %s):\n", len(lines), kernel)
	for _, l := range lines {
		b.WriteString("  | ")
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

// TCGPokeRace reports whether the failure is qemu TCG's race with the
// guest kernel's live code patching, not a kernel bug: the kernel oopsed
// on an int3 trap, yet the byte before the trapping address (where the
// int3 was) no longer holds one, as its Code line shows. The kernel patches
// code (static keys, static calls) by writing an int3 first, the new bytes
// next, and finally syncing every CPU; an int3 that traps after that
// finished can only come from a vCPU running a stale translation of the
// old bytes, which real CPUs never do. Seen with qemu 10 and several TCG
// threads twice in about 200 boots in one day, both at a static branch in
// __schedule on 7.3, one of them while sched_ext was disabling a scheduler.
// The oops and its Code line are read from Report, so a sched_ext dump that
// follows them (hundreds of lines when a scheduler is being disabled) cannot
// hide them. (A CI run on 7.0, Oops: int3 at sched_tick+0xea while sched_ext
// was disabling, went unrecognised when only the rolling console tail was
// searched; the likely reason is that the dump scrolled the oops out of it.)
func (e *RunError) TCGPokeRace() bool {
	if e.Kind != FailOops || !strings.Contains(e.Line, "Oops: int3") {
		return false
	}
	lines := e.Report
	if len(lines) == 0 {
		lines = e.Console
	}
	oops := -1
	for i, l := range lines {
		if strings.Contains(l, "Oops: int3") {
			oops = i
			break
		}
	}
	if oops < 0 {
		return false
	}
	for _, l := range lines[oops:] {
		_, code, ok := strings.Cut(l, "Code: ")
		if !ok {
			continue
		}
		bytes := strings.Fields(code)
		for i, b := range bytes {
			if strings.HasPrefix(b, "<") {
				return i > 0 && bytes[i-1] != "cc"
			}
		}
		return false
	}
	return false
}
