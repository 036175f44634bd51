package cpio

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func sample(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := NewWriter(&buf)
	body := "hello, initramfs\n"
	for _, err := range []error{
		w.Dir("/dir", 0o755),
		w.Dir("/dir/sub", 0o700),
		w.File("/dir/sub/file", 0o640, int64(len(body)), strings.NewReader(body)),
		w.File("/odd", 0o644, 3, strings.NewReader("abc")),
		w.Symlink("/dir/link", "sub/file"),
		w.CharDevice("/dir/console", 0o600, 5, 1),
		w.Close(),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// TestExtract checks the archive against an independent reader: busybox
// cpio, the same code family that unpacks initramfs images in userspace.
func TestExtract(t *testing.T) {
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("busybox not installed (scripts/setup installs it)")
	}
	archive := sample(t)
	if len(archive)%4 != 0 {
		t.Errorf("archive length %d is not a multiple of 4", len(archive))
	}
	dir := t.TempDir()
	cmd := exec.Command(bb, "cpio", "-i", "-d", "-m")
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(archive)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("busybox cpio -i: %v\n%s", err, out)
	}
	got, err := os.ReadFile(filepath.Join(dir, "dir/sub/file"))
	if err != nil || string(got) != "hello, initramfs\n" {
		t.Errorf("dir/sub/file = %q, %v", got, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "dir/sub/file")); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("dir/sub/file mode = %v, %v; want 0640", fi.Mode(), err)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "odd")); err != nil || string(got) != "abc" {
		t.Errorf("odd = %q, %v", got, err)
	}
	if target, err := os.Readlink(filepath.Join(dir, "dir/link")); err != nil || target != "sub/file" {
		t.Errorf("dir/link -> %q, %v", target, err)
	}
	if os.Geteuid() != 0 {
		t.Log("not root: device node not checked")
		return
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(dir, "dir/console"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFCHR || st.Rdev != 5<<8|1 {
		t.Errorf("dir/console: mode %o rdev %#x, want char device 5:1", st.Mode, st.Rdev)
	}
}

func TestDeterministic(t *testing.T) {
	if !bytes.Equal(sample(t), sample(t)) {
		t.Error("equal inputs gave different archives")
	}
}

func TestTrailer(t *testing.T) {
	a := sample(t)
	if !bytes.Contains(a, []byte("TRAILER!!!\x00")) {
		t.Error("no trailer entry")
	}
	if !bytes.HasPrefix(a, []byte("070701")) {
		t.Errorf("archive starts with %q, want newc magic", a[:6])
	}
}

func TestErrors(t *testing.T) {
	w := NewWriter(io.Discard)
	if err := w.File("short", 0o644, 10, strings.NewReader("abc")); err == nil {
		t.Error("short body: no error")
	}
	if err := w.Dir("ok", 0o755); err == nil {
		t.Error("writer kept going after an error")
	}

	w = NewWriter(io.Discard)
	if err := w.Dir("/", 0o755); err == nil {
		t.Error("empty name: no error")
	}
	w = NewWriter(io.Discard)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Dir("late", 0o755); err == nil {
		t.Error("write after close: no error")
	}

	w = NewWriter(failingWriter{})
	if err := w.Dir("d", 0o755); !errors.Is(err, errDisk) {
		t.Errorf("write error = %v, want %v", err, errDisk)
	}
}

var errDisk = errors.New("disk full")

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errDisk }
