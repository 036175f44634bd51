package energy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/scxkit/scxkit/internal/mounts"
	"github.com/scxkit/scxkit/topology"
)

// Options says where ReadDebugfs and Estimate read the kernel's files
// from. The zero value, like a nil *Options, reads the running system.
type Options struct {
	// Root is the directory holding proc/ and sys/; "" means "/". Tests
	// point it at a copy of the tree.
	Root string
	// FS, if not nil, is used instead of Root: a file system rooted like
	// "/".
	FS fs.FS
	// Steps is the number of performance states Estimate makes for a
	// domain that has only a minimum and a maximum frequency; 0 means 8.
	Steps int
}

func (o *Options) fsys() fs.FS {
	if o != nil && o.FS != nil {
		return o.FS
	}
	root := "/"
	if o != nil && o.Root != "" {
		root = o.Root
	}
	return os.DirFS(root)
}

// Where ReadDebugfs looks, relative to the root.
const (
	mountsFile     = "proc/mounts"
	defaultDebugfs = "sys/kernel/debug"
	cpuSysfsDir    = "sys/devices/system/cpu"
)

// maxAttrSize bounds the debugfs and sysfs files read: the kernel prints
// one number, a flag word or a cpulist, far below a page.
const maxAttrSize = 4096

// maxMountsSize bounds /proc/mounts.
const maxMountsSize = 1 << 20

// ReadDebugfs reads the kernel's energy model from debugfs, which it finds
// through proc/mounts (the line of type debugfs; sys/kernel/debug when
// proc/mounts is missing). opts may be nil. The package documentation
// lists the files it reads and how it reads those of older kernels.
//
// When the kernel has no energy model (no energy_model directory), the
// error wraps fs.ErrNotExist and says so; build a model with FromOPP or
// Estimate instead. Debugfs is readable by root only: without permission
// the error wraps fs.ErrPermission. Any file that is malformed or
// inconsistent gives an error wrapping ErrInvalid that names the file,
// relative to the root.
func ReadDebugfs(opts *Options) (*Model, error) {
	r := &emReader{fsys: opts.fsys()}
	m, err := r.read()
	if err != nil {
		return nil, fmt.Errorf("energy: read debugfs: %w", err)
	}
	return m, nil
}

type emReader struct {
	fsys  fs.FS
	notes []string
}

func (r *emReader) read() (*Model, error) {
	dbg, err := r.debugfsDir()
	if err != nil {
		return nil, err
	}
	emDir := path.Join(dbg, "energy_model")
	entries, err := fs.ReadDir(r.fsys, emDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%s: %w: the kernel has no energy model (EAS needs CONFIG_ENERGY_MODEL and a registered model: an asymmetric-capacity machine whose cpufreq driver registers one, e.g. from the device tree's dynamic-power-coefficient); build a model with FromOPP from OPP tables, or with Estimate from cpufreq and topology", emDir, fs.ErrNotExist)
	case errors.Is(err, fs.ErrPermission):
		return nil, fmt.Errorf("%s: %w: debugfs is readable by root only: run as root, or copy the tree and pass Options.Root", emDir, fs.ErrPermission)
	case err != nil:
		return nil, fmt.Errorf("%s: %w", emDir, err)
	}
	m := &Model{}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := path.Join(emDir, e.Name())
		d, ok, err := r.readDomain(dir)
		if err != nil {
			return nil, err
		}
		if ok {
			m.Domains = append(m.Domains, d)
		}
	}
	if len(m.Domains) == 0 {
		return nil, fmt.Errorf("%s: %w: no CPU performance domain (no directory with a cpus file): the energy model covers devices only; build a model with FromOPP or Estimate", emDir, fs.ErrNotExist)
	}
	sortDomains(m.Domains)
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", emDir, err)
	}
	m.Assumed = r.notes
	return m, nil
}

// debugfsDir returns where debugfs is mounted, relative to the root.
func (r *emReader) debugfsDir() (string, error) {
	b, err := readBounded(r.fsys, mountsFile, maxMountsSize)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			r.notes = append(r.notes, mountsFile+" missing: assumed debugfs at /"+defaultDebugfs)
			return defaultDebugfs, nil
		}
		return "", fmt.Errorf("%s: %w", mountsFile, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, maxMountsSize)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 3 && f[2] == "debugfs" {
			mnt := strings.TrimPrefix(path.Clean("/"+mounts.Unescape(f[1])), "/")
			if mnt == "" {
				mnt = "."
			}
			return mnt, nil
		}
	}
	if _, err := fs.Stat(r.fsys, defaultDebugfs+"/energy_model"); err == nil {
		r.notes = append(r.notes, mountsFile+" has no debugfs line: used /"+defaultDebugfs)
		return defaultDebugfs, nil
	}
	return "", fmt.Errorf("%s: %w: debugfs is not mounted (no line of type debugfs): mount it with \"mount -t debugfs none /sys/kernel/debug\"", mountsFile, fs.ErrNotExist)
}

