package topology

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing/fstest"
	"time"
)

// shape describes a synthetic machine: Packages packages of NodesPerPackage
// nodes of LLCsPerNode LLCs of CoresPerLLC cores of SMT threads each.
// synthFS writes the sysfs such a machine has, and want says what Discover
// must make of it, computed from the shape alone.
//
// Cores, LLCs, nodes and packages are numbered globally in nesting order:
// core g is in LLC g/CoresPerLLC, and so on. Thread t of core g is CPU
// g + t*cores with SplitSMT (x86: all first threads, then all second
// threads) and CPU g*SMT + t without (Arm, POWER, s390x). Either way the
// lowest CPU of core g is g times a constant, so dense ids follow the
// global numbering.
type shape struct {
	Packages, NodesPerPackage, LLCsPerNode, CoresPerLLC, SMT int
	// CoresPerCluster cores share an L2; 0 or 1 means private L2s. It
	// must divide CoresPerLLC.
	CoresPerCluster int
	// SplitSMT numbers SMT siblings apart; see shape.
	SplitSMT bool
	// Little, if positive, makes the last Little cores of each LLC
	// little: cpu_capacity 512 rather than 1024, and a lower maximum
	// frequency. With Little 0 there are no cpu_capacity files and
	// capacities come from cpuinfo_max_freq, the same for all.
	Little int
}

func (s shape) String() string {
	return fmt.Sprintf("%dp%dn%dl%dc%dt/cl%d/split%t/little%d", s.Packages, s.NodesPerPackage, s.LLCsPerNode, s.CoresPerLLC, s.SMT, s.CoresPerCluster, s.SplitSMT, s.Little)
}

func (s shape) nodes() int        { return s.Packages * s.NodesPerPackage }
func (s shape) llcs() int         { return s.nodes() * s.LLCsPerNode }
func (s shape) cores() int        { return s.llcs() * s.CoresPerLLC }
func (s shape) ncpus() int        { return s.cores() * s.SMT }
func (s shape) coresPerPkg() int  { return s.NodesPerPackage * s.LLCsPerNode * s.CoresPerLLC }
func (s shape) coresPerNode() int { return s.LLCsPerNode * s.CoresPerLLC }
func (s shape) perCluster() int   { return max(s.CoresPerCluster, 1) }

// cpu returns the kernel id of thread t of core g.
func (s shape) cpu(g, t int) int {
	if s.SplitSMT {
		return g + t*s.cores()
	}
	return g*s.SMT + t
}

// coreOf returns the core and thread of CPU c.
func (s shape) coreOf(c int) (g, t int) {
	if s.SplitSMT {
		return c % s.cores(), c / s.cores()
	}
	return c / s.SMT, c % s.SMT
}

// coreCPUs returns the CPUs of the cores first to last (global numbers).
func (s shape) coreCPUs(first, last int) Cpumask {
	var m Cpumask
	for g := first; g <= last; g++ {
		for t := range s.SMT {
			m.Set(s.cpu(g, t))
		}
	}
	return m
}

// little reports whether core g is little.
func (s shape) little(g int) bool {
	return s.Little > 0 && g%s.CoresPerLLC >= s.CoresPerLLC-s.Little
}

