package vmtest

import (
	"fmt"
	"os"
	"regexp"
	"testing"
)

// Environment variables init sets for the payload.
const (
	// EnvGuestKernel holds Kernel.Name of the running guest kernel. Its
	// presence means the process runs inside a vmtest guest.
	EnvGuestKernel = "SCXKIT_VMTEST_KERNEL"
	// EnvGuestRelease holds Kernel.Release (what uname -r should print),
	// empty for a local image.
	EnvGuestRelease = "SCXKIT_VMTEST_RELEASE"
)

// InGuest reports whether the process runs as the payload of a vmtest VM.
func InGuest() bool {
	return os.Getenv(EnvGuestKernel) != ""
}

// GuestKernel returns the kernel the guest was booted with, as far as the
// host described it: Name and Release. It is the zero Kernel outside a guest.
func GuestKernel() Kernel {
	return Kernel{Name: os.Getenv(EnvGuestKernel), Release: os.Getenv(EnvGuestRelease)}
}

// ExpectSchedExtDisable tells the host that the kernel is about to disable
// a sched_ext scheduler with an error (a stall, scx_bpf_error, ...) on
// purpose, so the host does not fail the run for it. pattern is a regular
// expression matched against the kernel's line, for example
// `"my_sched" disabled \(runnable task stall\)`; each call permits one
// such line. The announcement travels through the kernel log, so it is
// ordered with the kernel's own messages. Outside a guest it does nothing.
func ExpectSchedExtDisable(tb testing.TB, pattern string) {
	tb.Helper()
	if _, err := regexp.Compile(pattern); err != nil {
		tb.Fatalf("vmtest: ExpectSchedExtDisable: %v", err)
	}
	if !InGuest() {
		return
	}
	if err := writeKmsg(expectMarker + pattern); err != nil {
		tb.Fatalf("vmtest: ExpectSchedExtDisable: %v", err)
	}
}

// writeKmsg writes one line to the kernel log at warning level, which the
// console prints at Debian's default log level.
func writeKmsg(line string) error {
	f, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "<4>%s\n", line)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
