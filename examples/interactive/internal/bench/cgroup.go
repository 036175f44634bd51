package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/scxkit/scxkit/latency"
)

// cgroupParent is the bench's cgroup under -cgroup-root; the classes'
// cgroups are its children.
const cgroupParent = "scxkit-bench"

// cgroup is one of the bench's cgroups: its directory, its path in the
// hierarchy (what the scheduler's config names) and its id.
type cgroup = latency.Cgroup

// cgroups are the bench's cgroups, one per class of worker.
type cgroups struct {
	parent string // directory of cgroupParent
	// lat holds the requester process, bg the hogs of the mixed phase,
	// batch the workers of the throughput phase.
	lat, bg, batch cgroup
	// req, a threaded child of lat (so lat's class), holds the requester
	// threads alone: the kernel's figures then leave out the Go runtime's
	// threads of the requester process, whose sysmon thread alone wakes
	// up thousands of times a second while a thread sleeps in a syscall.
	req cgroup
	// cpuController is set when the cpu controller is enabled for the
	// bench's cgroups: the default scheduler then shares CPU time
	// between them by weight, which the comparison does not intend.
	cpuController bool
}

// makeCgroups creates the bench's cgroups under root, a cgroup v2 mount
// (or a cgroup in one). It does not enable any controller.
func makeCgroups(root string) (*cgroups, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(root, &st); err != nil {
		return nil, fmt.Errorf("-cgroup-root %s: %w", root, err)
	}
	if st.Type != unix.CGROUP2_SUPER_MAGIC {
		return nil, fmt.Errorf("-cgroup-root %s: not a cgroup v2 file system; name where cgroup2 is mounted (/sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid system)", root)
	}
	c := &cgroups{parent: filepath.Join(root, cgroupParent)}
	if err := os.Mkdir(c.parent, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("create cgroup: %w", err)
	}
	for _, x := range []struct {
		name string
		dst  *cgroup
	}{{"lat", &c.lat}, {"bg", &c.bg}, {"batch", &c.batch}, {"lat/req", &c.req}} {
		dir := filepath.Join(c.parent, x.name)
		err := os.Mkdir(dir, 0o755)
		if err != nil && !errors.Is(err, fs.ErrExist) {
			c.remove()
			return nil, fmt.Errorf("create cgroup: %w", err)
		}
		if *x.dst, err = latency.LookupCgroup(dir); err != nil {
			c.remove()
			return nil, fmt.Errorf("create cgroup: %w", err)
		}
	}
	if err := makeThreaded(c.req.Dir); err != nil {
		c.remove()
		return nil, err
	}
	ctrl, err := os.ReadFile(filepath.Join(c.lat.Dir, "cgroup.controllers"))
	if err != nil {
		c.remove()
		return nil, fmt.Errorf("read controllers: %w", err)
	}
	c.cpuController = slices.Contains(strings.Fields(string(ctrl)), "cpu")
	return c, nil
}

// makeThreaded makes the cgroup dir threaded: its parent becomes a
// threaded domain, whose processes may put single threads into dir.
func makeThreaded(dir string) error {
	file := filepath.Join(dir, "cgroup.type")
	typ, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("make cgroup threaded: %w", err)
	}
	if strings.TrimSpace(string(typ)) == "threaded" {
		return nil
	}
	if err := os.WriteFile(file, []byte("threaded"), 0); err != nil {
		return fmt.Errorf("make cgroup %s threaded: %w", dir, err)
	}
	return nil
}

// remove removes the bench's cgroups. Their processes must have exited;
// a cgroup can stay busy a moment after its last process was reaped, so
// remove retries for a few seconds.
func (c *cgroups) remove() error {
	var errs []error
	for _, dir := range []string{c.req.Dir, c.lat.Dir, c.bg.Dir, c.batch.Dir, c.parent} {
		if dir == "" {
			continue
		}
		errs = append(errs, rmdirRetry(dir, 5*time.Second))
	}
	return errors.Join(errs...)
}

// rmdirRetry removes the cgroup dir, retrying while it is busy.
func rmdirRetry(dir string, patience time.Duration) error {
	deadline := time.Now().Add(patience)
	for {
		err := unix.Rmdir(dir)
		switch {
		case err == nil || errors.Is(err, unix.ENOENT):
			return nil
		case errors.Is(err, unix.EBUSY) && time.Now().Before(deadline):
			time.Sleep(50 * time.Millisecond)
		default:
			return fmt.Errorf("remove cgroup %s: %w", dir, err)
		}
	}
}
