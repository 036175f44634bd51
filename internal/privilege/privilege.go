// Package privilege turns the kernel's "operation not permitted" into an
// error that says which capabilities a BPF user needs and how to get them.
// Each public package keeps its own sentinel (scx.ErrPermission,
// latency.ErrPermission) so that callers match the one they know; this
// package only does the wrapping, once.
package privilege

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Wrap returns err wrapped with sentinel and hint when the kernel refused
// for want of privileges (EPERM), and err unchanged otherwise (nil
// included, and an error that already wraps sentinel).
func Wrap(err, sentinel error, hint string) error {
	if err == nil || !errors.Is(err, unix.EPERM) || errors.Is(err, sentinel) {
		return err
	}
	return fmt.Errorf("%w: %w: %s", sentinel, err, hint)
}
