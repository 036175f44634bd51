package smt

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// DefaultCgroupRoot is where cgroup v2 is usually mounted.
const DefaultCgroupRoot = "/sys/fs/cgroup"

// ErrNotCgroup is wrapped by the errors for a path that exists but is not a
// cgroup v2 directory.
var ErrNotCgroup = errors.New("not a cgroup v2 directory")

// CgroupID returns the id of the cgroup v2 directory dir: the inode number
// of the directory, which is what the kernel's cgroup id (kernfs node id,
// bpf_get_current_cgroup_id, cgroup->kn->id) is on 64-bit kernels. A
// missing dir gives an error wrapping fs.ErrNotExist; a directory outside
// cgroup v2 one wrapping ErrNotCgroup.
func CgroupID(dir string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return 0, fmt.Errorf("cgroup %s: %w", dir, &os.PathError{Op: "stat", Path: dir, Err: err})
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return 0, fmt.Errorf("cgroup %s: %w: not a directory", dir, ErrNotCgroup)
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		return 0, fmt.Errorf("cgroup %s: %w", dir, &os.PathError{Op: "statfs", Path: dir, Err: err})
	}
	if fs.Type != unix.CGROUP2_SUPER_MAGIC {
		return 0, fmt.Errorf("cgroup %s: %w: file system type %#x", dir, ErrNotCgroup, fs.Type)
	}
	return st.Ino, nil
}

// cgroupDir turns a cgroup path as /proc/PID/cgroup shows it ("/a/b"),
// or a directory under root, into the directory under root.
// It refuses a path with a ".." element, which could name a directory
// outside root.
func cgroupDir(root, path string) (string, error) {
	if err := checkCgroupPath(root, path); err != nil {
		return "", err
	}
	root = filepath.Clean(root)
	p := filepath.Clean(path)
	if p == root || strings.HasPrefix(p, root+"/") {
		return p, nil
	}
	dir := filepath.Join(root, p)
	if dir != root && !strings.HasPrefix(dir, root+"/") {
		// Unreachable without "..", but the check is cheap.
		return "", fmt.Errorf("%s is outside the cgroup v2 mount %s: give a path under it", dir, root)
	}
	return dir, nil
}

// checkCgroupPath checks the form of a cgroup path of Config.Isolate,
// without looking at the file system.
func checkCgroupPath(root, path string) error {
	switch {
	case path == "":
		return errors.New("empty cgroup path: give a cgroup as /proc/PID/cgroup shows it, e.g. /batch")
	case strings.ContainsRune(path, 0):
		return errors.New("cgroup path with a NUL byte")
	case slices.Contains(strings.Split(path, "/"), ".."):
		return fmt.Errorf(`".." is not allowed, as it could leave the cgroup v2 mount %s: give the cgroup's path as /proc/PID/cgroup shows it (e.g. /batch), or its directory under %s`, root, root)
	}
	return nil
}

// notExist reports whether err says the path is missing.
func notExist(err error) bool {
	return errors.Is(err, syscall.ENOENT)
}