// files returns the sysfs of the machine, as paths relative to the root
// and their contents.
func (s shape) files() map[string]string {
	f := map[string]string{}
	all := fmt.Sprintf("0-%d\n", s.ncpus()-1)
	f[cpuDir+"/possible"], f[cpuDir+"/present"], f[cpuDir+"/online"] = all, all, all
	for c := range s.ncpus() {
		g, _ := s.coreOf(c)
		llc := g / s.CoresPerLLC
		cl := g / s.perCluster()
		dir := fmt.Sprintf("%s/cpu%d/", cpuDir, c)
		siblings := s.coreCPUs(g, g).String() + "\n"
		f[dir+"topology/physical_package_id"] = fmt.Sprintln(g / s.coresPerPkg())
		f[dir+"topology/core_id"] = fmt.Sprintln(g % s.coresPerPkg())
		f[dir+"topology/core_cpus_list"] = siblings
		f[dir+"topology/thread_siblings_list"] = siblings
		f[dir+"topology/cluster_cpus_list"] = s.coreCPUs(cl*s.perCluster(), cl*s.perCluster()+s.perCluster()-1).String() + "\n"
		for i, cache := range []struct {
			level    int
			typ      string
			size, id int
			shared   Cpumask
		}{
			{1, "Data", 32, g, s.coreCPUs(g, g)},
			{1, "Instruction", 64, g, s.coreCPUs(g, g)},
			{2, "Unified", 1024 * s.perCluster(), cl, s.coreCPUs(cl*s.perCluster(), cl*s.perCluster()+s.perCluster()-1)},
			{3, "Unified", 32768, llc, s.coreCPUs(llc*s.CoresPerLLC, llc*s.CoresPerLLC+s.CoresPerLLC-1)},
		} {
			idx := fmt.Sprintf("%scache/index%d/", dir, i)
			f[idx+"level"] = fmt.Sprintln(cache.level)
			f[idx+"type"] = cache.typ + "\n"
			f[idx+"size"] = fmt.Sprintf("%dK\n", cache.size)
			f[idx+"id"] = fmt.Sprintln(cache.id)
			f[idx+"shared_cpu_list"] = cache.shared.String() + "\n"
			f[idx+"shared_cpu_map"] = cache.shared.HexMask() + "\n"
		}
		maxFreq := 3000000
		if s.little(g) {
			maxFreq = 2000000
		}
		if s.Little > 0 {
			capacity := 1024
			if s.little(g) {
				capacity = 512
			}
			f[dir+"cpu_capacity"] = fmt.Sprintln(capacity)
		}
		f[dir+"cpufreq/cpuinfo_min_freq"] = "800000\n"
		f[dir+"cpufreq/cpuinfo_max_freq"] = fmt.Sprintln(maxFreq)
		f[dir+"cpufreq/base_frequency"] = "2000000\n"
	}
	f[nodeDir+"/online"] = fmt.Sprintf("0-%d\n", s.nodes()-1)
	f[nodeDir+"/possible"] = f[nodeDir+"/online"]
	for n := range s.nodes() {
		dir := fmt.Sprintf("%s/node%d/", nodeDir, n)
		first := n * s.coresPerNode()
		f[dir+"cpulist"] = s.coreCPUs(first, first+s.coresPerNode()-1).String() + "\n"
		var dist []string
		for m := range s.nodes() {
			dist = append(dist, strconv.Itoa(s.distance(n, m)))
		}
		f[dir+"distance"] = strings.Join(dist, " ") + "\n"
	}
	return f
}

// distance returns the distance between nodes n and m.
func (s shape) distance(n, m int) int {
	switch {
	case n == m:
		return 10
	case n/s.NodesPerPackage == m/s.NodesPerPackage:
		return 12
	}
	return 32
}

// synthFS returns the sysfs of the machine as an indexed MapFS.
func (s shape) synthFS() fs.FS {
	return newIndexedFS(s.files())
}

// indexedFS is a MapFS with an index of its directories. A MapFS finds the
// entries of a directory, and finds that a file is missing, by scanning
// all its files, which makes Discover on a large synthetic machine
// quadratic; indexedFS answers both from the index.
type indexedFS struct {
	fstest.MapFS
	dirs map[string][]fs.DirEntry // sorted by name
}

// newIndexedFS returns an indexedFS of files.
func newIndexedFS(files map[string]string) indexedFS {
	f := indexedFS{MapFS: mapFS(files), dirs: map[string][]fs.DirEntry{}}
	seen := map[string]bool{}
	for p := range files {
		for child := p; child != "."; child = path.Dir(child) {
			if seen[child] {
				break
			}
			seen[child] = true
			parent := path.Dir(child)
			f.dirs[parent] = append(f.dirs[parent], fs.FileInfoToDirEntry(dirInfo{name: path.Base(child), dir: child != p}))
		}
	}
	for _, ents := range f.dirs {
		slices.SortFunc(ents, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	}
	return f
}

func (f indexedFS) Open(name string) (fs.File, error) {
	if _, ok := f.MapFS[name]; !ok {
		if _, ok := f.dirs[name]; !ok {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
	}
	return f.MapFS.Open(name)
}

func (f indexedFS) ReadDir(name string) ([]fs.DirEntry, error) {
	ents, ok := f.dirs[name]
	if !ok {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrNotExist}
	}
	return slices.Clone(ents), nil
}

func (f indexedFS) Stat(name string) (fs.FileInfo, error) {
	if _, ok := f.dirs[name]; ok {
		return dirInfo{name: path.Base(name), dir: true}, nil
	}
	if _, ok := f.MapFS[name]; ok {
		return f.MapFS.Stat(name)
	}
	return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
}

// dirInfo describes an entry of an indexedFS directory.
type dirInfo struct {
	name string
	dir  bool
}

func (i dirInfo) Name() string { return i.name }
func (i dirInfo) Size() int64  { return 0 }
func (i dirInfo) Mode() fs.FileMode {
	if i.dir {
		return fs.ModeDir | 0o555
	}
	return 0o444
}
func (i dirInfo) ModTime() time.Time { return time.Time{} }
func (i dirInfo) IsDir() bool        { return i.dir }
func (i dirInfo) Sys() any           { return nil }

// mapFS turns files into a MapFS.
func mapFS(files map[string]string) fstest.MapFS {
	m := make(fstest.MapFS, len(files))
	for p, content := range files {
		m[p] = &fstest.MapFile{Data: []byte(content), Mode: 0o444}
	}
	return m
}

// writeTree writes files under dir.
func writeTree(dir string, files map[string]string) error {
	for p, content := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, []byte(content), 0o444); err != nil {
			return err
		}
	}
	return nil
}