// readBounded reads file p, failing if it holds more than limit bytes.
func readBounded(fsys fs.FS, p string, limit int64) ([]byte, error) {
	f, err := fsys.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, invalidf(p, "larger than %d bytes: not a file the kernel writes", limit)
	}
	return b, nil
}

// attr reads a small file; ok is false when it does not exist.
func (r *emReader) attr(p string) (s string, ok bool, err error) {
	b, err := readBounded(r.fsys, p, maxAttrSize)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		if errors.Is(err, ErrInvalid) {
			return "", false, err
		}
		return "", false, fmt.Errorf("%s: %w", p, err)
	}
	return string(bytes.TrimSpace(b)), true, nil
}

// number reads a decimal number from p; ok is false when p does not exist.
func (r *emReader) number(p string) (v uint64, ok bool, err error) {
	s, ok, err := r.attr(p)
	if err != nil || !ok {
		return 0, ok, err
	}
	v, err = strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, false, invalidf(p, "malformed number %s: want a decimal integer, as the kernel prints it", quote(s))
	}
	return v, true, nil
}

// mustNumber reads a decimal number from p, which must exist.
func (r *emReader) mustNumber(p string) (uint64, error) {
	v, ok, err := r.number(p)
	if err == nil && !ok {
		err = invalidf(p, "missing: every performance state directory has frequency, power and cost; the tree is truncated")
	}
	return v, err
}

func quote(s string) string {
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return strconv.Quote(s)
}

// Bits of a performance domain's flags file (struct em_perf_domain).
const (
	flagMicrowatts = 1 << 0 // EM_PERF_DOMAIN_MICROWATTS
	flagArtificial = 1 << 2 // EM_PERF_DOMAIN_ARTIFICIAL
)

// rawState is a state as debugfs gives it.
type rawState struct {
	PerfState
	dir                    string
	hasPerf, hasInefficent bool
}

// readDomain reads the performance domain in dir; ok is false for the
// directory of a device other than CPUs (it has no cpus file).
func (r *emReader) readDomain(dir string) (PerfDomain, bool, error) {
	var d PerfDomain
	cpusFile := path.Join(dir, "cpus")
	list, ok, err := r.attr(cpusFile)
	if err != nil || !ok {
		return d, false, err
	}
	cpus, err := topology.ParseCPUList(list)
	if err != nil {
		return d, false, invalidf(cpusFile, "malformed cpulist %s: want CPU ids and ranges such as 0-3,8, as the kernel prints them", quote(list))
	}
	if cpus.Empty() {
		return d, false, invalidf(cpusFile, "empty: a CPU performance domain lists its CPUs")
	}
	d.Name, d.CPUs = path.Base(dir), cpus

	// Power unit: flags (Linux 5.19 on), units (5.11 to 5.18), or
	// nothing (5.10 and before, milliwatts).
	mwScale, artificial := uint64(1000), false
	d.Microwatts = true
	if s, ok, err := r.attr(path.Join(dir, "flags")); err != nil {
		return d, false, err
	} else if ok {
		flags, err := strconv.ParseUint(s, 0, 64)
		if err != nil {
			return d, false, invalidf(path.Join(dir, "flags"), "malformed flags %s: want a number such as 0x1, as the kernel prints it", quote(s))
		}
		mwScale = 1
		artificial = flags&flagArtificial != 0
		d.Microwatts = flags&flagMicrowatts != 0
	} else if s, ok, err := r.attr(path.Join(dir, "units")); err != nil {
		return d, false, err
	} else if ok {
		switch s {
		case "milliWatts":
		case "bogoWatts":
			mwScale, d.Microwatts = 1, false
		default:
			return d, false, invalidf(path.Join(dir, "units"), "unknown units %s: want milliWatts or bogoWatts", quote(s))
		}
	} else {
		r.notes = append(r.notes, fmt.Sprintf("%s: no flags or units file (Linux 5.10 or older): assumed power in mW", dir))
	}

	states, err := r.readStates(dir)
	if err != nil {
		return d, false, err
	}
	for i := range states {
		states[i].Power *= mwScale
	}
	if !states[0].hasPerf || !states[0].hasInefficent {
		// Linux before 6.9 has no performance files, and its cost is
		// fmax × power / frequency, used as cost × util / capacity.
		if err := r.modernize(&d, states, artificial); err != nil {
			return d, false, err
		}
	}
	for _, s := range states {
		d.States = append(d.States, s.PerfState)
	}
	return d, true, nil
}

