package topology

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/scxkit/scxkit/internal/sysfstest"
)

// Fixtures are unpacked once per test binary, on first use, under
// fixtureDir; TestMain removes it.
var (
	fixtureMu   sync.Mutex
	fixtureDir  string
	fixtureRoot = map[string]string{} // name -> unpacked root
)

func TestMain(m *testing.M) {
	code := m.Run()
	if fixtureDir != "" {
		os.RemoveAll(fixtureDir)
	}
	os.Exit(code)
}

// fixture returns the root of the unpacked snapshot testdata/name.tar.gz.
func fixture(t testing.TB, name string) string {
	t.Helper()
	fixtureMu.Lock()
	defer fixtureMu.Unlock()
	if root, ok := fixtureRoot[name]; ok {
		return root
	}
	if fixtureDir == "" {
		dir, err := os.MkdirTemp("", "topology-fixtures-")
		if err != nil {
			t.Fatal(err)
		}
		fixtureDir = dir
	}
	root := filepath.Join(fixtureDir, name)
	if err := sysfstest.UnpackTo(sysfstest.Archive(t, name), root); err != nil {
		t.Fatalf("unpack %s: %v", name, err)
	}
	fixtureRoot[name] = root
	return root
}

// mask parses a cpulist, for expected values.
func mask(s string) Cpumask {
	m, err := ParseCPUList(s)
	if err != nil {
		panic(err)
	}
	return m
}

// derivedNotes are the notes for a snapshot without cpu/possible, present
// and online, whose CPUs are all.
func derivedNotes(all string) []string {
	return []string{
		"sys/devices/system/cpu/possible missing: derived " + all + " from cpuN directories",
		"sys/devices/system/cpu/present missing: derived " + all + " from cpuN directories",
		"sys/devices/system/cpu/online missing: derived " + all + " from cpuN/online and cpuN/topology",
	}
}

const uniformNote = "no capacity file on every CPU (cpu_capacity, acpi_cppc/highest_perf, cpufreq/amd_pstate_prefcore_ranking, cpufreq/cpuinfo_max_freq): assumed uniform capacity 1024"

// The expected topologies below are written from what testdata/README.md
// says of each machine, not from Discover's output. No snapshot has
// cpufreq or capacity files, so every CPU has capacity 1024 from the
// "uniform" source and no frequencies, and nothing needs ignoring.

// wantRyzen is the Ryzen 5 1600: 6 cores x 2 SMT (siblings n, n+6) in two
// CCXs of 3 cores, each with its own L3; core ids 0-2 and 4-6.
func wantRyzen() *Topology {
	t := &Topology{
		Possible: mask("0-11"), Present: mask("0-11"), Online: mask("0-11"),
		Assumed:     append(derivedNotes("0-11"), uniformNote),
		Packages:    []*Package{{ID: 0, KernelID: 0, CPUs: mask("0-11"), Nodes: []int{0}}},
		Nodes:       []*Node{{ID: 0, KernelID: 0, CPUs: mask("0-11"), Distances: []int{10}, LLCs: []int{0, 1}}},
		MaxCapacity: 1024,
		LLCs: []*LLC{
			{ID: 0, KernelID: 0, Level: 3, CPUs: mask("0-2,6-8"), Cores: []int{0, 1, 2}, SizeKiB: 8192},
			{ID: 1, KernelID: 1, Level: 3, CPUs: mask("3-5,9-11"), Cores: []int{3, 4, 5}, SizeKiB: 8192},
		},
	}
	coreIDs := []int{0, 1, 2, 4, 5, 6}
	for i := range 6 {
		cpus := MaskOf(i, i+6)
		t.Clusters = append(t.Clusters, &Cluster{ID: i, CPUs: cpus, LLC: i / 3, SizeKiB: 512})
		t.Cores = append(t.Cores, &Core{ID: i, KernelID: coreIDs[i], LLC: i / 3, Cluster: i, CPUs: cpus, Type: CoreBig, Capacity: 1024})
	}
	for c := range 12 {
		t.CPUs = append(t.CPUs, &CPU{ID: c, KernelID: c, Core: c % 6, LLC: c % 6 / 3, Cluster: c % 6,
			Capacity: 1024, CapacitySource: "uniform", L1dKiB: 32, L2KiB: 512, L3KiB: 8192})
	}
	return t
}

