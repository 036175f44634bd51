package topology

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// Where Discover reads, relative to the root of the file system.
const (
	cpuDir  = "sys/devices/system/cpu"
	nodeDir = "sys/devices/system/node"
)

// maxFileSize bounds how much of a sysfs file Discover reads. Attributes
// are at most a page, except the cpulist and cpumap files, which the kernel
// makes binary attributes so that they can describe 8192 CPUs; 1 MiB is far
// above either.
const maxFileSize = 1 << 20

// maxKernelCPUs bounds the CPU ids Discover accepts in cpu/possible,
// present and online and in cpuN directory names: Linux builds for at most
// 8192 CPUs (CONFIG_NR_CPUS), so a larger id means a corrupted or made-up
// sysfs, not a machine.
const maxKernelCPUs = 8192

// errNotRegular is wrapped by the error for a path that is neither a
// regular file nor a directory: a FIFO, socket or device where sysfs has an
// attribute. Discover fails on those rather than open them, as reading a
// FIFO would block until something writes to it.
var errNotRegular = errors.New("not a regular file or directory")

// Options says where Discover reads sysfs from. The zero value, like a nil
// *Options, reads the running system's /sys.
type Options struct {
	// Root is the directory holding sys/; "" means "/". Tests point it at
	// an unpacked sysfs snapshot.
	Root string
	// FS, if not nil, is used instead of Root: a file system rooted like
	// "/", holding sys/devices/system/cpu.
	FS fs.FS
	// LLCCores, if positive, makes Discover split every LLC with more
	// cores than LLCCores into virtual LLCs of at most LLCCores cores;
	// see Topology.SplitLLCs.
	LLCCores int
}

// Discover reads the CPU topology from sysfs. opts may be nil. The package
// documentation lists the files it reads and what it assumes when they are
// missing; Topology.Assumed says what it assumed on this machine.
//
// Missing files never make Discover fail. It fails when sysfs has no
// devices/system/cpu, when no CPU is online, when a directory cannot be
// listed, when a file holds something the kernel would not write (including
// cpu/online, present and possible that contradict each other, and CPU ids
// of 8192 or more), and when a path it reads is neither a regular file nor a
// directory (a FIFO, which it never opens for reading: that would block);
// the error then names the file, relative to the root, and quotes the
// content. Files are read up to 1 MiB.
func Discover(opts *Options) (*Topology, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	fsys := o.FS
	statFirst := fsys != nil
	if fsys == nil {
		root := o.Root
		if root == "" {
			root = "/"
		}
		fsys = rootFS(root)
	}
	d := &discoverer{fsys: fsys, statFirst: statFirst, noteIdx: map[string]int{}}
	t, err := d.discover()
	if err != nil {
		return nil, fmt.Errorf("topology: discover: %w", err)
	}
	if o.LLCCores > 0 {
		t = t.SplitLLCs(o.LLCCores)
	}
	return t, nil
}

// rootFS is the file system of Options.Root. It is os.DirFS but for
// Open, which opens with O_NONBLOCK, so that a FIFO in place of a sysfs file
// cannot block, and refuses what is neither a regular file nor a directory.
type rootFS string

