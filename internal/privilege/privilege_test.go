package privilege

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestWrap(t *testing.T) {
	errMine := fmt.Errorf("pkg: %w", os.ErrPermission)
	eperm := fmt.Errorf("load: %w", unix.EPERM)
	got := Wrap(eperm, errMine, "run as root")
	if !errors.Is(got, errMine) || !errors.Is(got, os.ErrPermission) || !errors.Is(got, unix.EPERM) ||
		!strings.HasSuffix(got.Error(), ": run as root") {
		t.Errorf("Wrap(EPERM) = %v: want the sentinel, EPERM and the hint", got)
	}
	if again := Wrap(got, errMine, "run as root"); again != got {
		t.Errorf("Wrap wrapped twice: %v", again)
	}
	other := fmt.Errorf("load: %w", unix.EINVAL)
	if Wrap(other, errMine, "x") != other || Wrap(nil, errMine, "x") != nil {
		t.Errorf("Wrap changed an error that is not EPERM")
	}
}