// wantXeon is the two Xeon L5640s: even CPUs on package 1 and node 0, odd
// CPUs on package 0 and node 1, siblings n and n+12, core ids 0-2 and 8-10,
// one L3 per package (cache id 1 on package 1). Dense ids follow the lowest
// CPU, so dense package 0 is kernel package 1.
func wantXeon() *Topology {
	even, odd := mask("0-23:1/2"), mask("1-23:1/2")
	t := &Topology{
		Possible: mask("0-23"), Present: mask("0-23"), Online: mask("0-23"),
		Assumed: append(derivedNotes("0-23"), uniformNote),
		Packages: []*Package{
			{ID: 0, KernelID: 1, CPUs: even, Nodes: []int{0}},
			{ID: 1, KernelID: 0, CPUs: odd, Nodes: []int{1}},
		},
		Nodes: []*Node{
			{ID: 0, KernelID: 0, CPUs: even, Distances: []int{10, 20}, LLCs: []int{0}},
			{ID: 1, KernelID: 1, CPUs: odd, Distances: []int{20, 10}, LLCs: []int{1}},
		},
		LLCs: []*LLC{
			{ID: 0, KernelID: 1, Level: 3, Node: 0, Package: 0, CPUs: even, Cores: []int{0, 2, 4, 6, 8, 10}, SizeKiB: 12288},
			{ID: 1, KernelID: 0, Level: 3, Node: 1, Package: 1, CPUs: odd, Cores: []int{1, 3, 5, 7, 9, 11}, SizeKiB: 12288},
		},
		MaxCapacity: 1024,
	}
	coreIDs := []int{0, 1, 2, 8, 9, 10}
	for d := range 12 {
		cpus := MaskOf(d, d+12)
		s := d % 2 // dense package, node and LLC
		t.Clusters = append(t.Clusters, &Cluster{ID: d, CPUs: cpus, LLC: s, SizeKiB: 256})
		t.Cores = append(t.Cores, &Core{ID: d, KernelID: coreIDs[d/2], Package: s, Node: s, LLC: s, Cluster: d, CPUs: cpus, Type: CoreBig, Capacity: 1024})
	}
	for c := range 24 {
		s := c % 2
		t.CPUs = append(t.CPUs, &CPU{ID: c, KernelID: c, Core: c % 12, LLC: s, Node: s, Package: s, Cluster: c % 12,
			Capacity: 1024, CapacitySource: "uniform", L1dKiB: 32, L2KiB: 256, L3KiB: 12288})
	}
	return t
}

