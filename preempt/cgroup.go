package preempt

import (
	"fmt"

	"github.com/scxkit/scxkit/internal/cgroupfs"
)

// lookupCgroup resolves g, a cgroup of a Config in canonical form ("/a/b",
// see cleanCgroup), to the cgroup under the cgroup2 mount that
// /proc/self/mounts names. Errors name the cgroup; they wrap fs.ErrNotExist
// when it is missing and cgroupfs.ErrNotCgroup when it is no cgroup v2
// directory.
func lookupCgroup(g string) (cgroupfs.Cgroup, error) {
	mount, err := cgroupfs.Mount()
	if err == nil {
		var c cgroupfs.Cgroup
		if c, err = cgroupfs.Lookup(mount, g); err == nil {
			return c, nil
		}
	}
	return cgroupfs.Cgroup{}, fmt.Errorf("cgroup %s: %w", g, err)
}
