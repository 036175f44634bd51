package topology

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"path"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// shapes are the synthetic machines the property tests check.
var shapes = []shape{
	{Packages: 1, NodesPerPackage: 1, LLCsPerNode: 1, CoresPerLLC: 1, SMT: 1},
	{Packages: 1, NodesPerPackage: 1, LLCsPerNode: 1, CoresPerLLC: 4, SMT: 2},
	{Packages: 1, NodesPerPackage: 1, LLCsPerNode: 2, CoresPerLLC: 3, SMT: 2, SplitSMT: true},
	{Packages: 2, NodesPerPackage: 1, LLCsPerNode: 1, CoresPerLLC: 6, SMT: 2, SplitSMT: true},
	{Packages: 2, NodesPerPackage: 2, LLCsPerNode: 2, CoresPerLLC: 8, SMT: 2, SplitSMT: true},
	{Packages: 1, NodesPerPackage: 4, LLCsPerNode: 2, CoresPerLLC: 8, SMT: 4},
	{Packages: 1, NodesPerPackage: 1, LLCsPerNode: 1, CoresPerLLC: 8, SMT: 1, CoresPerCluster: 4, Little: 4},
	{Packages: 1, NodesPerPackage: 1, LLCsPerNode: 2, CoresPerLLC: 6, SMT: 1, CoresPerCluster: 2, Little: 2},
	{Packages: 2, NodesPerPackage: 4, LLCsPerNode: 2, CoresPerLLC: 16, SMT: 2, SplitSMT: true}, // the benchmark's
	{Packages: 1, NodesPerPackage: 1, LLCsPerNode: 1, CoresPerLLC: 40, SMT: 2, SplitSMT: true}, // > 64 CPUs
}

// randomShapes returns n small random shapes.
func randomShapes(r *rand.Rand, n int) []shape {
	var s []shape
	for range n {
		sh := shape{
			Packages:        1 + r.IntN(3),
			NodesPerPackage: 1 + r.IntN(2),
			LLCsPerNode:     1 + r.IntN(3),
			SMT:             1 + r.IntN(2),
			SplitSMT:        r.IntN(2) == 0,
		}
		sh.CoresPerCluster = 1 + r.IntN(3)
		sh.CoresPerLLC = sh.CoresPerCluster * (1 + r.IntN(4))
		if r.IntN(3) == 0 {
			sh.Little = r.IntN(sh.CoresPerLLC)
		}
		s = append(s, sh)
	}
	return s
}