// wantHybrid is the i7-1270P: P-cores 0-1, 2-3, 4-5, 6-7 (core ids 0, 4, 8,
// 12) with private L2s, E-cores 8-15 (core ids 16-23) in L2 clusters 8-11
// and 12-15, one L3. With no capacity files, the E-cores are typed little
// from the SMT and L2 layout.
func wantHybrid() *Topology {
	t := &Topology{
		Possible: mask("0-15"), Present: mask("0-15"), Online: mask("0-15"),
		Assumed: append(derivedNotes("0-15"), uniformNote,
			"cores have alike capacities, but those with SMT have a private L2 and those without share one: assumed a hybrid CPU whose cores of cpus 8-15 are little"),
		Packages:    []*Package{{ID: 0, KernelID: 0, CPUs: mask("0-15"), Nodes: []int{0}}},
		Nodes:       []*Node{{ID: 0, KernelID: 0, CPUs: mask("0-15"), Distances: []int{10}, LLCs: []int{0}}},
		LLCs:        []*LLC{{ID: 0, KernelID: 0, Level: 3, CPUs: mask("0-15"), Cores: seq(0, 11), SizeKiB: 18432}},
		MaxCapacity: 1024,
	}
	for i := range 4 {
		cpus := MaskOf(2*i, 2*i+1)
		t.Clusters = append(t.Clusters, &Cluster{ID: i, CPUs: cpus, SizeKiB: 1280})
		t.Cores = append(t.Cores, &Core{ID: i, KernelID: 4 * i, Cluster: i, CPUs: cpus, Type: CoreBig, Capacity: 1024})
	}
	t.Clusters = append(t.Clusters,
		&Cluster{ID: 4, CPUs: mask("8-11"), SizeKiB: 2048},
		&Cluster{ID: 5, CPUs: mask("12-15"), SizeKiB: 2048})
	for j := range 8 {
		t.Cores = append(t.Cores, &Core{ID: 4 + j, KernelID: 16 + j, Cluster: 4 + j/4, CPUs: MaskOf(8 + j), Type: CoreLittle, Capacity: 1024})
	}
	for c := range 16 {
		cpu := &CPU{ID: c, KernelID: c, Capacity: 1024, CapacitySource: "uniform", L3KiB: 18432}
		if c < 8 {
			cpu.Core, cpu.Cluster, cpu.L1dKiB, cpu.L2KiB = c/2, c/2, 48, 1280
		} else {
			cpu.Core, cpu.Cluster, cpu.L1dKiB, cpu.L2KiB = 4+c-8, 4+(c-8)/4, 32, 2048
		}
		t.CPUs = append(t.CPUs, cpu)
	}
	return t
}

// wantOffline is the VM with CPUs 0-1 online (on packages 0 and 1, each with
// its own L3) and 2-3 offline. It has cpu/online, possible and present.
func wantOffline() *Topology {
	return &Topology{
		Possible: mask("0-3"), Present: mask("0-3"), Online: mask("0-1"),
		Assumed: []string{uniformNote},
		Packages: []*Package{
			{ID: 0, KernelID: 0, CPUs: MaskOf(0), Nodes: []int{0}},
			{ID: 1, KernelID: 1, CPUs: MaskOf(1), Nodes: []int{0}},
		},
		Nodes: []*Node{{ID: 0, KernelID: 0, CPUs: mask("0-1"), Distances: []int{10}, LLCs: []int{0, 1}}},
		LLCs: []*LLC{
			{ID: 0, KernelID: 0, Level: 3, Package: 0, CPUs: MaskOf(0), Cores: []int{0}, SizeKiB: 16384},
			{ID: 1, KernelID: 1, Level: 3, Package: 1, CPUs: MaskOf(1), Cores: []int{1}, SizeKiB: 16384},
		},
		Clusters: []*Cluster{
			{ID: 0, CPUs: MaskOf(0), LLC: 0, SizeKiB: 4096},
			{ID: 1, CPUs: MaskOf(1), LLC: 1, SizeKiB: 4096},
		},
		Cores: []*Core{
			{ID: 0, KernelID: 0, Package: 0, LLC: 0, Cluster: 0, CPUs: MaskOf(0), Type: CoreBig, Capacity: 1024},
			{ID: 1, KernelID: 0, Package: 1, LLC: 1, Cluster: 1, CPUs: MaskOf(1), Type: CoreBig, Capacity: 1024},
		},
		CPUs: []*CPU{
			{ID: 0, KernelID: 0, Core: 0, LLC: 0, Package: 0, Cluster: 0, Capacity: 1024, CapacitySource: "uniform", L1dKiB: 32, L2KiB: 4096, L3KiB: 16384},
			{ID: 1, KernelID: 1, Core: 1, LLC: 1, Package: 1, Cluster: 1, Capacity: 1024, CapacitySource: "uniform", L1dKiB: 32, L2KiB: 4096, L3KiB: 16384},
		},
		MaxCapacity: 1024,
	}
}

