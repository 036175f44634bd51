package latency

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/scxkit/scxkit/internal/cgroupfs"
)

// Cgroup is a cgroup of the v2 hierarchy.
type Cgroup struct {
	// Path is its path in the hierarchy, "/" for the root, as
	// /proc/PID/cgroup shows it ("0::/system.slice").
	Path string
	// Dir is its directory: Path under the cgroup2 mount.
	Dir string
	// ID is its cgroup id, the inode number of Dir, which is what
	// bpf_get_current_cgroup_id() returns for its tasks.
	ID uint64
}

// Cgroup2Mount returns where the cgroup v2 hierarchy is mounted: the first
// cgroup2 file system in /proc/self/mounts. That is /sys/fs/cgroup on
// systems in unified mode, often /sys/fs/cgroup/unified in hybrid mode.
func Cgroup2Mount() (string, error) {
	return cgroupfs.Mount()
}

// LookupCgroup resolves path, either in the cgroup v2 hierarchy ("/a/b") or
// in the file system under the cgroup2 mount, to a Cgroup. The error wraps
// ErrInvalid (and fs.ErrNotExist when nothing is there) and names
// the path.
func LookupCgroup(path string) (Cgroup, error) {
	mount, err := Cgroup2Mount()
	if err != nil {
		return Cgroup{}, err
	}
	return lookupCgroup(mount, path)
}

func lookupCgroup(mount, path string) (Cgroup, error) {
	c, err := cgroupfs.Lookup(mount, path)
	switch {
	case err == nil:
		return Cgroup(c), nil
	case err == cgroupfs.ErrEmpty:
		return Cgroup{}, optErr(`%v: give a path in the cgroup v2 hierarchy such as "/system.slice", or "/" for the root`, err)
	case err == cgroupfs.ErrNUL:
		return Cgroup{}, optErr("cgroup %q: %v", path, err)
	case err == cgroupfs.ErrDotDot:
		return Cgroup{}, optErr(`cgroup %q: %v: give the cgroup's path from the root of the v2 hierarchy, e.g. %q`, path, err, cgroupfs.WithoutDotDot(path))
	case errors.Is(err, cgroupfs.ErrNotCgroup):
		return Cgroup{}, fmt.Errorf("latency: %w: cgroup %q: %w: give a cgroup directory of the v2 hierarchy mounted at %s", ErrInvalid, path, err, mount)
	default:
		// A *fs.PathError: nothing there (fs.ErrNotExist), or not
		// allowed to look.
		return Cgroup{}, fmt.Errorf("latency: %w: cgroup %q: %w: give an existing cgroup of the v2 hierarchy mounted at %s", ErrInvalid, path, err, mount)
	}
}

// cgroupIndex maps cgroup ids to hierarchy paths by walking the cgroup2
// mount. Safe for concurrent use.
type cgroupIndex struct {
	mount string
	mu    sync.Mutex
	paths map[uint64]string
	gone  map[uint64]bool // ids the last walk did not find
}

func newCgroupIndex(mount string) *cgroupIndex {
	return &cgroupIndex{mount: mount, paths: map[uint64]string{}, gone: map[uint64]bool{}}
}

// add records a known cgroup.
func (x *cgroupIndex) add(c Cgroup) {
	x.mu.Lock()
	x.paths[c.ID] = c.Path
	x.mu.Unlock()
}

// path returns id's hierarchy path, walking the mount again when id is
// new; "" for a cgroup that no longer exists.
func (x *cgroupIndex) path(id uint64) string {
	x.mu.Lock()
	defer x.mu.Unlock()
	if p, ok := x.paths[id]; ok {
		return p
	}
	if x.gone[id] {
		return ""
	}
	x.walk()
	if p, ok := x.paths[id]; ok {
		return p
	}
	x.gone[id] = true
	return ""
}

// walk indexes every directory under the mount. Errors (a cgroup removed
// during the walk) only leave entries out.
func (x *cgroupIndex) walk() {
	_ = filepath.WalkDir(x.mount, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		var st syscall.Stat_t
		if syscall.Stat(path, &st) != nil {
			return nil
		}
		x.paths[st.Ino] = cgroupfs.HierPath(x.mount, path)
		delete(x.gone, st.Ino)
		return nil
	})
}
