// Package cgroupfs resolves cgroup v2 paths to cgroup ids, once for the
// packages that hand cgroups to BPF (smt, latency, preempt). A cgroup's id
// is the inode number of its directory under the cgroup2 mount, which is
// what the kernel's cgroup id is on 64-bit kernels (kernfs node id,
// cgroup->kn->id, bpf_get_current_cgroup_id).
//
// A cgroup path is either a path in the hierarchy, as /proc/PID/cgroup
// shows it ("/system.slice", or "system.slice"), or the cgroup's directory
// under the mount ("/sys/fs/cgroup/system.slice"). A path with a ".."
// element is refused, as it could name a directory outside the mount, and
// so are an empty path and one with a NUL byte; nothing is looked up for
// them. Looking a cgroup up only stats its directory (stat and statfs):
// nothing is opened, so a FIFO or a device node where a cgroup was expected
// cannot block.
//
// Errors carry no package prefix and wrap this package's sentinels; each
// public package words them for its users and wraps its own sentinels
// around them.
package cgroupfs

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/scxkit/scxkit/internal/mounts"
	"golang.org/x/sys/unix"
)

// DefaultMount is where cgroup v2 is usually mounted.
const DefaultMount = "/sys/fs/cgroup"

var (
	// ErrNotCgroup is wrapped by the errors for a path that exists but
	// is not a cgroup v2 directory.
	ErrNotCgroup = errors.New("not a cgroup v2 directory")
	// ErrEmpty is returned for an empty cgroup path.
	ErrEmpty = errors.New("empty cgroup path")
	// ErrNUL is returned for a cgroup path with a NUL byte.
	ErrNUL = errors.New("cgroup path with a NUL byte")
	// ErrDotDot is returned for a cgroup path with a ".." element.
	ErrDotDot = errors.New(`".." is not allowed`)
)

// Cgroup is a cgroup of the v2 hierarchy.
type Cgroup struct {
	// Path is its path in the hierarchy, "/" for the root.
	Path string
	// Dir is its directory: Path under the cgroup2 mount.
	Dir string
	// ID is its cgroup id, the inode number of Dir.
	ID uint64
}

// Mount returns where the cgroup v2 hierarchy is mounted: the first
// cgroup2 file system in /proc/self/mounts. That is /sys/fs/cgroup on
// systems in unified mode, often /sys/fs/cgroup/unified in hybrid mode.
func Mount() (string, error) {
	f, err := os.Open("/proc/self/mounts")
	if err != nil {
		return "", fmt.Errorf("find the cgroup2 mount: %w", err)
	}
	defer f.Close()
	return ParseMounts(f)
}

// ParseMounts finds the first cgroup2 mount point in the mounts table read
// from r (the format of /proc/mounts, octal escapes and all).
func ParseMounts(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 3 && fields[2] == "cgroup2" {
			return mounts.Unescape(fields[1]), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("find the cgroup2 mount: %w", err)
	}
	return "", errors.New("find the cgroup2 mount: no cgroup2 file system in /proc/self/mounts: mount one (mount -t cgroup2 none /sys/fs/cgroup/unified)")
}

// CheckPath checks the form of a cgroup path without looking at the file
// system. It returns nil, ErrEmpty, ErrNUL or ErrDotDot, unwrapped, for the
// caller to word.
func CheckPath(path string) error {
	switch {
	case path == "":
		return ErrEmpty
	case strings.ContainsRune(path, 0):
		return ErrNUL
	case slices.Contains(strings.Split(path, "/"), ".."):
		return ErrDotDot
	}
	return nil
}

// WithoutDotDot returns path as a hierarchy path without its "..", "." and
// empty elements: what to suggest instead of a path that ErrDotDot
// refused ("../x" and "/a/../b" give "/x" and "/a/b").
func WithoutDotDot(path string) string {
	var keep []string
	for _, seg := range strings.Split(path, "/") {
		if seg != ".." && seg != "." && seg != "" {
			keep = append(keep, seg)
		}
	}
	return "/" + strings.Join(keep, "/")
}

// Dir returns the directory of the cgroup at path under mount: path itself
// when it is mount or a path under it, else path taken as a hierarchy path
// and joined under mount. It refuses what CheckPath refuses.
func Dir(mount, path string) (string, error) {
	if err := CheckPath(path); err != nil {
		return "", err
	}
	mount = filepath.Clean(mount)
	p := filepath.Clean(path)
	if p == mount || strings.HasPrefix(p, mount+"/") {
		return p, nil
	}
	dir := filepath.Join(mount, "/"+p)
	if dir != mount && !strings.HasPrefix(dir, mount+"/") {
		// Unreachable without "..", but the check is cheap.
		return "", fmt.Errorf("%w: %s is outside the cgroup v2 mount %s", ErrDotDot, dir, mount)
	}
	return dir, nil
}

// HierPath returns the hierarchy path of dir, a directory under mount: "/"
// for mount itself.
func HierPath(mount, dir string) string {
	rel, err := filepath.Rel(filepath.Clean(mount), dir)
	if err != nil || rel == "." {
		return "/"
	}
	return "/" + rel
}

// ID returns the cgroup id of the cgroup v2 directory dir. A missing dir
// gives a *fs.PathError (op "stat") wrapping fs.ErrNotExist; a file, or a
// directory outside cgroup v2, an error wrapping ErrNotCgroup. Errors name
// dir.
func ID(dir string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return 0, &fs.PathError{Op: "stat", Path: dir, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return 0, fmt.Errorf("%w: %s is not a directory", ErrNotCgroup, dir)
	}
	var sfs unix.Statfs_t
	if err := unix.Statfs(dir, &sfs); err != nil {
		return 0, &fs.PathError{Op: "statfs", Path: dir, Err: err}
	}
	if sfs.Type != unix.CGROUP2_SUPER_MAGIC {
		return 0, fmt.Errorf("%w: %s is on a file system of type %#x", ErrNotCgroup, dir, sfs.Type)
	}
	return st.Ino, nil
}

// Lookup resolves path (see Dir) to the cgroup under mount. Its errors are
// those of Dir and ID.
func Lookup(mount, path string) (Cgroup, error) {
	dir, err := Dir(mount, path)
	if err != nil {
		return Cgroup{}, err
	}
	id, err := ID(dir)
	if err != nil {
		return Cgroup{}, err
	}
	return Cgroup{Path: HierPath(mount, dir), Dir: dir, ID: id}, nil
}