// want returns the topology Discover must find on the machine, with its
// LLCs split as SplitLLCs(maxCores) does (maxCores <= 0: not split).
func (s shape) want(maxCores int) *Topology {
	all := s.coreCPUs(0, s.cores()-1)
	t := &Topology{Possible: all, Present: all, Online: all, MaxCapacity: 1024, Assumed: []string{}}
	for p := range s.Packages {
		first := p * s.coresPerPkg()
		pkg := &Package{ID: p, KernelID: p, CPUs: s.coreCPUs(first, first+s.coresPerPkg()-1)}
		for n := range s.NodesPerPackage {
			pkg.Nodes = append(pkg.Nodes, p*s.NodesPerPackage+n)
		}
		t.Packages = append(t.Packages, pkg)
	}

	// LLCs, split: a run of cores each, as parts[llc] lists.
	type run struct{ first, last int }
	var parts [][]run
	for l := range s.llcs() {
		first, n := l*s.CoresPerLLC, s.CoresPerLLC
		if maxCores <= 0 || n <= maxCores {
			parts = append(parts, []run{{first, first + n - 1}})
			continue
		}
		k := (n + maxCores - 1) / maxCores
		var rs []run
		for i := range k {
			rs = append(rs, run{first + i*n/k, first + (i+1)*n/k - 1})
		}
		parts = append(parts, rs)
	}
	llcOfCore := make([]int, s.cores())
	for l, rs := range parts {
		for _, r := range rs {
			id := len(t.LLCs)
			llc := &LLC{
				ID: id, KernelID: l, Level: 3, Node: l / s.LLCsPerNode, Package: l / s.LLCsPerNode / s.NodesPerPackage,
				CPUs: s.coreCPUs(r.first, r.last), SizeKiB: 32768, Virtual: len(rs) > 1,
			}
			for g := r.first; g <= r.last; g++ {
				llc.Cores = append(llc.Cores, g)
				llcOfCore[g] = id
			}
			t.LLCs = append(t.LLCs, llc)
		}
	}
	for n := range s.nodes() {
		first := n * s.coresPerNode()
		node := &Node{ID: n, KernelID: n, CPUs: s.coreCPUs(first, first+s.coresPerNode()-1)}
		for m := range s.nodes() {
			node.Distances = append(node.Distances, s.distance(n, m))
		}
		for _, l := range t.LLCs {
			if l.Node == n {
				node.LLCs = append(node.LLCs, l.ID)
			}
		}
		t.Nodes = append(t.Nodes, node)
	}
	for cl := range s.cores() / s.perCluster() {
		first := cl * s.perCluster()
		t.Clusters = append(t.Clusters, &Cluster{
			ID: cl, CPUs: s.coreCPUs(first, first+s.perCluster()-1), LLC: llcOfCore[first], SizeKiB: 1024 * s.perCluster(),
		})
	}
	source := "cpufreq"
	if s.Little > 0 {
		source = "cpu_capacity"
	}
	for g := range s.cores() {
		core := &Core{
			ID: g, KernelID: g % s.coresPerPkg(),
			Package: g / s.coresPerPkg(), Node: g / s.coresPerNode(), LLC: llcOfCore[g], Cluster: g / s.perCluster(),
			CPUs: s.coreCPUs(g, g), Type: CoreBig, Capacity: 1024,
		}
		if s.little(g) {
			core.Type, core.Capacity = CoreLittle, 512
		}
		t.Cores = append(t.Cores, core)
	}
	for c := range s.ncpus() {
		g, _ := s.coreOf(c)
		core := t.Cores[g]
		cpu := &CPU{
			ID: c, KernelID: c,
			Core: g, LLC: core.LLC, Node: core.Node, Package: core.Package, Cluster: core.Cluster,
			Capacity: core.Capacity, CapacitySource: source,
			MinFreqKHz: 800000, MaxFreqKHz: 3000000, BaseFreqKHz: 2000000,
			L1dKiB: 32, L2KiB: 1024 * s.perCluster(), L3KiB: 32768,
		}
		if s.little(g) {
			cpu.MaxFreqKHz = 2000000
		}
		t.CPUs = append(t.CPUs, cpu)
	}
	return t
}

// discoverFS runs Discover on fsys.
func discoverFS(fsys fs.FS) (*Topology, error) {
	return Discover(&Options{FS: fsys})
}
