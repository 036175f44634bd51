package scx

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestPermissionError checks the error Load returns to a user without
// privileges: what rlimit.RemoveMemlock and the kernel answer (EPERM)
// becomes an error that wraps ErrPermission and says what is needed.
func TestPermissionError(t *testing.T) {
	memlock := fmt.Errorf("failed to set memlock rlimit: %w", unix.EPERM)
	for _, err := range []error{
		fmt.Errorf("load simple: %w", permissionError(memlock)),
		&LoadError{Name: "simple", Err: permissionError(fmt.Errorf("map .bss: %w", unix.EPERM))},
	} {
		if !errors.Is(err, ErrPermission) || !errors.Is(err, os.ErrPermission) || !errors.Is(err, unix.EPERM) {
			t.Errorf("%v: does not wrap ErrPermission, os.ErrPermission and EPERM", err)
		}
		for _, want := range []string{"CAP_BPF", "CAP_PERFMON", "CAP_SYS_ADMIN", "root", "sudo", "setcap"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%q lacks %q", err, want)
			}
		}
	}
	other := fmt.Errorf("map .bss: %w", unix.EINVAL)
	if got := permissionError(other); got != other {
		t.Errorf("EINVAL became %v", got)
	}
	if err := permissionError(memlock); permissionError(err) != err {
		t.Error("wrapped twice")
	}
}
