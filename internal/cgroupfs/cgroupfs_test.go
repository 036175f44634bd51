package cgroupfs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseMounts(t *testing.T) {
	const mounts = `sysfs /sys sysfs rw 0 0
cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0
cgroup2 /sys/fs/cgroup/my\040unified cgroup2 rw,relatime 0 0
cgroup2 /second cgroup2 rw 0 0
`
	got, err := ParseMounts(strings.NewReader(mounts))
	if err != nil || got != "/sys/fs/cgroup/my unified" {
		t.Errorf("ParseMounts = %q, %v; want the first cgroup2 mount, unescaped", got, err)
	}
	if _, err := ParseMounts(strings.NewReader("sysfs /sys sysfs rw 0 0\n")); err == nil || !strings.Contains(err.Error(), "no cgroup2 file system") {
		t.Errorf("no cgroup2: %v", err)
	}
	// A line longer than the scanner takes is an error, not a hang or a
	// silent miss.
	if _, err := ParseMounts(strings.NewReader(strings.Repeat("x", 1<<17) + "\n")); err == nil {
		t.Error("an overlong line: no error")
	}
}

func TestCheckPath(t *testing.T) {
	for path, want := range map[string]error{
		"":               ErrEmpty,
		"/a\x00b":        ErrNUL,
		"..":             ErrDotDot,
		"../x":           ErrDotDot,
		"/a/../b":        ErrDotDot,
		"a/..":           ErrDotDot,
		"/a/..b/c":       nil, // a name that starts with two dots
		"/a/./b":         nil,
		"/":              nil,
		"system.slice":   nil,
		"/sys/fs/cgroup": nil,
	} {
		if got := CheckPath(path); got != want {
			t.Errorf("CheckPath(%q) = %v, want %v", path, got, want)
		}
	}
}

func TestWithoutDotDot(t *testing.T) {
	for path, want := range map[string]string{
		"../x": "/x", "/a/../b": "/a/b", "..": "/", "x/../../etc": "/x/etc", "./a//b/": "/a/b",
	} {
		if got := WithoutDotDot(path); got != want {
			t.Errorf("WithoutDotDot(%q) = %q, want %q", path, got, want)
		}
	}
}

func TestDir(t *testing.T) {
	for _, c := range []struct{ mount, path, want string }{
		{"/sys/fs/cgroup", "/batch", "/sys/fs/cgroup/batch"},
		{"/sys/fs/cgroup", "batch/a", "/sys/fs/cgroup/batch/a"},
		{"/sys/fs/cgroup", "/sys/fs/cgroup/batch", "/sys/fs/cgroup/batch"},
		{"/sys/fs/cgroup", "/sys/fs/cgroup", "/sys/fs/cgroup"},
		{"/sys/fs/cgroup/", "/sys/fs/cgroup/a", "/sys/fs/cgroup/a"},
		{"/sys/fs/cgroup", "/", "/sys/fs/cgroup"},
		{"/sys/fs/cgroup", "/a//b/", "/sys/fs/cgroup/a/b"},
		// Only a path under the mount is taken as a directory.
		{"/sys/fs/cgroup", "/sys/fs/cgroupx", "/sys/fs/cgroup/sys/fs/cgroupx"},
		{"/sys/fs/cgroup", "/etc", "/sys/fs/cgroup/etc"},
		{"/sys/fs/cgroup", "sys/fs/cgroup/a", "/sys/fs/cgroup/sys/fs/cgroup/a"},
	} {
		got, err := Dir(c.mount, c.path)
		if err != nil || got != c.want {
			t.Errorf("Dir(%q, %q) = %q, %v; want %q", c.mount, c.path, got, err, c.want)
		}
	}
	for _, path := range []string{"../../etc", "a/../../etc", "..", "/sys/fs/cgroup/../../../etc", "/a/..", "", "/a\x00"} {
		if got, err := Dir("/sys/fs/cgroup", path); err == nil {
			t.Errorf("Dir(%q) = %q: no error", path, got)
		}
	}
}

func TestHierPath(t *testing.T) {
	for _, c := range []struct{ mount, dir, want string }{
		{"/sys/fs/cgroup", "/sys/fs/cgroup", "/"},
		{"/sys/fs/cgroup/", "/sys/fs/cgroup/a/b", "/a/b"},
		{"/sys/fs/cgroup", "/sys/fs/cgroup/a", "/a"},
	} {
		if got := HierPath(c.mount, c.dir); got != c.want {
			t.Errorf("HierPath(%q, %q) = %q, want %q", c.mount, c.dir, got, c.want)
		}
	}
}

// TestIDNotCgroup: what exists but is no cgroup v2 directory is refused
// with ErrNotCgroup, a missing path with fs.ErrNotExist, and neither
// opens what it looks at: a FIFO does not block.
func TestIDNotCgroup(t *testing.T) {
	tmp := t.TempDir()
	file := filepath.Join(tmp, "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(tmp, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		dir  string
		is   error
		want string
	}{
		{tmp, ErrNotCgroup, "is on a file system of type"},
		{file, ErrNotCgroup, file + " is not a directory"},
		{fifo, ErrNotCgroup, fifo + " is not a directory"},
		{filepath.Join(tmp, "nope"), fs.ErrNotExist, "stat " + filepath.Join(tmp, "nope") + ": no such file or directory"},
		{file + "/x", syscall.ENOTDIR, "not a directory"},
	} {
		done := make(chan error, 1)
		go func() {
			_, err := ID(c.dir)
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("ID(%q) = %v; want %v containing %q", c.dir, err, c.is, c.want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("ID(%q) blocks", c.dir)
		}
	}
}

// TestLookupRoot checks the running system's cgroup2 mount: the root
// cgroup is found by its hierarchy path and its directory, with id 1.
func TestLookupRoot(t *testing.T) {
	mount, err := Mount()
	if err != nil {
		t.Skipf("no cgroup2 mount: %v", err)
	}
	root, err := Lookup(mount, "/")
	if err != nil {
		t.Fatal(err)
	}
	byDir, err := Lookup(mount, mount)
	if err != nil {
		t.Fatal(err)
	}
	// The root cgroup's id is 1 (kernfs's root inode).
	if root != byDir || root.Path != "/" || root.Dir != filepath.Clean(mount) || root.ID != 1 {
		t.Errorf(`Lookup("/") = %+v, Lookup(%q) = %+v`, root, mount, byDir)
	}
	// A file of the cgroup2 file system is not a cgroup.
	if _, err := Lookup(mount, "/cgroup.procs"); !errors.Is(err, ErrNotCgroup) || !strings.Contains(err.Error(), "is not a directory") {
		t.Errorf("Lookup of cgroup.procs: %v, want ErrNotCgroup", err)
	}
	if _, err := Lookup(mount, "/scxkit-no-such-cgroup"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Lookup of a missing cgroup: %v, want fs.ErrNotExist", err)
	}
	if _, err := Lookup(mount, "../x"); err != ErrDotDot {
		t.Errorf(`Lookup("../x") = %v, want ErrDotDot`, err)
	}
}
