package smt

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/scxkit/scxkit/internal/cgroupfs"
)

// DefaultCgroupRoot is where cgroup v2 is usually mounted.
const DefaultCgroupRoot = cgroupfs.DefaultMount

// ErrNotCgroup is wrapped by the errors for a path that exists but is not a
// cgroup v2 directory.
var ErrNotCgroup = cgroupfs.ErrNotCgroup

// CgroupID returns the id of the cgroup v2 directory dir: the inode number
// of the directory, which is what the kernel's cgroup id (kernfs node id,
// bpf_get_current_cgroup_id, cgroup->kn->id) is on 64-bit kernels. A
// missing dir gives an error wrapping fs.ErrNotExist; a directory outside
// cgroup v2 one wrapping ErrNotCgroup.
func CgroupID(dir string) (uint64, error) {
	id, err := cgroupfs.ID(dir)
	if err != nil {
		return 0, fmt.Errorf("cgroup %s: %w", dir, err)
	}
	return id, nil
}

// cgroupDir turns a cgroup path as /proc/PID/cgroup shows it ("/a/b"),
// or a directory under root, into the directory under root.
// It refuses a path with a ".." element, which could name a directory
// outside root.
func cgroupDir(root, path string) (string, error) {
	if err := checkCgroupPath(root, path); err != nil {
		return "", err
	}
	return cgroupfs.Dir(root, path)
}

// checkCgroupPath checks the form of a cgroup path of Config.Isolate,
// without looking at the file system.
func checkCgroupPath(root, path string) error {
	switch err := cgroupfs.CheckPath(path); err {
	case cgroupfs.ErrEmpty:
		return fmt.Errorf("%w: give a cgroup as /proc/PID/cgroup shows it, e.g. /batch", err)
	case cgroupfs.ErrDotDot:
		return fmt.Errorf(`%w, as it could leave the cgroup v2 mount %s: give the cgroup's path as /proc/PID/cgroup shows it (e.g. /batch), or its directory under %s`, err, root, root)
	default:
		return err
	}
}

// notExist reports whether err says the path is missing.
func notExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist)
}
