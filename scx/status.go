package scx

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"
)

// State is the state of sched_ext as /sys/kernel/sched_ext/state reports it.
// It is a string type so that a state a newer kernel adds is kept as the
// kernel spells it rather than rejected.
type State string

// The states of sched_ext. A scheduler is running only in StateEnabled; the
// others are the transitions around it and the idle state.
const (
	StateDisabled  State = "disabled"  // no BPF scheduler is attached
	StateEnabling  State = "enabling"  // a scheduler is being attached
	StateEnabled   State = "enabled"   // a scheduler is attached and running
	StateDisabling State = "disabling" // a scheduler is being detached
)

// Status is a snapshot of /sys/kernel/sched_ext: whether a BPF scheduler is
// attached, which one, and the counters that tell a watcher something
// happened between two snapshots. Unlike Kernel it changes at any time.
type Status struct {
	State State
	// Ops is the name of the attached scheduler (root/ops), "" when none.
	Ops string
	// EnableSeq counts the schedulers attached since boot (enable_seq),
	// so a changed value means another scheduler came and went.
	EnableSeq uint64
	// HotplugSeq counts CPU hotplug events (hotplug_seq); a scheduler
	// restarts when it changes while loading.
	HotplugSeq uint64
	// NrRejected counts SCHED_EXT tasks that a scheduler refused while
	// loading (its init_task set p->scx.disallow) and that were moved to
	// SCHED_NORMAL instead (nr_rejected).
	NrRejected uint64
	// SwitchAll is set when the attached scheduler runs every task, not
	// only SCHED_EXT ones (switch_all).
	SwitchAll bool
}

// String returns the status on one line, e.g.
// "enabled ops=simple switch_all=true enable_seq=3 hotplug_seq=0 nr_rejected=0",
// for logs and command-line tools.
func (s Status) String() string {
	var b strings.Builder
	state := string(s.State)
	if state == "" {
		state = "unknown"
	}
	b.WriteString(state)
	if s.Ops != "" {
		fmt.Fprintf(&b, " ops=%s", s.Ops)
	}
	fmt.Fprintf(&b, " switch_all=%t enable_seq=%d hotplug_seq=%d nr_rejected=%d",
		s.SwitchAll, s.EnableSeq, s.HotplugSeq, s.NrRejected)
	return b.String()
}

// statusDir is where sched_ext's sysfs interface lives, relative to /sys.
const statusDir = "kernel/sched_ext"

// maxStatusFile bounds how much of a status file is read. The kernel's
// sysfs attributes are at most a page; a larger file is not sched_ext's.
const maxStatusFile = 4096

// ReadStatus reads sched_ext's state from sysfs, an fs.FS rooted like /sys
// (nil means os.DirFS("/sys")). It is what Kernel.Status does, for tools
// that have no kernel BTF to probe.
//
// Only kernel/sched_ext/state is required; files a kernel does not have, and
// root/ when no scheduler is attached, leave their fields zero. When sysfs
// has no kernel/sched_ext, the error wraps ErrNotSupported.
func ReadStatus(sysfs fs.FS) (Status, error) {
	if sysfs == nil {
		sysfs = os.DirFS("/sys")
	}
	fi, err := fs.Stat(sysfs, statusDir)
	if errors.Is(err, fs.ErrNotExist) {
		return Status{}, fmt.Errorf("scx: read status: no /sys/%s: kernel has no sched_ext (CONFIG_SCHED_CLASS_EXT is not set): %w", statusDir, ErrNotSupported)
	}
	if err != nil {
		return Status{}, fmt.Errorf("scx: read status: %w", err)
	}
	if !fi.IsDir() {
		return Status{}, fmt.Errorf("scx: read status: /sys/%s is not a directory", statusDir)
	}

	var s Status
	state, _, err := readStatusFile(sysfs, "state", true)
	if err != nil {
		return Status{}, err
	}
	s.State = State(state)
	if s.Ops, _, err = readStatusFile(sysfs, "root/ops", false); err != nil {
		return Status{}, err
	}
	for _, f := range []struct {
		name string
		dst  *uint64
	}{
		{"enable_seq", &s.EnableSeq},
		{"hotplug_seq", &s.HotplugSeq},
		{"nr_rejected", &s.NrRejected},
	} {
		if *f.dst, err = readStatusUint(sysfs, f.name); err != nil {
			return Status{}, err
		}
	}
	switchAll, ok, err := readStatusFile(sysfs, "switch_all", false)
	if err != nil {
		return Status{}, err
	}
	switch {
	case !ok || switchAll == "0":
	case switchAll == "1":
		s.SwitchAll = true
	default:
		return Status{}, fmt.Errorf("scx: read status: /sys/%s/switch_all: malformed flag %s: want 0 or 1", statusDir, quoteShort(switchAll))
	}
	return s, nil
}

// readStatusFile returns the content of kernel/sched_ext/name without
// surrounding white space, and whether the file exists. A missing file is an
// error only when required.
func readStatusFile(sysfs fs.FS, name string, required bool) (string, bool, error) {
	p := path.Join(statusDir, name)
	f, err := sysfs.Open(p)
	if !required && statusFileGone(err) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("scx: read status: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxStatusFile+1))
	if !required && statusFileGone(err) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("scx: read status: /sys/%s: %w", p, err)
	}
	if len(b) > maxStatusFile {
		return "", false, fmt.Errorf("scx: read status: /sys/%s: larger than %d bytes", p, maxStatusFile)
	}
	return strings.TrimSpace(string(b)), true, nil
}

// statusFileGone reports whether err means the file is not there: it never
// was, or, for root/ files, the scheduler detached between opening and
// reading and kernfs answered ENODEV.
func statusFileGone(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENODEV)
}

// readStatusUint parses kernel/sched_ext/name as a decimal number; a missing
// file reads as 0.
func readStatusUint(sysfs fs.FS, name string) (uint64, error) {
	s, ok, err := readStatusFile(sysfs, name, false)
	if err != nil || !ok {
		return 0, err
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("scx: read status: /sys/%s/%s: malformed number %s", statusDir, name, quoteShort(s))
	}
	return v, nil
}

// quoteShort quotes s for an error message, shortened if long.
func quoteShort(s string) string {
	const limit = 64
	if len(s) > limit {
		return strconv.Quote(s[:limit]) + "..."
	}
	return strconv.Quote(s)
}