// wantArm is the single arm64 CPU on package 60, whose caches have no ids.
func wantArm() *Topology {
	return &Topology{
		Possible: MaskOf(0), Present: MaskOf(0), Online: MaskOf(0),
		Assumed: append(derivedNotes("0"),
			"sys/devices/system/cpu/cpuN/cache/index3/id missing for cpus 0: derived LLC ids from the lowest CPU in shared_cpu_list",
			uniformNote),
		Packages:    []*Package{{ID: 0, KernelID: 60, CPUs: MaskOf(0), Nodes: []int{0}}},
		Nodes:       []*Node{{ID: 0, KernelID: 0, CPUs: MaskOf(0), Distances: []int{10}, LLCs: []int{0}}},
		LLCs:        []*LLC{{ID: 0, KernelID: 0, Level: 3, CPUs: MaskOf(0), Cores: []int{0}, SizeKiB: 32768}},
		Clusters:    []*Cluster{{ID: 0, CPUs: MaskOf(0), SizeKiB: 1024}},
		Cores:       []*Core{{ID: 0, KernelID: 0, CPUs: MaskOf(0), Type: CoreBig, Capacity: 1024}},
		CPUs:        []*CPU{{ID: 0, KernelID: 0, Capacity: 1024, CapacitySource: "uniform", L1dKiB: 64, L2KiB: 1024, L3KiB: 32768}},
		MaxCapacity: 1024,
	}
}

// wantS390x is the s390x: 4 cores x 2 SMT (siblings n, n+1) on package 2,
// no L3: the LLC is the L2 shared by all, which is also the one cluster.
func wantS390x() *Topology {
	t := &Topology{
		Possible: mask("0-7"), Present: mask("0-7"), Online: mask("0-7"),
		Assumed: append(derivedNotes("0-7"),
			"sys/devices/system/cpu/cpuN/cache/index2/id missing for cpus 0-7: derived LLC ids from the lowest CPU in shared_cpu_list",
			uniformNote),
		Packages:    []*Package{{ID: 0, KernelID: 2, CPUs: mask("0-7"), Nodes: []int{0}}},
		Nodes:       []*Node{{ID: 0, KernelID: 0, CPUs: mask("0-7"), Distances: []int{10}, LLCs: []int{0}}},
		LLCs:        []*LLC{{ID: 0, KernelID: 0, Level: 2, CPUs: mask("0-7"), Cores: []int{0, 1, 2, 3}, SizeKiB: 32768}},
		Clusters:    []*Cluster{{ID: 0, CPUs: mask("0-7"), SizeKiB: 32768}},
		MaxCapacity: 1024,
	}
	for i := range 4 {
		t.Cores = append(t.Cores, &Core{ID: i, KernelID: i, CPUs: MaskOf(2*i, 2*i+1), Type: CoreBig, Capacity: 1024})
	}
	for c := range 8 {
		t.CPUs = append(t.CPUs, &CPU{ID: c, KernelID: c, Core: c / 2, Capacity: 1024, CapacitySource: "uniform", L1dKiB: 128, L2KiB: 32768})
	}
	return t
}

var fixtures = []struct {
	name string
	want func() *Topology
}{
	{"amd64-12cpu-2llc-smt", wantRyzen},
	{"amd64-24cpu-2socket-2node-smt", wantXeon},
	{"amd64-hybrid-4p8e-16cpu", wantHybrid},
	{"amd64-offline-cpus", wantOffline},
	{"arm64-1cpu", wantArm},
	{"s390x-8cpu-smt", wantS390x},
}

