package smt

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
func cgroupDir(root, path string) (string, error) {
	if path == "" {
		return "", errors.New("empty cgroup path")
	}
	root = filepath.Clean(root)
	p := filepath.Clean(path)
	if p == root || strings.HasPrefix(p, root+"/") {
		return p, nil
	}
	return filepath.Join(root, p), nil
}

// notExist reports whether err says the path is missing.
func notExist(err error) bool {
	return errors.Is(err, syscall.ENOENT)
}
