// Package opsprof reads how often the kernel ran each BPF program of a
// type and for how long.
//
// The kernel counts, per BPF program, its runs and their total time while
// its BPF run-time statistics are on (BPF_ENABLE_STATS, Linux 5.8): one
// clock read before and one after each run, summed over all CPUs. A
// sched_ext scheduler's callbacks (ops.select_cpu, ops.enqueue, ...) are
// programs of type ebpf.StructOps, so reading those before and after a
// workload (Read, Sub) tells how much BPF time each callback cost it:
// what package bench does with Plan.Profile.
//
// The statistics are on while at least one file descriptor Enable
// returned is open, for every program of the system; they cost the clock
// reads on every run of every program.
package opsprof

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// Enable turns on the kernel's BPF run-time statistics until the returned
// Closer is closed (or the process exits). It needs CAP_SYS_ADMIN and
// Linux 5.8.
func Enable() (io.Closer, error) {
	c, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		return nil, fmt.Errorf("opsprof: enable the kernel's BPF run-time statistics (needs root or CAP_SYS_ADMIN, and Linux 5.8): %w", err)
	}
	return c, nil
}

// Program is the run-time statistics of one BPF program: totals since it
// was loaded (counted while the statistics were on), or, from Sub, over
// an interval.
type Program struct {
	// ID is the kernel's ID of the program, unique while it is loaded.
	ID ebpf.ProgramID
	// Name is the program's function name: from its BTF when it was
	// loaded with BTF, else the kernel's name, which is cut at 15
	// characters.
	Name string
	// Runs counts the program's runs.
	Runs uint64
	// Time is the total time of those runs, on all CPUs.
	Time time.Duration
}

// Read appends to dst the statistics of every loaded BPF program of type
// typ, in the order of their IDs, and returns the extended slice. A
// program unloaded while Read runs is left out. Read opens and names
// every program first and then reads their counters one after the
// other, so that the counters are taken as close together as it can.
// Reading another process's programs needs CAP_SYS_ADMIN.
func Read(dst []Program, typ ebpf.ProgramType) ([]Program, error) {
	var progs []*ebpf.Program
	defer func() {
		for _, p := range progs {
			p.Close()
		}
	}()
	start := len(dst)
	var id ebpf.ProgramID
	for {
		next, err := ebpf.ProgramGetNextID(id)
		if errors.Is(err, os.ErrNotExist) {
			break
		}
		if err != nil {
			return dst, fmt.Errorf("opsprof: list BPF programs after ID %d: %w", id, err)
		}
		id = next
		prog, err := ebpf.NewProgramFromID(id)
		if errors.Is(err, os.ErrNotExist) {
			continue // unloaded since it was listed
		}
		if err != nil {
			return dst, fmt.Errorf("opsprof: open BPF program %d: %w", id, err)
		}
		if prog.Type() != typ {
			prog.Close()
			continue
		}
		name, err := funcName(prog)
		if err != nil {
			prog.Close()
			return dst, fmt.Errorf("opsprof: BPF program %d: %w", id, err)
		}
		progs = append(progs, prog)
		dst = append(dst, Program{ID: id, Name: name})
	}
	for i, prog := range progs {
		st, err := prog.Stats()
		if err != nil {
			return dst[:start], fmt.Errorf("opsprof: read the statistics of BPF program %d (%s): %w", dst[start+i].ID, dst[start+i].Name, err)
		}
		dst[start+i].Runs, dst[start+i].Time = st.RunCount, st.Runtime
	}
	return dst, nil
}

// funcName returns the name of prog's entry function. The kernel keeps
// BPF_OBJ_NAME_LEN-1 = 15 characters of a program's name (a scheduler's
// "responsive_running" and "responsive_runnable" both read
// "responsive_runn"); for a name of that length, cilium/ebpf's
// ProgramInfo reads the whole name from the program's BTF function
// information (the function at instruction 0), when it was loaded with
// BTF, and keeps the kernel's name otherwise. TestReadBTFName checks that
// it still does.
func funcName(prog *ebpf.Program) (string, error) {
	info, err := prog.Info()
	if err != nil {
		return "", err
	}
	return info.Name, nil
}

// Sub returns, for each program of after, the runs and time between
// before and after, both read by Read: a program absent from before (loaded
// in between) counts from zero; one absent from after (unloaded in
// between) is left out. The result is in after's order.
func Sub(after, before []Program) []Program {
	diff := make([]Program, 0, len(after))
	for _, a := range after {
		if i := slices.IndexFunc(before, func(b Program) bool { return b.ID == a.ID }); i >= 0 {
			b := before[i]
			// The counters only grow while a program is loaded;
			// clamp anyway rather than wrap around.
			a.Runs -= min(a.Runs, b.Runs)
			a.Time -= min(a.Time, b.Time)
		}
		diff = append(diff, a)
	}
	return diff
}