// readStates reads the ps:<frequency> directories of dir, sorted by
// frequency.
func (r *emReader) readStates(dir string) ([]rawState, error) {
	entries, err := fs.ReadDir(r.fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	var states []rawState
	for _, e := range entries {
		name, ok := strings.CutPrefix(e.Name(), "ps:")
		if !ok || !e.IsDir() {
			continue
		}
		ps := path.Join(dir, e.Name())
		freq, err := strconv.ParseUint(name, 10, 64)
		if err != nil {
			return nil, invalidf(ps, "malformed directory name: want ps:<frequency in kHz>")
		}
		s := rawState{dir: ps}
		if s.FrequencyKHz, err = r.mustNumber(path.Join(ps, "frequency")); err != nil {
			return nil, err
		}
		if s.FrequencyKHz != freq {
			return nil, invalidf(path.Join(ps, "frequency"), "frequency %d does not match the directory name %s", s.FrequencyKHz, e.Name())
		}
		if s.Power, err = r.mustNumber(path.Join(ps, "power")); err != nil {
			return nil, err
		}
		if s.Cost, err = r.mustNumber(path.Join(ps, "cost")); err != nil {
			return nil, err
		}
		if s.Performance, s.hasPerf, err = r.number(path.Join(ps, "performance")); err != nil {
			return nil, err
		}
		var ineff uint64
		if ineff, s.hasInefficent, err = r.number(path.Join(ps, "inefficient")); err != nil {
			return nil, err
		}
		s.Inefficient = ineff&1 != 0
		states = append(states, s)
	}
	if len(states) == 0 {
		return nil, invalidf(dir, "no ps:<frequency> directories: the domain has no performance states; the tree is truncated")
	}
	slices.SortFunc(states, func(a, b rawState) int {
		switch {
		case a.FrequencyKHz < b.FrequencyKHz:
			return -1
		case a.FrequencyKHz > b.FrequencyKHz:
			return 1
		}
		return 0
	})
	for i := 1; i < len(states); i++ {
		if states[i].FrequencyKHz == states[i-1].FrequencyKHz {
			return nil, invalidf(states[i-1].dir+" and "+states[i].dir, "duplicate frequency %d kHz", states[i].FrequencyKHz)
		}
	}
	for _, s := range states {
		for _, f := range []struct {
			name     string
			has, all bool
		}{{"performance", s.hasPerf, states[0].hasPerf}, {"inefficient", s.hasInefficent, states[0].hasInefficent}} {
			if f.has != f.all {
				return nil, invalidf(path.Join(s.dir, f.name), "%s is %s while %s %s it: the files of a domain come from one kernel; the tree is truncated",
					f.name, map[bool]string{true: "present", false: "missing"}[f.has], states[0].dir, map[bool]string{true: "has", false: "lacks"}[f.all])
			}
		}
	}
	return states, nil
}

// modernize fills in what kernels before 6.9 do not show: performance,
// from the CPUs' capacity in sysfs, and the cost and inefficient flags as
// Linux 6.9 computes them. Power must already be scaled.
func (r *emReader) modernize(d *PerfDomain, states []rawState, artificial bool) error {
	capFile := fmt.Sprintf("%s/cpu%d/cpu_capacity", cpuSysfsDir, d.CPUs.First())
	capacity, ok, err := r.number(capFile)
	if err != nil {
		return err
	}
	if !ok || capacity == 0 || capacity > CapacityScale {
		return invalidf(capFile, "missing or out of range: the energy model of %s has no performance files (Linux before 6.9), and the CPUs' capacity is needed to compute them", path.Base(states[0].dir))
	}
	fmax := states[len(states)-1].FrequencyKHz
	for i := range states {
		s := &states[i]
		_, s.Performance = mulDiv(capacity, s.FrequencyKHz, fmax)
		if s.Performance == 0 {
			return invalidf(s.dir, "performance %d × %d / %d rounds to 0", capacity, s.FrequencyKHz, fmax)
		}
		if artificial {
			// The old cost was used as cost × util / capacity.
			s.Cost = s.Cost * 10 / capacity
		} else {
			s.Cost = s.Power * 10 / s.Performance
		}
	}
	ps := make([]PerfState, len(states))
	for i := range states {
		ps[i] = states[i].PerfState
	}
	markInefficient(ps)
	for i := range states {
		states[i].Inefficient = ps[i].Inefficient
	}
	r.notes = append(r.notes, fmt.Sprintf("%s: no performance files (Linux before 6.9): computed performance from %s (%d) and cost and inefficient flags as Linux 6.9 does", path.Dir(states[0].dir), capFile, capacity))
	return nil
}