func TestDiscoverShapes(t *testing.T) {
	all := append(slices.Clone(shapes), randomShapes(rand.New(rand.NewPCG(5, 6)), 40)...)
	for _, s := range all {
		t.Run(s.String(), func(t *testing.T) {
			got, err := discoverFS(s.synthFS())
			if err != nil {
				t.Fatal(err)
			}
			if err := checkTopology(got); err != nil {
				t.Errorf("invariant: %v", err)
			}
			if diff := cmp.Diff(s.want(0), got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Discover (-want +got):\n%s", diff)
			}
			for _, k := range []int{1, 2, 3, 5, 8, s.CoresPerLLC, s.CoresPerLLC + 1} {
				split := got.SplitLLCs(k)
				if err := checkTopology(split); err != nil {
					t.Errorf("SplitLLCs(%d): invariant: %v", k, err)
				}
				if diff := cmp.Diff(s.want(k), split, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("SplitLLCs(%d) (-want +got):\n%s", k, diff)
				}
			}
			// SplitLLCs must leave its receiver alone.
			if diff := cmp.Diff(s.want(0), got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("after SplitLLCs, the original changed (-want +got):\n%s", diff)
			}
			viaOpts, err := Discover(&Options{FS: s.synthFS(), LLCCores: 3})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(s.want(3), viaOpts, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Options.LLCCores 3 (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSplitLLCsIndependent(t *testing.T) {
	s := shape{Packages: 1, NodesPerPackage: 1, LLCsPerNode: 1, CoresPerLLC: 4, SMT: 2}
	orig, err := discoverFS(s.synthFS())
	if err != nil {
		t.Fatal(err)
	}
	cp := orig.SplitLLCs(0)
	cp.Online.Set(100)
	cp.Cores[0].CPUs.Set(100)
	cp.LLCs[0].Cores[0] = 99
	cp.Nodes[0].Distances[0] = 99
	cp.CPUs[0].Capacity = 1
	if diff := cmp.Diff(s.want(0), orig, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("changing the copy changed the original (-want +got):\n%s", diff)
	}
}

// smallFiles is a small machine for the tests below: 1 package, 2 nodes of
// one LLC of 2 cores with 2 threads (CPUs 0-7), the second core of each
// LLC little.
func smallFiles() map[string]string {
	return shape{Packages: 1, NodesPerPackage: 2, LLCsPerNode: 1, CoresPerLLC: 2, SMT: 2, CoresPerCluster: 2, Little: 1}.files()
}

// without returns files without those whose path matches a pattern:
// a path.Match pattern (so cpu* matches every cpuN), or one ending in / that
// matches every file under the directories it matches.
func without(files map[string]string, patterns ...string) map[string]string {
	m := map[string]string{}
outer:
	for p, c := range files {
		for _, pat := range patterns {
			if matchPath(pat, p) {
				continue outer
			}
		}
		m[p] = c
	}
	return m
}

// matchPath reports whether p matches pat; see without.
func matchPath(pat, p string) bool {
	if dir, ok := strings.CutSuffix(pat, "/"); ok {
		n := strings.Count(dir, "/") + 1
		elems := strings.Split(p, "/")
		if len(elems) <= n {
			return false
		}
		pat, p = dir, strings.Join(elems[:n], "/")
	}
	ok, _ := path.Match(pat, p)
	return ok
}

// with returns files with the given files replaced or added.
func with(files map[string]string, kv ...string) map[string]string {
	m := make(map[string]string, len(files))
	for p, c := range files {
		m[p] = c
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func TestDiscoverAssumed(t *testing.T) {
	const cpu = "sys/devices/system/cpu/"
	const node = "sys/devices/system/node/"
	uniform := "no capacity file on every CPU (cpu_capacity, acpi_cppc/highest_perf, cpufreq/amd_pstate_prefcore_ranking, cpufreq/cpuinfo_max_freq): assumed uniform capacity 1024"
	tests := []struct {
		name  string
		files map[string]string
		want  []string
		check func(t *testing.T, topo *Topology)
	}{
		{
			name:  "complete",
			files: smallFiles(),
			want:  nil,
		},
		{
			name:  "no possible, present, online",
			files: without(smallFiles(), cpu+"possible", cpu+"present", cpu+"online"),
			want: []string{
				cpu + "possible missing: derived 0-7 from cpuN directories",
				cpu + "present missing: derived 0-7 from cpuN directories",
				cpu + "online missing: derived 0-7 from cpuN/online and cpuN/topology",
			},
		},
		{
			name: "online derived from cpuN/online and topology",
			files: without(with(smallFiles(),
				cpu+"cpu1/online", "1\n", cpu+"cpu2/online", "0\n", cpu+"cpu3/online", "1\n"),
				cpu+"online", cpu+"cpu3/topology/"),
			want: []string{
				cpu + "online missing: derived 0-1,3-7 from cpuN/online and cpuN/topology",
				cpu + "cpuN/topology missing for online cpus 3: assumed package 0, a core each",
			},
			check: func(t *testing.T, topo *Topology) {
				if got := topo.Online.String(); got != "0-1,3-7" {
					t.Errorf("Online = %s", got)
				}
				c3, _ := topo.CPU(3)
				if co := topo.Cores[c3.Core]; co.CPUs.String() != "3" {
					t.Errorf("cpu 3 is in core %v, want a core of its own", co.CPUs)
				}
			},
		},
		{
			name:  "online CPU without a directory",
			files: with(smallFiles(), cpu+"online", "0-8\n", cpu+"possible", "0-8\n", cpu+"present", "0-8\n"),
			want: []string{
				cpu + "cpuN missing for online cpus 8: assumed package 0, a core each, one LLC per package",
				"cpus 8 are in no sys/devices/system/node/nodeN/cpulist: assumed node 0",
				cpu + "cpuN/cpu_capacity missing or 0 for cpus 8: not used for capacities",
				cpu + "cpuN/cpufreq/cpuinfo_max_freq missing or 0 for cpus 8: not used for capacities",
				uniform,
			},
			check: func(t *testing.T, topo *Topology) {
				c8, ok := topo.CPU(8)
				if !ok || topo.LLCs[c8.LLC].Level != 0 || topo.LLCs[c8.LLC].CPUs.String() != "8" {
					t.Errorf("cpu 8: %+v", c8)
				}
			},
		},
		{
			name:  "no package or core ids",
			files: without(smallFiles(), cpu+"cpu*/topology/physical_package_id", cpu+"cpu*/topology/core_id"),
			want: []string{
				cpu + "cpuN/topology/physical_package_id missing for cpus 0-7: assumed package 0",
				cpu + "cpuN/topology/core_id missing for cpus 0-7: used the CPU id as core id",
			},
		},
		{
			name:  "no sibling lists",
			files: without(smallFiles(), cpu+"cpu*/topology/core_cpus_list", cpu+"cpu*/topology/thread_siblings_list"),
			want:  []string{cpu + "cpuN/topology/core_cpus_list and thread_siblings_list missing for cpus 0-7: grouped CPUs into cores by package and core_id"},
		},
		{
			name:  "only thread_siblings_list",
			files: without(smallFiles(), cpu+"cpu*/topology/core_cpus_list"),
			want:  nil,
		},
		{
			name:  "no caches",
			files: without(smallFiles(), cpu+"cpu*/cache/"),
			want:  []string{cpu + "cpuN/cache missing for cpus 0-7: assumed one LLC per package"},
			check: func(t *testing.T, topo *Topology) {
				if len(topo.LLCs) != 1 || topo.LLCs[0].Level != 0 || topo.LLCs[0].KernelID != 0 || topo.LLCs[0].CPUs.String() != "0-7" {
					t.Errorf("LLCs: %+v", topo.LLCs[0])
				}
				// Clusters fall back to cluster_cpus_list.
				if len(topo.Clusters) != 2 {
					t.Errorf("%d clusters, want 2", len(topo.Clusters))
				}
			},
		},
		{
			name:  "no cache ids",
			files: without(smallFiles(), cpu+"cpu*/cache/index*/id"),
			want:  []string{cpu + "cpuN/cache/index3/id missing for cpus 0-7: derived LLC ids from the lowest CPU in shared_cpu_list"},
			check: func(t *testing.T, topo *Topology) {
				if topo.LLCs[0].KernelID != 0 || topo.LLCs[1].KernelID != 4 {
					t.Errorf("LLC kernel ids %d %d, want 0 4", topo.LLCs[0].KernelID, topo.LLCs[1].KernelID)
				}
			},
		},
		{
			name:  "no shared_cpu_list",
			files: without(smallFiles(), cpu+"cpu*/cache/index*/shared_cpu_list"),
			want: []string{
				cpu + "cpuN/cache/index2/shared_cpu_list missing for cpus 0-7: assumed the cache is private",
				cpu + "cpuN/cache/index3/shared_cpu_list missing for cpus 0-7: assumed the cache is private",
			},
			check: func(t *testing.T, topo *Topology) {
				if len(topo.LLCs) != 4 || len(topo.Clusters) != 4 {
					t.Errorf("%d LLCs and %d clusters, want one per core (4)", len(topo.LLCs), len(topo.Clusters))
				}
			},
		},
		{
			name:  "no node directory",
			files: without(smallFiles(), node),
			want:  []string{"sys/devices/system/node has no nodeN directories: assumed one node 0 with all CPUs"},
			check: func(t *testing.T, topo *Topology) {
				if len(topo.Nodes) != 1 || topo.Nodes[0].Distances != nil || topo.Nodes[0].CPUs.String() != "0-7" {
					t.Errorf("nodes: %+v", topo.Nodes[0])
				}
			},
		},
		{
			name:  "CPUs in no node",
			files: with(smallFiles(), node+"node1/cpulist", "6-7\n"),
			want:  []string{"cpus 4-5 are in no sys/devices/system/node/nodeN/cpulist: assumed node 0"},
			check: func(t *testing.T, topo *Topology) {
				if got := topo.Nodes[0].CPUs.String(); got != "0-5" {
					t.Errorf("node 0 CPUs %s, want 0-5", got)
				}
			},
		},
		{
			name:  "no node distance or online",
			files: without(smallFiles(), node+"node1/distance", node+"online"),
			want:  []string{node + "online missing: took nodes 0-1 from nodeN directories"},
			check: func(t *testing.T, topo *Topology) {
				if topo.Nodes[0].Distances == nil || topo.Nodes[1].Distances != nil {
					t.Errorf("distances %v %v, want [10 32] nil", topo.Nodes[0].Distances, topo.Nodes[1].Distances)
				}
			},
		},
		{
			name:  "no capacity files",
			files: without(smallFiles(), cpu+"cpu*/cpu_capacity", cpu+"cpu*/cpufreq/"),
			want:  []string{uniform},
			check: func(t *testing.T, topo *Topology) {
				for _, c := range topo.CPUs {
					if c.Capacity != 1024 || c.CapacitySource != "uniform" || c.MaxFreqKHz != 0 || c.MinFreqKHz != 0 || c.BaseFreqKHz != 0 {
						t.Errorf("cpu %d: %+v", c.KernelID, *c)
					}
				}
				for _, c := range topo.Cores {
					if c.Type != CoreBig {
						t.Errorf("core %d: type %v, want big", c.ID, c.Type)
					}
				}
			},
		},
		{
			name:  "capacity on some CPUs only",
			files: without(smallFiles(), cpu+"cpu5/cpu_capacity"),
			want:  []string{cpu + "cpuN/cpu_capacity missing or 0 for cpus 5: not used for capacities"},
			check: func(t *testing.T, topo *Topology) {
				c, _ := topo.CPU(2)
				if c.CapacitySource != "cpufreq" || c.Capacity != 683 {
					t.Errorf("cpu 2: source %s capacity %d, want cpufreq 683 (2 GHz of 3)", c.CapacitySource, c.Capacity)
				}
			},
		},
		{
			name:  "scaling frequencies",
			files: with(without(smallFiles(), cpu+"cpu*/cpufreq/cpuinfo_*", cpu+"cpu*/cpufreq/base_frequency"), cpu+"cpu0/cpufreq/scaling_min_freq", "400000\n", cpu+"cpu0/cpufreq/scaling_max_freq", "4000000\n", cpu+"cpu0/acpi_cppc/nominal_freq", "2100\n"),
			check: func(t *testing.T, topo *Topology) {
				if c := topo.CPUs[0]; c.MinFreqKHz != 400000 || c.MaxFreqKHz != 4000000 || c.BaseFreqKHz != 2100000 {
					t.Errorf("cpu 0 frequencies %d %d %d", c.MinFreqKHz, c.MaxFreqKHz, c.BaseFreqKHz)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			topo, err := discoverFS(mapFS(tt.files))
			if err != nil {
				t.Fatal(err)
			}
			if err := checkTopology(topo); err != nil {
				t.Errorf("invariant: %v", err)
			}
			if diff := cmp.Diff(tt.want, topo.Assumed, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Assumed (-want +got):\n%s", diff)
			}
			if tt.check != nil {
				tt.check(t, topo)
			}
		})
	}
}

func TestDiscoverCapacitySources(t *testing.T) {
	const cpu = "sys/devices/system/cpu/"
	base := without(smallFiles(), cpu+"cpu*/cpu_capacity")
	perCPU := func(file string, vals ...int) []string {
		var kv []string
		for c, v := range vals {
			kv = append(kv, fmt.Sprintf("%scpu%d/%s", cpu, c, file), fmt.Sprintln(v))
		}
		return kv
	}
	tests := []struct {
		name   string
		files  map[string]string
		source string
		caps   []int // per CPU
		types  []CoreType
	}{
		{
			name:   "cpu_capacity beats the others",
			files:  with(with(base, perCPU("cpu_capacity", 1024, 1024, 300, 300, 1024, 1024, 300, 300)...), perCPU("acpi_cppc/highest_perf", 1, 1, 1, 1, 1, 1, 1, 1)...),
			source: "cpu_capacity",
			caps:   []int{1024, 1024, 300, 300, 1024, 1024, 300, 300},
			types:  []CoreType{CoreBig, CoreLittle, CoreBig, CoreLittle},
		},
		{
			name:   "acpi_cppc scaled",
			files:  with(base, perCPU("acpi_cppc/highest_perf", 64, 64, 40, 40, 64, 64, 40, 40)...),
			source: "acpi_cppc",
			caps:   []int{1024, 1024, 640, 640, 1024, 1024, 640, 640},
			types:  []CoreType{CoreBig, CoreLittle, CoreBig, CoreLittle},
		},
		{
			name:   "amd-pstate ranking spread is one level",
			files:  with(base, perCPU("cpufreq/amd_pstate_prefcore_ranking", 236, 236, 231, 231, 216, 216, 211, 211)...),
			source: "amd_pstate_prefcore",
			caps:   []int{1024, 1024, 1002, 1002, 937, 937, 916, 916},
			types:  []CoreType{CoreBig, CoreBig, CoreBig, CoreBig},
		},
		{
			name:   "three levels: turbo, big, little",
			files:  with(base, perCPU("acpi_cppc/highest_perf", 300, 300, 230, 230, 230, 230, 100, 100)...),
			source: "acpi_cppc",
			caps:   []int{1024, 1024, 785, 785, 785, 785, 341, 341},
			types:  []CoreType{CoreTurbo, CoreBig, CoreBig, CoreLittle},
		},
		{
			name:   "three levels, top not a minority: big and little",
			files:  with(base, perCPU("acpi_cppc/highest_perf", 300, 300, 300, 300, 230, 230, 100, 100)...),
			source: "acpi_cppc",
			caps:   []int{1024, 1024, 1024, 1024, 785, 785, 341, 341},
			types:  []CoreType{CoreBig, CoreBig, CoreLittle, CoreLittle},
		},
		{
			name:   "capacity 0 is missing",
			files:  with(base, perCPU("acpi_cppc/highest_perf", 64, 64, 0, 40, 64, 64, 40, 40)...),
			source: "cpufreq",
			caps:   []int{1024, 1024, 683, 683, 1024, 1024, 683, 683},
			types:  []CoreType{CoreBig, CoreLittle, CoreBig, CoreLittle},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			topo, err := discoverFS(mapFS(tt.files))
			if err != nil {
				t.Fatal(err)
			}
			if err := checkTopology(topo); err != nil {
				t.Errorf("invariant: %v", err)
			}
			var caps []int
			for _, c := range topo.CPUs {
				caps = append(caps, c.Capacity)
				if c.CapacitySource != tt.source {
					t.Errorf("cpu %d: source %q, want %q", c.KernelID, c.CapacitySource, tt.source)
				}
			}
			if diff := cmp.Diff(tt.caps, caps); diff != "" {
				t.Errorf("capacities (-want +got):\n%s", diff)
			}
			var types []CoreType
			for _, c := range topo.Cores {
				types = append(types, c.Type)
			}
			if diff := cmp.Diff(tt.types, types); diff != "" {
				t.Errorf("core types (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDiscoverErrors(t *testing.T) {
	const cpu = "sys/devices/system/cpu/"
	const node = "sys/devices/system/node/"
	tests := []struct {
		name  string
		fsys  fs.FS
		want  []string // substrings of the error
		isErr error
	}{
		{"no sysfs", fstest.MapFS{}, []string{"topology: discover: sys/devices/system/cpu: file does not exist: sysfs is not mounted"}, fs.ErrNotExist},
		{"no CPU online", mapFS(with(smallFiles(), cpu+"online", "\n")), []string{cpu + "online: no CPU is online"}, nil},
		{"no CPU derivable", mapFS(without(smallFiles(), cpu+"online", cpu+"cpu*/topology/")), []string{"no CPU is online"}, nil},
		{"bad online", mapFS(with(smallFiles(), cpu+"online", "0-x\n")), []string{cpu + `online: malformed cpulist "0-x": token "0-x"`}, nil},
		{"bad cpuN/online", mapFS(with(without(smallFiles(), cpu+"online"), cpu+"cpu3/online", "yes\n")), []string{cpu + `cpu3/online: malformed flag "yes"`}, nil},
		{"bad package id", mapFS(with(smallFiles(), cpu+"cpu2/topology/physical_package_id", "one\n")), []string{cpu + `cpu2/topology/physical_package_id: malformed number "one"`}, nil},
		{"bad siblings", mapFS(with(smallFiles(), cpu+"cpu2/topology/core_cpus_list", "2,\n")), []string{cpu + `cpu2/topology/core_cpus_list: malformed cpulist "2,": token ""`}, nil},
		{"bad cache size", mapFS(with(smallFiles(), cpu+"cpu1/cache/index3/size", "32Q\n")), []string{cpu + `cpu1/cache/index3/size: malformed cache size "32Q"`}, nil},
		{"bad cache level", mapFS(with(smallFiles(), cpu+"cpu1/cache/index2/level", "-2\n")), []string{cpu + `cpu1/cache/index2/level: malformed number "-2"`}, nil},
		{"bad capacity", mapFS(with(smallFiles(), cpu+"cpu7/cpu_capacity", "1024.5\n")), []string{cpu + `cpu7/cpu_capacity: malformed number "1024.5"`}, nil},
		{"huge capacity", mapFS(with(smallFiles(), cpu+"cpu7/cpu_capacity", "99999999999999999\n")), []string{cpu + `cpu7/cpu_capacity: malformed number`}, nil},
		{"bad frequency", mapFS(with(smallFiles(), cpu+"cpu7/cpufreq/cpuinfo_max_freq", "3 GHz\n")), []string{cpu + `cpu7/cpufreq/cpuinfo_max_freq: malformed number "3 GHz"`}, nil},
		{"bad node cpulist", mapFS(with(smallFiles(), node+"node1/cpulist", "4-\n")), []string{node + `node1/cpulist: malformed cpulist "4-"`}, nil},
		{"CPU in two nodes", mapFS(with(smallFiles(), node+"node1/cpulist", "3-7\n")), []string{node + "node1/cpulist: cpu 3 is also in " + node + "node0/cpulist"}, nil},
		{"bad distance", mapFS(with(smallFiles(), node+"node1/distance", "32 ten\n")), []string{node + `node1/distance: malformed distance "ten"`}, nil},
		{"distance count", mapFS(with(smallFiles(), node+"node0/distance", "10\n")), []string{node + `node0/distance: 1 distances "10" for the 2 nodes of ` + node + "online"}, nil},
		{"too large", mapFS(with(smallFiles(), cpu+"online", strings.Repeat("0,", maxFileSize))), []string{cpu + "online: larger than"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			topo, err := discoverFS(tt.fsys)
			if err == nil {
				t.Fatalf("Discover succeeded:\n%v", topo)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if !strings.HasPrefix(err.Error(), "topology: discover: ") {
				t.Errorf("error %q lacks the prefix", err)
			}
			if tt.isErr != nil && !errors.Is(err, tt.isErr) {
				t.Errorf("error %q does not wrap %v", err, tt.isErr)
			}
		})
	}
}

// errFS wraps an FS and fails reads of the files in fail.
type errFS struct {
	fs.FS
	fail map[string]error
}

func (e errFS) Open(name string) (fs.File, error) {
	if err, ok := e.fail[name]; ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return e.FS.Open(name)
}

func TestDiscoverUnreadable(t *testing.T) {
	const cpu = "sys/devices/system/cpu/"
	eio := errors.New("input/output error")
	fail := map[string]error{}
	for c := range 8 {
		fail[fmt.Sprintf("%scpu%d/cpu_capacity", cpu, c)] = eio
	}
	fail[cpu+"online"] = eio
	topo, err := discoverFS(errFS{mapFS(smallFiles()), fail})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		cpu + "online unreadable (input/output error): ignored",
		cpu + "online missing: derived 0-7 from cpuN/online and cpuN/topology",
		cpu + "cpuN/cpu_capacity unreadable for cpus 0 (input/output error): ignored",
	}
	if diff := cmp.Diff(want, topo.Assumed); diff != "" {
		t.Errorf("Assumed (-want +got):\n%s", diff)
	}
	if topo.CPUs[0].CapacitySource != "cpufreq" {
		t.Errorf("capacity source %q, want cpufreq", topo.CPUs[0].CapacitySource)
	}
}

func TestTopologyString(t *testing.T) {
	topo, err := discoverFS(mapFS(smallFiles()))
	if err != nil {
		t.Fatal(err)
	}
	want := `cpus: possible 0-7, present 0-7, online 0-7
capacity source: cpu_capacity
package 0 [0] cpus 0-7
  node 0 [0] cpus 0-3 distances [10 12]
    llc 0 [0] L3 32768K cpus 0-3
      core 0 [0] big capacity 1024 cluster 0 cpus 0-1
      core 1 [1] little capacity 512 cluster 0 cpus 2-3
  node 1 [1] cpus 4-7 distances [12 10]
    llc 1 [1] L3 32768K cpus 4-7
      core 2 [2] big capacity 1024 cluster 1 cpus 4-5
      core 3 [3] little capacity 512 cluster 1 cpus 6-7
`
	if diff := cmp.Diff(want, topo.String()); diff != "" {
		t.Errorf("String (-want +got):\n%s", diff)
	}
	split := topo.SplitLLCs(1).String()
	if !strings.Contains(split, "    llc 1 [0] L3 32768K virtual cpus 2-3\n") {
		t.Errorf("SplitLLCs(1).String() lacks virtual LLC 1:\n%s", split)
	}
}

// fuzzFiles is the machine FuzzDiscover mutates, and fuzzPaths its files in
// a fixed order.
var fuzzFiles = smallFiles()

func fuzzPaths() []string {
	var ps []string
	for p := range fuzzFiles {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

func FuzzDiscover(f *testing.F) {
	paths := fuzzPaths()
	seed := func(file, content string, remove bool) {
		i := slices.Index(paths, file)
		if i < 0 {
			f.Fatalf("no file %s", file)
		}
		f.Add(uint16(i), content, remove)
	}
	const cpu = "sys/devices/system/cpu/"
	const node = "sys/devices/system/node/"
	seed(cpu+"online", "0-3\n", false)
	seed(cpu+"online", "", false)
	seed(cpu+"online", "0-4095", false)
	seed(cpu+"online", "", true)
	seed(cpu+"cpu0/topology/core_cpus_list", "0-7", false)
	seed(cpu+"cpu5/topology/physical_package_id", "-1", false)
	seed(cpu+"cpu3/topology/core_id", "x", false)
	seed(cpu+"cpu2/cache/index3/shared_cpu_list", "0-1,6", false)
	seed(cpu+"cpu2/cache/index3/level", "9", false)
	seed(cpu+"cpu2/cache/index2/type", "Instruction", false)
	seed(cpu+"cpu2/cache/index3/size", "1G", false)
	seed(cpu+"cpu1/cpu_capacity", "0", false)
	seed(cpu+"cpu1/cpu_capacity", "2048", false)
	seed(cpu+"cpu1/cpufreq/cpuinfo_max_freq", "", true)
	seed(node+"node0/cpulist", "0-7", false)
	seed(node+"node1/distance", "1 2 3", false)
	seed(node+"online", "1", false)
	f.Fuzz(func(t *testing.T, idx uint16, content string, remove bool) {
		file := paths[int(idx)%len(paths)]
		files := with(fuzzFiles)
		if remove {
			delete(files, file)
		} else {
			files[file] = content
		}
		topo, err := discoverFS(mapFS(files))
		if err != nil {
			if remove {
				t.Fatalf("without %s: %v", file, err)
			}
			if !strings.Contains(err.Error(), file) {
				t.Fatalf("%s = %q: error %q does not name the file", file, content, err)
			}
			return
		}
		if err := checkTopology(topo); err != nil {
			t.Fatalf("%s = %q: invariant: %v\n%v", file, content, err, topo)
		}
		for _, k := range []int{1, 2} {
			if err := checkTopology(topo.SplitLLCs(k)); err != nil {
				t.Fatalf("%s = %q: SplitLLCs(%d): invariant: %v", file, content, k, err)
			}
		}
		_ = topo.String()
	})
}

// benchShape is a 512-CPU, 8-node machine.
var benchShape = shape{Packages: 2, NodesPerPackage: 4, LLCsPerNode: 2, CoresPerLLC: 16, SMT: 2, SplitSMT: true}

func BenchmarkDiscover(b *testing.B) {
	files := benchShape.files()
	b.Run("dir", func(b *testing.B) {
		dir := b.TempDir()
		if err := writeTree(dir, files); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Discover(&Options{Root: dir}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("memfs", func(b *testing.B) {
		fsys := newIndexedFS(files)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Discover(&Options{FS: fsys}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
