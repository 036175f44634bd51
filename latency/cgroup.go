package latency

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
	"sync"
	"syscall"
)

// cgroup2Magic is CGROUP2_SUPER_MAGIC, the f_type statfs reports for a
// cgroup2 file system.
const cgroup2Magic = 0x63677270

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
	f, err := os.Open("/proc/self/mounts")
	if err != nil {
		return "", fmt.Errorf("find the cgroup2 mount: %w", err)
	}
	defer f.Close()
	return parseCgroup2Mount(f)
}

// parseCgroup2Mount finds the first cgroup2 mount point in the mounts table
// read from f (the format of /proc/mounts, octal escapes and all).
func parseCgroup2Mount(f io.Reader) (string, error) {
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 3 && fields[2] == "cgroup2" {
			return unescapeMount(fields[1]), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("find the cgroup2 mount: %w", err)
	}
	return "", errors.New("find the cgroup2 mount: no cgroup2 file system in /proc/self/mounts: mount one (mount -t cgroup2 none /sys/fs/cgroup/unified)")
}

// unescapeMount undoes the octal escapes (\040 for a space) of a path in
// /proc/mounts.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, ok := octal(s[i+1 : i+4]); ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func octal(s string) (byte, bool) {
	if len(s) != 3 {
		return 0, false
	}
	var v int
	for _, c := range s {
		if c < '0' || c > '7' {
			return 0, false
		}
		v = v*8 + int(c-'0')
	}
	if v > 255 {
		return 0, false
	}
	return byte(v), true
}

// LookupCgroup resolves path, either in the cgroup v2 hierarchy ("/a/b") or
// in the file system under the cgroup2 mount, to a Cgroup. The error wraps
// ErrInvalidOptions (and fs.ErrNotExist when nothing is there) and names
// the path.
func LookupCgroup(path string) (Cgroup, error) {
	mount, err := Cgroup2Mount()
	if err != nil {
		return Cgroup{}, err
	}
	return lookupCgroup(mount, path)
}

func lookupCgroup(mount, path string) (Cgroup, error) {
	if path == "" {
		return Cgroup{}, optErr(`empty cgroup path: give a path in the cgroup v2 hierarchy such as "/system.slice", or "/" for the root`)
	}
	if slices.Contains(strings.Split(path, "/"), "..") {
		var keep []string
		for _, seg := range strings.Split(path, "/") {
			if seg != ".." && seg != "." && seg != "" {
				keep = append(keep, seg)
			}
		}
		return Cgroup{}, optErr(`cgroup %q: ".." is not allowed: give the cgroup's path from the root of the v2 hierarchy, e.g. %q`, path, "/"+strings.Join(keep, "/"))
	}
	mount = filepath.Clean(mount)
	clean := filepath.Clean("/" + path)
	dir := filepath.Join(mount, clean)
	if filepath.IsAbs(path) && (clean == mount || strings.HasPrefix(clean, mount+"/")) {
		dir = clean
	}
	rel, _ := filepath.Rel(mount, dir)
	hier := "/"
	if rel != "." {
		hier = "/" + rel
	}
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		err = &fs.PathError{Op: "stat", Path: dir, Err: err}
		return Cgroup{}, fmt.Errorf("%w: cgroup %q: %w: give an existing cgroup of the v2 hierarchy mounted at %s", ErrInvalidOptions, path, err, mount)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		return Cgroup{}, optErr("cgroup %q: %s is not a directory: give a cgroup directory under %s", path, dir, mount)
	}
	var sfs syscall.Statfs_t
	if err := syscall.Statfs(dir, &sfs); err != nil {
		return Cgroup{}, fmt.Errorf("%w: cgroup %q: statfs %s: %w", ErrInvalidOptions, path, dir, err)
	}
	if sfs.Type != cgroup2Magic {
		return Cgroup{}, optErr("cgroup %q: %s is not on a cgroup2 file system: give a cgroup of the v2 hierarchy mounted at %s", path, dir, mount)
	}
	return Cgroup{Path: hier, Dir: dir, ID: st.Ino}, nil
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
		rel, _ := filepath.Rel(x.mount, path)
		hier := "/"
		if rel != "." {
			hier = "/" + rel
		}
		x.paths[st.Ino] = hier
		delete(x.gone, st.Ino)
		return nil
	})
}