func (r rootFS) path(op, name string) (string, error) {
	if !fs.ValidPath(name) {
		return "", &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	return filepath.Join(string(r), filepath.FromSlash(name)), nil
}

func (r rootFS) Open(name string) (fs.File, error) {
	full, err := r.path("open", name)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(full, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		if pe, ok := err.(*fs.PathError); ok {
			pe.Path = name
		}
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil {
		err = checkType(name, fi.Mode())
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func (r rootFS) Stat(name string) (fs.FileInfo, error) {
	full, err := r.path("stat", name)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(full)
	if pe, ok := err.(*fs.PathError); ok {
		pe.Path = name
	}
	return fi, err
}

// checkType returns an error wrapping errNotRegular, naming p and its
// type, when mode is neither a regular file nor a directory.
func checkType(p string, mode fs.FileMode) error {
	if mode.IsRegular() || mode.IsDir() {
		return nil
	}
	kind := "special file"
	switch {
	case mode&fs.ModeNamedPipe != 0:
		kind = "named pipe (FIFO)"
	case mode&fs.ModeSocket != 0:
		kind = "socket"
	case mode&fs.ModeCharDevice != 0:
		kind = "character device"
	case mode&fs.ModeDevice != 0:
		kind = "block device"
	case mode&fs.ModeSymlink != 0:
		kind = "symbolic link"
	}
	return fmt.Errorf("%s: %w: it is a %s, where sysfs has a regular file or a directory: remove it, or point the root at a real copy of sysfs", p, errNotRegular, kind)
}

// discoverer holds the state of one Discover call.
type discoverer struct {
	fsys fs.FS
	// statFirst: fsys is Options.FS, whose Open may block on a FIFO, so
	// paths are checked with fs.Stat before they are opened.
	statFirst bool
	dirs      Cpumask // the cpuN directories
	buf       []byte  // for read

	// notes become Topology.Assumed. A note whose text has a %s collects
	// CPUs, so that one note covers every CPU it applies to; noteIdx
	// finds a note by its text.
	notes   []note
	noteIdx map[string]int
}

type note struct {
	text string
	cpus Cpumask
}

// assume records a note.
func (d *discoverer) assume(format string, args ...any) {
	d.notes = append(d.notes, note{text: fmt.Sprintf(format, args...)})
}

// assumeCPU records that the note text, which holds one %s for the CPU
// list, applies to cpu.
func (d *discoverer) assumeCPU(text string, cpu int) {
	i, ok := d.noteIdx[text]
	if !ok {
		i = len(d.notes)
		d.noteIdx[text] = i
		d.notes = append(d.notes, note{text: text})
	}
	d.notes[i].cpus.Set(cpu)
}

// assumed returns the notes in the order they were first recorded.
func (d *discoverer) assumed() []string {
	s := make([]string, 0, len(d.notes))
	for _, n := range d.notes {
		if strings.Contains(n.text, "%s") {
			s = append(s, fmt.Sprintf(n.text, n.cpus))
		} else {
			s = append(s, n.text)
		}
	}
	return s
}

// read returns the content of file p without surrounding white space, and
// whether it could be read. A file that exists but cannot be read (sysfs
// answers EIO or EOPNOTSUPP for some firmware attributes) is treated as
// missing, with a note.
func (d *discoverer) read(p string) (string, bool, error) {
	f, err := d.open(p)
	if errors.Is(err, errNotRegular) {
		return "", false, err
	}
	if err != nil {
		d.unreadable(p, err)
		return "", false, nil
	}
	defer f.Close()
	// Read into a buffer kept across calls: Discover reads thousands of
	// small files on a large machine.
	b := d.buf[:0]
	for len(b) <= maxFileSize {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := f.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			d.unreadable(p, err)
			return "", false, nil
		}
	}
	d.buf = b[:0]
	if len(b) > maxFileSize {
		return "", false, fmt.Errorf("%s: larger than %d bytes: not a sysfs attribute", p, maxFileSize)
	}
	return string(bytes.TrimSpace(b)), true, nil
}

// open opens p, failing with an error that wraps errNotRegular when p is
// neither a regular file nor a directory.
func (d *discoverer) open(p string) (fs.File, error) {
	if d.statFirst {
		fi, err := fs.Stat(d.fsys, p)
		if err != nil {
			return nil, err
		}
		if err := checkType(p, fi.Mode()); err != nil {
			return nil, err
		}
	}
	f, err := d.fsys.Open(p)
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err == nil {
		if err := checkType(p, fi.Mode()); err != nil {
			f.Close()
			return nil, err
		}
	}
	return f, nil
}

// unreadable records a note for a file that exists but could not be read.
func (d *discoverer) unreadable(p string, err error) {
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	tmpl, cpu := cpuTemplate(p)
	if cpu < 0 {
		d.assume("%s unreadable (%v): ignored", p, err)
		return
	}
	d.assumeCPU(fmt.Sprintf("%s unreadable for cpus %%s (%s): ignored", tmpl, strings.ReplaceAll(err.Error(), "%", "%%")), cpu)
}

// cpuTemplate replaces the CPU number of a path under cpuDir/cpuN/ with N,
// and returns the number; -1 for other paths.
func cpuTemplate(p string) (string, int) {
	rest, ok := strings.CutPrefix(p, cpuDir+"/cpu")
	if !ok {
		return p, -1
	}
	num, tail, _ := strings.Cut(rest, "/")
	n, err := strconv.Atoi(num)
	if err != nil {
		return p, -1
	}
	return cpuDir + "/cpuN/" + tail, n
}

// readInt reads a decimal integer from p; ok is false if p is missing.
func (d *discoverer) readInt(p string) (v int, ok bool, err error) {
	s, ok, err := d.read(p)
	if err != nil || !ok {
		return 0, false, err
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return 0, false, fmt.Errorf("%s: malformed number %s", p, quoteShort(s))
	}
	return int(n), true, nil
}

// readUint reads a decimal number below 2^bits from p; ok is false if p is
// missing.
func (d *discoverer) readUint(p string, bits int) (v int, ok bool, err error) {
	s, ok, err := d.read(p)
	if err != nil || !ok {
		return 0, false, err
	}
	n, err := strconv.ParseUint(s, 10, bits)
	if err != nil {
		return 0, false, fmt.Errorf("%s: malformed number %s: want a decimal number below 2^%d", p, quoteShort(s), bits)
	}
	return int(n), true, nil
}

// readList reads a cpulist from p; ok is false if p is missing.
func (d *discoverer) readList(p string) (m Cpumask, ok bool, err error) {
	s, ok, err := d.read(p)
	if err != nil || !ok {
		return Cpumask{}, false, err
	}
	m, err = parseCPUList(s)
	if err != nil {
		return Cpumask{}, false, fmt.Errorf("%s: malformed cpulist %s: %w", p, quoteShort(s), err)
	}
	return m, true, nil
}

// readKernelList reads a cpulist of CPU ids, which must be below
// maxKernelCPUs, from p; ok is false if p is missing.
func (d *discoverer) readKernelList(p string) (m Cpumask, ok bool, err error) {
	m, ok, err = d.readList(p)
	if err == nil && ok && !m.Empty() && m.Max() >= maxKernelCPUs {
		return Cpumask{}, false, fmt.Errorf("%s: cpu %d: Linux supports at most %d CPUs (CONFIG_NR_CPUS), ids 0-%d: the copy of sysfs is corrupted", p, m.Max(), maxKernelCPUs, maxKernelCPUs-1)
	}
	return m, ok, err
}

// checkCPULists checks that the CPU masks read from their files can all
// be true: online within present within possible, as the kernel keeps
// them, and no cpuN directory for a CPU that is not possible. found says
// which masks were read from their files; masks derived from the cpuN
// directories of a partial copy are not checked.
func checkCPULists(t *Topology, dirs Cpumask, found map[string]bool) error {
	for _, c := range []struct {
		inner, outer   string
		innerM, outerM Cpumask
	}{
		{"online", "present", t.Online, t.Present},
		{"present", "possible", t.Present, t.Possible},
		{"online", "possible", t.Online, t.Possible},
	} {
		if !found[c.inner] || !found[c.outer] {
			continue
		}
		if extra := c.innerM.AndNot(c.outerM); !extra.Empty() {
			return fmt.Errorf("%s/%s (%s) names cpus %s that %s/%s (%s) lacks: the kernel keeps online within present within possible, so this copy of sysfs is inconsistent; take it again from one machine",
				cpuDir, c.inner, orDash(c.innerM), extra, cpuDir, c.outer, orDash(c.outerM))
		}
	}
	if found["possible"] {
		if extra := dirs.AndNot(t.Possible); !extra.Empty() {
			return fmt.Errorf("%s/cpuN directories exist for cpus %s that %s/possible (%s) lacks: the kernel makes them only for possible CPUs, so this copy of sysfs is inconsistent; take it again from one machine",
				cpuDir, extra, cpuDir, orDash(t.Possible))
		}
	}
	return nil
}

// readSize reads a cache size such as "32K" from p, in KiB.
func (d *discoverer) readSize(p string) (int, error) {
	s, ok, err := d.read(p)
	if err != nil || !ok {
		return 0, err
	}
	num, shift := s, 0
	switch {
	case strings.HasSuffix(s, "K"):
		num, shift = s[:len(s)-1], 10
	case strings.HasSuffix(s, "M"):
		num, shift = s[:len(s)-1], 20
	case strings.HasSuffix(s, "G"):
		num, shift = s[:len(s)-1], 30
	}
	n, err := strconv.ParseUint(num, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%s: malformed cache size %s: want a number of bytes with a K, M or G suffix, as in 32K", p, quoteShort(s))
	}
	return int(n << shift >> 10), nil
}

// listDir returns the numbers N of the directories named prefix+N in dir,
// ascending. ok is false if dir does not exist.
func (d *discoverer) listDir(dir, prefix string) (ids []int, ok bool, err error) {
	f, err := d.open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if errors.Is(err, errNotRegular) {
		return nil, false, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", dir, err)
	}
	rd, isDir := f.(fs.ReadDirFile)
	if !isDir {
		f.Close()
		return nil, false, fmt.Errorf("%s: not a directory", dir)
	}
	ents, err := rd.ReadDir(-1)
	f.Close()
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", dir, err)
	}
	for _, e := range ents {
		num, found := strings.CutPrefix(e.Name(), prefix)
		if !found || !e.IsDir() {
			continue
		}
		n, err := strconv.Atoi(num)
		if err != nil || n < 0 || strconv.Itoa(n) != num {
			continue // cpufreq, cpuidle, ...
		}
		if n >= maxKernelCPUs {
			return nil, false, fmt.Errorf("%s/%s: number %d is not below %d, the most CPUs and nodes Linux supports: the copy of sysfs is corrupted", dir, e.Name(), n, maxKernelCPUs)
		}
		ids = append(ids, n)
	}
	slices.Sort(ids)
	return ids, true, nil
}

// exists reports whether p exists.
func (d *discoverer) exists(p string) bool {
	_, err := fs.Stat(d.fsys, p)
	return err == nil
}

// rawCPU is what Discover read about one online CPU.
type rawCPU struct {
	id int

	pkg, core  int     // physical_package_id, core_id
	siblings   Cpumask // core_cpus_list or thread_siblings_list
	hasSibs    bool
	cluster    Cpumask // cluster_cpus_list
	hasCluster bool

	caches []rawCache
	llc    int // index in caches of the last-level cache; -1 if none
	l2     int // index in caches of the L2 cache; -1 if none

	minFreq, maxFreq, baseFreq int

	node int // kernel node id
}

// rawCache is one cache/indexN directory.
type rawCache struct {
	dir       string // the directory, for notes
	level     int
	typ       string // Data, Instruction or Unified
	sizeKiB   int
	id        int
	hasID     bool
	shared    Cpumask
	hasShared bool
}

// discover does Discover's work on d.fsys.
func (d *discoverer) discover() (*Topology, error) {
	dirs, ok, err := d.listDir(cpuDir, "cpu")
	if err != nil {
		return nil, err
	}
	if !ok {
		inner := strings.TrimPrefix(cpuDir, "sys/")
		if fi, err := fs.Stat(d.fsys, inner); err == nil && fi.IsDir() {
			return nil, fmt.Errorf("%s: %w, but %s does: the root is sysfs itself; give the directory that holds sys/, its parent (/ rather than /sys)", cpuDir, fs.ErrNotExist, inner)
		}
		return nil, fmt.Errorf("%s: %w: sysfs is not mounted, or Options.Root or Options.FS does not hold a copy of it", cpuDir, fs.ErrNotExist)
	}
	t := &Topology{MaxCapacity: 1024}
	dirMask := MaskOf(dirs...)
	d.dirs = dirMask
	// found records which of possible, present and online were read
	// rather than derived, for the consistency checks.
	found := map[string]bool{}
	for _, f := range []struct {
		name string
		dst  *Cpumask
	}{{"possible", &t.Possible}, {"present", &t.Present}} {
		p := cpuDir + "/" + f.name
		m, ok, err := d.readKernelList(p)
		if err != nil {
			return nil, err
		}
		if !ok {
			m = dirMask.Clone()
			d.assume("%s missing: derived %s from cpuN directories", p, orDash(m))
		}
		found[f.name] = ok
		*f.dst = m
	}
	onlinePath := cpuDir + "/online"
	online, ok, err := d.readKernelList(onlinePath)
	if err != nil {
		return nil, err
	}
	found["online"] = ok
	if !ok {
		for _, n := range dirs {
			p := fmt.Sprintf("%s/cpu%d/online", cpuDir, n)
			s, ok, err := d.read(p)
			if err != nil {
				return nil, err
			}
			switch {
			case ok && s == "1":
				online.Set(n)
			case ok && s == "0":
			case ok:
				return nil, fmt.Errorf("%s: malformed flag %s: want 0 or 1", p, quoteShort(s))
			case d.exists(fmt.Sprintf("%s/cpu%d/topology", cpuDir, n)):
				// cpu0 is often not hot-pluggable and has no
				// online file; a CPU with a topology is up.
				online.Set(n)
			}
		}
		d.assume("%s missing: derived %s from cpuN/online and cpuN/topology", onlinePath, orDash(online))
	}
	if online.Empty() {
		if ok {
			return nil, fmt.Errorf("%s: no CPU is online", onlinePath)
		}
		return nil, fmt.Errorf("%s: no CPU is online: no cpuN directory has online 1 or a topology directory", cpuDir)
	}
	t.Online = online
	if err := checkCPULists(t, dirMask, found); err != nil {
		return nil, err
	}

	// Read every online CPU; dense[kernel id] is its index in raw.
	raw := make([]rawCPU, 0, online.Weight())
	dense := make([]int, online.Max()+1)
	for i := range dense {
		dense[i] = -1
	}
	for c := range online.All() {
		dense[c] = len(raw)
		r, err := d.readCPU(c)
		if err != nil {
			return nil, err
		}
		raw = append(raw, r)
	}
	if err := d.readNodes(t, raw, dense); err != nil {
		return nil, err
	}
	d.build(t, raw, dense)
	if err := d.capacities(t); err != nil {
		return nil, err
	}
	d.coreTypes(t)
	t.Assumed = d.assumed()
	return t, nil
}

// readCPU reads the topology, cache and frequency files of online CPU c.
func (d *discoverer) readCPU(c int) (rawCPU, error) {
	r := rawCPU{id: c, llc: -1, l2: -1}
	if !d.dirs.Has(c) {
		r.core = c
		r.siblings = MaskOf(c)
		r.hasSibs = true
		d.assumeCPU(cpuDir+"/cpuN missing for online cpus %s: assumed package 0, a core each, one LLC per package", c)
		return r, nil
	}
	dir := fmt.Sprintf("%s/cpu%d", cpuDir, c)
	top := dir + "/topology"
	var err error
	var ok bool
	if !d.exists(top) {
		r.core = c
		r.siblings = MaskOf(c)
		r.hasSibs = true
		d.assumeCPU(cpuDir+"/cpuN/topology missing for online cpus %s: assumed package 0, a core each", c)
	} else {
		if r.pkg, ok, err = d.readInt(top + "/physical_package_id"); err != nil {
			return r, err
		} else if !ok {
			d.assumeCPU(cpuDir+"/cpuN/topology/physical_package_id missing for cpus %s: assumed package 0", c)
		}
		if r.core, ok, err = d.readInt(top + "/core_id"); err != nil {
			return r, err
		} else if !ok {
			r.core = c
			d.assumeCPU(cpuDir+"/cpuN/topology/core_id missing for cpus %s: used the CPU id as core id", c)
		}
		// core_cpus_list is the current name, thread_siblings_list
		// the deprecated one; kernels have both or only the latter.
		if r.siblings, r.hasSibs, err = d.readList(top + "/core_cpus_list"); err != nil {
			return r, err
		}
		if !r.hasSibs {
			if r.siblings, r.hasSibs, err = d.readList(top + "/thread_siblings_list"); err != nil {
				return r, err
			}
		}
		if !r.hasSibs {
			d.assumeCPU(cpuDir+"/cpuN/topology/core_cpus_list and thread_siblings_list missing for cpus %s: grouped CPUs into cores by package and core_id", c)
		}
		if r.cluster, r.hasCluster, err = d.readList(top + "/cluster_cpus_list"); err != nil {
			return r, err
		}
	}

	if err := d.readCaches(&r, dir+"/cache"); err != nil {
		return r, err
	}

	// Frequencies in kHz: the hardware limits, else the policy limits;
	// the base frequency from intel_pstate, else CPPC's nominal frequency
	// (in MHz).
	for _, f := range []struct {
		dst   *int
		files []string
		kHz   []int // multiplier per file
	}{
		{&r.minFreq, []string{"cpufreq/cpuinfo_min_freq", "cpufreq/scaling_min_freq"}, []int{1, 1}},
		{&r.maxFreq, []string{"cpufreq/cpuinfo_max_freq", "cpufreq/scaling_max_freq"}, []int{1, 1}},
		{&r.baseFreq, []string{"cpufreq/base_frequency", "acpi_cppc/nominal_freq"}, []int{1, 1000}},
	} {
		for i, name := range f.files {
			v, ok, err := d.readUint(dir+"/"+name, 32)
			if err != nil {
				return r, err
			}
			if ok && v > 0 {
				*f.dst = v * f.kHz[i]
				break
			}
		}
	}
	return r, nil
}

// readCaches reads the cache/indexN directories of a CPU into r.
func (d *discoverer) readCaches(r *rawCPU, dir string) error {
	idx, ok, err := d.listDir(dir, "index")
	if err != nil {
		return err
	}
	if !ok || len(idx) == 0 {
		d.assumeCPU(cpuDir+"/cpuN/cache missing for cpus %s: assumed one LLC per package", r.id)
		return nil
	}
	for _, i := range idx {
		c := rawCache{dir: fmt.Sprintf("%s/index%d", dir, i)}
		typ, ok, err := d.read(c.dir + "/type")
		if err != nil {
			return err
		}
		if !ok || typ == "Instruction" {
			continue
		}
		c.typ = typ
		if c.level, ok, err = d.readUint(c.dir+"/level", 8); err != nil {
			return err
		} else if !ok {
			continue
		}
		if c.sizeKiB, err = d.readSize(c.dir + "/size"); err != nil {
			return err
		}
		if c.id, c.hasID, err = d.readInt(c.dir + "/id"); err != nil {
			return err
		}
		if c.shared, c.hasShared, err = d.readList(c.dir + "/shared_cpu_list"); err != nil {
			return err
		}
		r.caches = append(r.caches, c)
	}
	for i, c := range r.caches {
		if c.typ != "Data" && c.typ != "Unified" {
			continue
		}
		if r.llc < 0 || c.level > r.caches[r.llc].level {
			r.llc = i
		}
		if c.level == 2 && r.l2 < 0 {
			r.l2 = i
		}
	}
	switch {
	case r.llc < 0:
		d.assumeCPU(cpuDir+"/cpuN/cache has no data or unified cache for cpus %s: assumed one LLC per package", r.id)
	case !r.caches[r.llc].hasID:
		d.assumeCPU(cpuDir+"/cpuN/cache/"+path.Base(r.caches[r.llc].dir)+"/id missing for cpus %s: derived LLC ids from the lowest CPU in shared_cpu_list", r.id)
	}
	return nil
}

// cacheKiB returns the size of r's data or unified cache of the level.
func (r *rawCPU) cacheKiB(level int) int {
	for _, c := range r.caches {
		if c.level == level && (c.typ == "Data" || c.typ == "Unified") {
			return c.sizeKiB
		}
	}
	return 0
}

// readNodes sets the node of every CPU in raw and creates t.Nodes, with
// dense ids in order of their lowest CPU.
func (d *discoverer) readNodes(t *Topology, raw []rawCPU, dense []int) error {
	ids, ok, err := d.listDir(nodeDir, "node")
	if err != nil {
		return err
	}
	if !ok || len(ids) == 0 {
		d.assume("%s has no nodeN directories: assumed one node 0 with all CPUs", nodeDir)
		t.Nodes = []*Node{{ID: 0, KernelID: 0, CPUs: t.Online.Clone()}}
		return nil
	}
	owner := make([]int, len(raw)) // kernel node id + 1 of each CPU, 0 for none
	for _, n := range ids {
		p := fmt.Sprintf("%s/node%d/cpulist", nodeDir, n)
		m, _, err := d.readList(p)
		if err != nil {
			return err
		}
		for c := range m.All() {
			if c >= len(dense) || dense[c] < 0 {
				continue
			}
			if prev := owner[dense[c]]; prev != 0 {
				return fmt.Errorf("%s: cpu %d is also in %s/node%d/cpulist", p, c, nodeDir, prev-1)
			}
			owner[dense[c]] = n + 1
		}
	}
	var orphans Cpumask
	for i := range raw {
		if owner[i] == 0 {
			orphans.Set(raw[i].id)
		}
		raw[i].node = owner[i] - 1
	}
	if !orphans.Empty() {
		d.assume("cpus %s are in no %s/nodeN/cpulist: assumed node 0", orphans, nodeDir)
		for i := range raw {
			if raw[i].node < 0 {
				raw[i].node = 0
			}
		}
	}

	// Dense node ids in order of each node's lowest CPU.
	byKernel := map[int]*Node{}
	for i := range raw {
		k := raw[i].node
		n := byKernel[k]
		if n == nil {
			n = &Node{ID: len(t.Nodes), KernelID: k}
			byKernel[k] = n
			t.Nodes = append(t.Nodes, n)
		}
		n.CPUs.Set(raw[i].id)
	}

	// Distances: node/nodeN/distance lists the distance to each online
	// node, in the order of node/online.
	onlinePath := nodeDir + "/online"
	cols, ok, err := d.readList(onlinePath)
	if err != nil {
		return err
	}
	for _, n := range t.Nodes {
		p := fmt.Sprintf("%s/node%d/distance", nodeDir, n.KernelID)
		s, found, err := d.read(p)
		if err != nil {
			return err
		}
		if !found {
			continue
		}
		if !ok {
			cols = MaskOf(ids...)
			ok = true
			d.assume("%s missing: took nodes %s from nodeN directories", onlinePath, cols)
		}
		fields := strings.Fields(s)
		if len(fields) != cols.Weight() {
			return fmt.Errorf("%s: %d distances %s for the %d nodes of %s (%s)", p, len(fields), quoteShort(s), cols.Weight(), onlinePath, cols)
		}
		byNode := map[int]int{}
		col := 0
		for k := range cols.All() {
			v, err := strconv.ParseUint(fields[col], 10, 16)
			if err != nil || v == 0 {
				return fmt.Errorf("%s: malformed distance %s in %s: want a positive number", p, quoteShort(fields[col]), quoteShort(s))
			}
			byNode[k] = int(v)
			col++
		}
		dist := make([]int, len(t.Nodes))
		for j, m := range t.Nodes {
			v, found := byNode[m.KernelID]
			if !found {
				d.assume("%s does not list node %d: distances of node %d unknown", onlinePath, m.KernelID, n.KernelID)
				dist = nil
				break
			}
			dist[j] = v
		}
		n.Distances = dist
	}
	return nil
}

// unionFind groups CPUs (by index in raw).
type unionFind []int

func newUnionFind(n int) unionFind {
	u := make(unionFind, n)
	for i := range u {
		u[i] = i
	}
	return u
}

func (u unionFind) find(i int) int {
	for u[i] != i {
		u[i] = u[u[i]]
		i = u[i]
	}
	return i
}

// union joins the groups of i and j; the root is the lower index, so that
// a group's root is its lowest CPU.
func (u unionFind) union(i, j int) {
	a, b := u.find(i), u.find(j)
	if a > b {
		a, b = b, a
	}
	u[b] = a
}

// groups returns the dense group id of every CPU, counting from 0 in
// order of each group's lowest CPU, and the number of groups.
func (u unionFind) groups() ([]int, int) {
	ids := make([]int, len(u))
	n := 0
	for i := range u {
		if r := u.find(i); r == i {
			ids[i] = n
			n++
		} else {
			ids[i] = ids[r] // r < i: already numbered
		}
	}
	return ids, n
}

// build groups the CPUs of raw into cores, clusters, LLCs and packages and
// fills in t's objects and dense ids. Nodes are already made.
func (d *discoverer) build(t *Topology, raw []rawCPU, dense []int) {
	n := len(raw)
	// join unions i with the online CPUs of mask in its package;
	// CPUs of other packages are dropped with a note, so that cores,
	// clusters and LLCs never span packages.
	join := func(u unionFind, i int, mask Cpumask, file string) {
		for c := range mask.All() {
			if c >= len(dense) {
				break
			}
			j := dense[c]
			if j < 0 || j == i {
				continue
			}
			if raw[j].pkg != raw[i].pkg {
				d.assumeCPU(cpuDir+"/cpuN/"+file+" names CPUs of other packages for cpus %s: left them out", raw[i].id)
				continue
			}
			u.union(i, j)
		}
	}

	// Cores: SMT siblings, or CPUs with the same package and core_id.
	cores := newUnionFind(n)
	byCoreID := map[[2]int]int{}
	for i := range raw {
		r := &raw[i]
		if r.hasSibs {
			join(cores, i, r.siblings, "topology/core_cpus_list")
			continue
		}
		key := [2]int{r.pkg, r.core}
		if j, ok := byCoreID[key]; ok {
			cores.union(i, j)
		} else {
			byCoreID[key] = i
		}
	}

	// Clusters: cores sharing an L2, or cluster_cpus_list.
	clusters := slices.Clone(cores)
	for i := range raw {
		r := &raw[i]
		switch {
		case r.l2 >= 0:
			c := r.caches[r.l2]
			if !c.hasShared {
				if r.l2 != r.llc { // noted below for the LLC
					d.assumeCPU(cpuDir+"/cpuN/cache/"+path.Base(c.dir)+"/shared_cpu_list missing for cpus %s: assumed the cache is private", r.id)
				}
				continue
			}
			join(clusters, i, c.shared, "cache/"+path.Base(c.dir)+"/shared_cpu_list")
		case r.hasCluster:
			join(clusters, i, r.cluster, "topology/cluster_cpus_list")
		}
	}

	// LLCs: clusters sharing the last-level cache; without cache
	// information, a package.
	llcs := slices.Clone(clusters)
	noCache := map[int]int{} // package -> first CPU without cache information
	for i := range raw {
		r := &raw[i]
		if r.llc < 0 {
			if j, ok := noCache[r.pkg]; ok {
				llcs.union(i, j)
			} else {
				noCache[r.pkg] = i
			}
			continue
		}
		c := r.caches[r.llc]
		if !c.hasShared {
			d.assumeCPU(cpuDir+"/cpuN/cache/"+path.Base(c.dir)+"/shared_cpu_list missing for cpus %s: assumed the cache is private", r.id)
			continue
		}
		join(llcs, i, c.shared, "cache/"+path.Base(c.dir)+"/shared_cpu_list")
	}

	coreOf, nCores := cores.groups()
	clusterOf, nClusters := clusters.groups()
	llcOf, nLLCs := llcs.groups()
	pkgOf := make([]int, n)
	pkgByKernel := map[int]int{}
	for i := range raw {
		p, ok := pkgByKernel[raw[i].pkg]
		if !ok {
			p = len(t.Packages)
			pkgByKernel[raw[i].pkg] = p
			t.Packages = append(t.Packages, &Package{ID: p, KernelID: raw[i].pkg})
		}
		pkgOf[i] = p
	}
	nodeOf := make([]int, n)
	nodeByKernel := map[int]int{}
	for _, nd := range t.Nodes {
		nodeByKernel[nd.KernelID] = nd.ID
	}
	for i := range raw {
		nodeOf[i] = nodeByKernel[raw[i].node]
	}

	t.Cores = make([]*Core, nCores)
	t.Clusters = make([]*Cluster, nClusters)
	t.LLCs = make([]*LLC, nLLCs)
	t.CPUs = make([]*CPU, n)
	pkgNodes := make([]Cpumask, len(t.Packages)) // dense node ids per package
	nodeLLCs := make([]Cpumask, len(t.Nodes))    // dense LLC ids per node
	for i := range raw {
		r := &raw[i]
		t.CPUs[i] = &CPU{
			ID: i, KernelID: r.id,
			Core: coreOf[i], LLC: llcOf[i], Node: nodeOf[i], Package: pkgOf[i], Cluster: clusterOf[i],
			MinFreqKHz: r.minFreq, MaxFreqKHz: r.maxFreq, BaseFreqKHz: r.baseFreq,
			L1dKiB: r.cacheKiB(1), L2KiB: r.cacheKiB(2), L3KiB: r.cacheKiB(3),
		}
		t.Packages[pkgOf[i]].CPUs.Set(r.id)
		pkgNodes[pkgOf[i]].Set(nodeOf[i])
		nodeLLCs[nodeOf[i]].Set(llcOf[i])

		// The lowest CPU of each object makes it and sets its ids.
		if co := t.Cores[coreOf[i]]; co == nil {
			t.Cores[coreOf[i]] = &Core{
				ID: coreOf[i], KernelID: r.core,
				Package: pkgOf[i], Node: nodeOf[i], LLC: llcOf[i], Cluster: clusterOf[i],
			}
		}
		t.Cores[coreOf[i]].CPUs.Set(r.id)
		if cl := t.Clusters[clusterOf[i]]; cl == nil {
			t.Clusters[clusterOf[i]] = &Cluster{ID: clusterOf[i], LLC: llcOf[i], SizeKiB: r.cacheKiB(2)}
		}
		t.Clusters[clusterOf[i]].CPUs.Set(r.id)
		if l := t.LLCs[llcOf[i]]; l == nil {
			l = &LLC{ID: llcOf[i], KernelID: r.id, Node: nodeOf[i], Package: pkgOf[i]}
			if r.llc >= 0 {
				c := r.caches[r.llc]
				l.Level, l.SizeKiB = c.level, c.sizeKiB
				switch {
				case c.hasID:
					l.KernelID = c.id
				case c.hasShared && !c.shared.Empty():
					l.KernelID = c.shared.First()
				}
			}
			t.LLCs[llcOf[i]] = l
		}
		t.LLCs[llcOf[i]].CPUs.Set(r.id)
	}
	for _, co := range t.Cores {
		l := t.LLCs[co.LLC]
		l.Cores = append(l.Cores, co.ID) // ascending, as cores are
	}
	for i, p := range t.Packages {
		p.Nodes = pkgNodes[i].Slice()
	}
	for i, nd := range t.Nodes {
		nd.LLCs = nodeLLCs[i].Slice()
	}
}

// A capacity source is a per-CPU file from which capacities are scaled.
type capacitySource struct {
	name string // CPU.CapacitySource
	file string // under cpuN/
}

// capacitySources are tried best first; the first that every online CPU
// has (with a value above 0) is used for all.
var capacitySources = []capacitySource{
	// The scheduler's own capacity (arch_topology: Arm, RISC-V), from
	// the device tree's capacity-dmips-mhz or ACPI CPPC.
	{"cpu_capacity", "cpu_capacity"},
	// ACPI CPPC highest performance: per-core on Intel hybrid and on
	// Arm servers; on AMD with preferred cores it holds the core ranking.
	{"acpi_cppc", "acpi_cppc/highest_perf"},
	// amd-pstate's preferred-core ranking, the per-core part that the
	// driver splits off highest_perf (amd_pstate_highest_perf is the
	// same for every core on such machines); for machines whose CPPC
	// directory is missing.
	{"amd_pstate_prefcore", "cpufreq/amd_pstate_prefcore_ranking"},
	// The highest frequency: a rough stand-in, blind to IPC differences.
	{"cpufreq", "cpufreq/cpuinfo_max_freq"},
}

// capacities sets the CPUs' capacities from the best complete source.
func (d *discoverer) capacities(t *Topology) error {
	source, vals := "uniform", []int(nil)
	for _, s := range capacitySources {
		v := make([]int, len(t.CPUs))
		var missing Cpumask
		for i, c := range t.CPUs {
			x, ok := 0, false
			if d.dirs.Has(c.KernelID) {
				var err error
				x, ok, err = d.readUint(fmt.Sprintf("%s/cpu%d/%s", cpuDir, c.KernelID, s.file), 40)
				if err != nil {
					return err
				}
			}
			if !ok || x == 0 {
				missing.Set(c.KernelID)
				if i == 0 {
					break // the usual case: the source is absent
				}
			}
			v[i] = x
		}
		if missing.Empty() {
			source, vals = s.name, v
			break
		}
		if !missing.Has(t.CPUs[0].KernelID) { // some CPUs have it
			for c := range missing.All() {
				d.assumeCPU(cpuDir+"/cpuN/"+s.file+" missing or 0 for cpus %s: not used for capacities", c)
			}
		}
	}
	if vals == nil {
		d.assume("no capacity file on every CPU (cpu_capacity, acpi_cppc/highest_perf, cpufreq/amd_pstate_prefcore_ranking, cpufreq/cpuinfo_max_freq): assumed uniform capacity 1024")
	}
	top := slices.Max(append(vals, 1))
	for i, c := range t.CPUs {
		c.CapacitySource = source
		c.Capacity = 1024
		if vals != nil {
			c.Capacity = (vals[i]*1024 + top/2) / top
		}
		co := t.Cores[c.Core]
		co.Capacity = max(co.Capacity, c.Capacity)
	}
	return nil
}

// levelGap separates capacity levels: cores whose capacity is below 7/8
// of the next higher one are a lower level. The spread of preferred-core
// rankings on a homogeneous machine (a few percent from core to core)
// stays within one level; big and little cores (at least 20% apart) do not.
const levelGapNum, levelGapDen = 7, 8

// coreTypes sets Core.Type; see the package documentation.
func (d *discoverer) coreTypes(t *Topology) {
	caps := make([]int, 0, len(t.Cores))
	for _, c := range t.Cores {
		caps = append(caps, c.Capacity)
	}
	slices.Sort(caps)
	slices.Reverse(caps)
	caps = slices.Compact(caps)
	// level[i] is the lowest capacity of level i, from the top.
	var level []int
	for i, c := range caps {
		if i == 0 || c*levelGapDen < caps[i-1]*levelGapNum {
			level = append(level, c)
		} else {
			level[len(level)-1] = c
		}
	}
	levelOf := func(capacity int) int {
		for i, lo := range level {
			if capacity >= lo {
				return i
			}
		}
		return len(level) - 1
	}
	count := make([]int, len(level))
	for _, c := range t.Cores {
		count[levelOf(c.Capacity)]++
	}
	turbo := len(level) >= 3 && count[0] < len(t.Cores)-count[0]
	for _, c := range t.Cores {
		switch l := levelOf(c.Capacity); {
		case turbo && l == 0:
			c.Type = CoreTurbo
		case turbo && l == 1, !turbo && l == 0:
			c.Type = CoreBig
		default:
			c.Type = CoreLittle
		}
	}
	if len(level) == 1 {
		d.inferHybrid(t)
	}
}

// inferHybrid types the cores of a machine whose cores are all in one
// capacity level and that looks like an Intel hybrid CPU: its cores with SMT each have their own
// L2, and its cores without SMT share an L2 with other cores. Those are
// efficiency cores, which the kernel cannot tell apart when cpufreq and
// CPPC are missing (as in many VMs).
func (d *discoverer) inferHybrid(t *Topology) {
	perCluster := make([]int, len(t.Clusters))
	for _, c := range t.Cores {
		perCluster[c.Cluster]++
	}
	var smt, solo int
	var little Cpumask
	for _, c := range t.Cores {
		shared := perCluster[c.Cluster] > 1
		if c.CPUs.Weight() > 1 {
			if shared {
				return
			}
			smt++
		} else {
			if !shared {
				return
			}
			solo++
			little.Set(c.CPUs.First())
		}
	}
	if smt == 0 || solo == 0 {
		return
	}
	for _, c := range t.Cores {
		if c.CPUs.Weight() == 1 {
			c.Type = CoreLittle
		}
	}
	d.assume("cores have alike capacities, but those with SMT have a private L2 and those without share one: assumed a hybrid CPU whose cores of cpus %s are little", little)
}