func TestDiscoverFixtures(t *testing.T) {
	for _, f := range fixtures {
		t.Run(f.name, func(t *testing.T) {
			root := fixture(t, f.name)
			got, err := Discover(&Options{Root: root})
			if err != nil {
				t.Fatal(err)
			}
			if err := checkTopology(got); err != nil {
				t.Errorf("invariant: %v", err)
			}
			if diff := cmp.Diff(f.want(), got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Discover (-want +got):\n%s", diff)
			}
			viaFS, err := Discover(&Options{FS: os.DirFS(root), Root: "/nonexistent"})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, viaFS, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Options.FS differs from Options.Root (-Root +FS):\n%s", diff)
			}
			for k := 1; k <= 8; k++ {
				if err := checkTopology(got.SplitLLCs(k)); err != nil {
					t.Errorf("SplitLLCs(%d): invariant: %v", k, err)
				}
			}
		})
	}
}

// TestSplitLLCsXeon splits the Xeon's two 6-core LLCs in halves. Dense LLC
// ids follow the lowest CPU, and CPUs are interleaved between the
// packages, so the halves interleave too: 0 and 2 on package 0, 1 and 3 on
// package 1.
func TestSplitLLCsXeon(t *testing.T) {
	got, err := Discover(&Options{Root: fixture(t, "amd64-24cpu-2socket-2node-smt"), LLCCores: 3})
	if err != nil {
		t.Fatal(err)
	}
	want := wantXeon()
	want.LLCs = []*LLC{
		{ID: 0, KernelID: 1, Level: 3, Node: 0, Package: 0, CPUs: mask("0,2,4,12,14,16"), Cores: []int{0, 2, 4}, SizeKiB: 12288, Virtual: true},
		{ID: 1, KernelID: 0, Level: 3, Node: 1, Package: 1, CPUs: mask("1,3,5,13,15,17"), Cores: []int{1, 3, 5}, SizeKiB: 12288, Virtual: true},
		{ID: 2, KernelID: 1, Level: 3, Node: 0, Package: 0, CPUs: mask("6,8,10,18,20,22"), Cores: []int{6, 8, 10}, SizeKiB: 12288, Virtual: true},
		{ID: 3, KernelID: 0, Level: 3, Node: 1, Package: 1, CPUs: mask("7,9,11,19,21,23"), Cores: []int{7, 9, 11}, SizeKiB: 12288, Virtual: true},
	}
	want.Nodes[0].LLCs = []int{0, 2}
	want.Nodes[1].LLCs = []int{1, 3}
	llcOf := func(core int) int { return 2*(core/6) + core%2 }
	for _, c := range want.Cores {
		c.LLC = llcOf(c.ID)
	}
	for _, c := range want.Clusters {
		c.LLC = llcOf(c.ID)
	}
	for _, c := range want.CPUs {
		c.LLC = llcOf(c.Core)
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Discover with LLCCores 3 (-want +got):\n%s", diff)
	}
	if err := checkTopology(got); err != nil {
		t.Errorf("invariant: %v", err)
	}
}

// TestSplitLLCsHybrid splits the hybrid's 12-core L3 into 5-core parts:
// three parts of 4 cores, the second cutting no cluster in two.
func TestSplitLLCsHybrid(t *testing.T) {
	topo, err := Discover(&Options{Root: fixture(t, "amd64-hybrid-4p8e-16cpu")})
	if err != nil {
		t.Fatal(err)
	}
	got := topo.SplitLLCs(5)
	var parts []string
	for _, l := range got.LLCs {
		parts = append(parts, fmt.Sprintf("%d:%v:%v:%t", l.ID, l.CPUs, l.Cores, l.Virtual))
	}
	want := []string{"0:0-7:[0 1 2 3]:true", "1:8-11:[4 5 6 7]:true", "2:12-15:[8 9 10 11]:true"}
	if diff := cmp.Diff(want, parts); diff != "" {
		t.Errorf("SplitLLCs(5) LLCs (-want +got):\n%s", diff)
	}
	if got.Clusters[5].LLC != 2 || got.CPUs[15].LLC != 2 || got.Cores[11].LLC != 2 {
		t.Errorf("cluster 5, cpu 15 and core 11 are not in LLC 2")
	}
	if len(topo.LLCs) != 1 || topo.LLCs[0].Virtual {
		t.Errorf("SplitLLCs changed its receiver")
	}
}
