package latency

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// startOnce is the "start" helper: it calls Start and prints the error,
// and whether it wraps ErrPermission and os.ErrPermission.
func startOnce() {
	p, err := Start(context.Background(), nil)
	if err == nil {
		p.Close()
	}
	fmt.Printf("is ErrPermission %v, is os.ErrPermission %v: %v\n", errors.Is(err, ErrPermission), errors.Is(err, os.ErrPermission), err)
}

func TestPermissionError(t *testing.T) {
	// What rlimit.RemoveMemlock returns to a user without privileges.
	eperm := fmt.Errorf("raise the memlock limit: %w", fmt.Errorf("failed to set memlock rlimit: %w", unix.EPERM))
	err := permissionError(eperm)
	if !errors.Is(err, ErrPermission) || !errors.Is(err, os.ErrPermission) || !errors.Is(err, unix.EPERM) {
		t.Errorf("%v: does not wrap ErrPermission, os.ErrPermission and EPERM", err)
	}
	for _, want := range []string{"raise the memlock limit", "CAP_BPF", "CAP_PERFMON", "root", "sudo", "setcap cap_bpf,cap_perfmon"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
	if again := permissionError(err); again != err {
		t.Errorf("wrapped twice: %v", again)
	}
	other := fmt.Errorf("load: %w", unix.EINVAL)
	if got := permissionError(other); got != other || errors.Is(got, ErrPermission) {
		t.Errorf("EINVAL became %v", got)
	}
}

// TestStartUnprivileged runs Start as user nobody, in a copy of the test
// binary: the error must say which privileges are missing and how to get
// them.
func TestStartUnprivileged(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("not root: cannot switch to user nobody")
	}
	uid, gid := nobody(t)
	exe := copyExecutable(t)
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Dir = filepath.Dir(exe)
	cmd.Env = append(os.Environ(), helperEnv+"=start")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	got := string(out)
	t.Logf("as nobody: %s", got)
	if !strings.Contains(got, "is ErrPermission true, is os.ErrPermission true: ") {
		t.Errorf("Start as nobody does not wrap ErrPermission: %s", got)
	}
	for _, want := range []string{"CAP_BPF", "CAP_PERFMON", "sudo"} {
		if !strings.Contains(got, want) {
			t.Errorf("Start as nobody: %q lacks %q", got, want)
		}
	}
}

// nobody returns the uid and gid of user nobody.
func nobody(t *testing.T) (uid, gid uint32) {
	t.Helper()
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	uid64, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid64, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		t.Skipf("user nobody has uid %q, gid %q", u.Uid, u.Gid)
	}
	return uint32(uid64), uint32(gid64)
}

// copyExecutable copies the test binary into a directory every user can
// read, as the go command builds it in one only its user can.
func copyExecutable(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "scxkit-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	exe := filepath.Join(dir, "test.exe")
	dst, err := os.OpenFile(exe, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return exe
}
