package energy_test

// The fixture generator: it turns the device-tree numbers in
// testdata/dt/*.dt into the debugfs tree the kernel would show
// (testdata/*.debugfs.txtar), computing every value with math/big the way
// the kernel does in integer arithmetic, independently of FromOPP. Run
//
//	go test ./energy -run TestFixtures -update
//
// to regenerate the archives after editing a .dt file.

import (
	"bufio"
	"flag"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"

	"github.com/scxkit/scxkit/energy"
	"github.com/scxkit/scxkit/topology"
)

var update = flag.Bool("update", false, "regenerate testdata/*.debugfs.txtar from testdata/dt/*.dt")

// socs are the fixtures, by the base name of their files.
var socs = []string{"rk3399", "hi3660"}

type dtDomain struct {
	name, cpus   string
	coeff, dmips int64
	opps         [][2]int64 // Hz, µV
}

// parseDT reads a testdata/dt file.
func parseDT(t testing.TB, soc string) []dtDomain {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "dt", soc+".dt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ds []dtDomain
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		bad := func() { t.Fatalf("%s.dt:%d: malformed line %q", soc, line, sc.Text()) }
		num := func(s string) int64 {
			v, err := strconv.ParseInt(s, 10, 64)
			if err != nil || v <= 0 {
				bad()
			}
			return v
		}
		switch fields[0] {
		case "domain":
			if len(fields) != 5 {
				bad()
			}
			d := dtDomain{name: fields[1]}
			for _, kv := range fields[2:] {
				k, v, _ := strings.Cut(kv, "=")
				switch k {
				case "cpus":
					d.cpus = v
				case "dynamic-power-coefficient":
					d.coeff = num(v)
				case "capacity-dmips-mhz":
					d.dmips = num(v)
				default:
					bad()
				}
			}
			ds = append(ds, d)
		case "opp":
			if len(fields) != 3 || len(ds) == 0 {
				bad()
			}
			ds[len(ds)-1].opps = append(ds[len(ds)-1].opps, [2]int64{num(fields[1]), num(fields[2])})
		default:
			bad()
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return ds
}

// oppDomains converts the device-tree numbers for FromOPP.
func oppDomains(t testing.TB, ds []dtDomain) []energy.OPPDomain {
	var out []energy.OPPDomain
	for _, d := range ds {
		cpus, err := topology.ParseCPUList(d.cpus)
		if err != nil {
			t.Fatal(err)
		}
		od := energy.OPPDomain{Name: d.name, CPUs: cpus, DynamicPowerCoefficient: uint64(d.coeff), CapacityDMIPSMHz: uint64(d.dmips)}
		for _, o := range d.opps {
			od.OPPs = append(od.OPPs, energy.OPP{FrequencyHz: uint64(o[0]), MicroVolts: uint64(o[1])})
		}
		out = append(out, od)
	}
	return out
}

// kernelState is a state as the generator computes it.
type kernelState struct {
	khz, power, perf, cost *big.Int
	inefficient            bool
}

// generate computes the debugfs files of a device tree, path → content.
func generate(ds []dtDomain) map[string]string {
	n := func(v int64) *big.Int { return big.NewInt(v) }
	div := func(a, b *big.Int) *big.Int { return new(big.Int).Quo(a, b) }
	mul := func(a ...*big.Int) *big.Int {
		p := n(1)
		for _, x := range a {
			p.Mul(p, x)
		}
		return p
	}
	// arch_topology: raw capacity = dmips × max frequency (kHz),
	// normalized to 1024.
	raws := make([]*big.Int, len(ds))
	top := n(0)
	for i, d := range ds {
		fmax := int64(0)
		for _, o := range d.opps {
			fmax = max(fmax, o[0]/1000)
		}
		raws[i] = mul(n(d.dmips), n(fmax))
		if raws[i].Cmp(top) > 0 {
			top = raws[i]
		}
	}
	files := map[string]string{
		"proc/mounts": "sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0\n" +
			"proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0\n" +
			"debugfs /sys/kernel/debug debugfs rw,nosuid,nodev,noexec,relatime 0 0\n",
	}
	for i, d := range ds {
		capacity := div(mul(raws[i], n(1024)), top)
		opps := slices.Clone(d.opps)
		slices.SortFunc(opps, func(a, b [2]int64) int { return int(a[0] - b[0]) })
		states := make([]kernelState, len(opps))
		for j, o := range opps {
			// drivers/opp/of.c: µW = coeff × mV² × MHz / 10^6.
			mV, mhz := div(n(o[1]), n(1000)), div(n(o[0]), n(1000000))
			states[j].power = div(mul(n(d.coeff), mV, mV, mhz), n(1000000))
			states[j].khz = div(n(o[0]), n(1000))
		}
		fmax := states[len(states)-1].khz
		for j := range states {
			s := &states[j]
			s.perf = div(mul(capacity, s.khz), fmax)
			s.cost = div(mul(s.power, n(10)), s.perf)
		}
		var prev *big.Int
		anyIneff := false
		for j := len(states) - 1; j >= 0; j-- {
			if prev != nil && states[j].cost.Cmp(prev) >= 0 {
				states[j].inefficient, anyIneff = true, true
			} else {
				prev = states[j].cost
			}
		}
		dir := "sys/kernel/debug/energy_model/" + d.name + "/"
		files[dir+"cpus"] = d.cpus + "\n"
		// flags: EM_PERF_DOMAIN_MICROWATTS, plus
		// EM_PERF_DOMAIN_SKIP_INEFFICIENCIES when cpufreq was told of
		// inefficient frequencies; printed with %#lx.
		files[dir+"flags"] = map[bool]string{false: "0x1\n", true: "0x3\n"}[anyIneff]
		for _, s := range states {
			ps := dir + "ps:" + s.khz.String() + "/"
			files[ps+"frequency"] = s.khz.String() + "\n"
			files[ps+"power"] = s.power.String() + "\n"
			files[ps+"cost"] = s.cost.String() + "\n"
			files[ps+"performance"] = s.perf.String() + "\n"
			files[ps+"inefficient"] = map[bool]string{false: "0\n", true: "1\n"}[s.inefficient]
		}
	}
	return files
}

// The archives hold the trees as text: Go module zips reject file names
// with ':', which every ps:<frequency> directory has.

const archiveHeader = "# Generated by go test ./energy -run TestFixtures -update from testdata/dt/%s.dt; do not edit.\n# The debugfs tree the kernel shows for that device tree: one \"-- path --\" line per file, then its content.\n"

func formatArchive(soc string, files map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, archiveHeader, soc)
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		fmt.Fprintf(&b, "-- %s --\n%s", name, files[name])
	}
	return b.String()
}

// parseArchive reads an archive into path → content.
func parseArchive(data string) (map[string]string, error) {
	files := map[string]string{}
	name := ""
	for line := range strings.Lines(data) {
		if rest, ok := strings.CutPrefix(line, "-- "); ok && strings.HasSuffix(rest, " --\n") {
			name = strings.TrimSuffix(rest, " --\n")
			if _, dup := files[name]; dup {
				return nil, fmt.Errorf("archive: %s twice", name)
			}
			files[name] = ""
			continue
		}
		if name == "" {
			if strings.HasPrefix(line, "#") {
				continue
			}
			return nil, fmt.Errorf("archive: content before the first file: %q", line)
		}
		files[name] += line
	}
	return files, nil
}

func mapFS(files map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for name, content := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(content), Mode: 0o444}
	}
	return fsys
}

// loadFixture returns the fixture tree of a SoC as a file system.
func loadFixture(t testing.TB, soc string) fstest.MapFS {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", soc+".debugfs.txtar"))
	if err != nil {
		t.Fatal(err)
	}
	files, err := parseArchive(string(data))
	if err != nil {
		t.Fatal(err)
	}
	return mapFS(files)
}

// TestFixtures checks that the archives are what the generator makes of
// the device trees, and that ReadDebugfs on them gives the model FromOPP
// builds from the same device trees.
func TestFixtures(t *testing.T) {
	for _, soc := range socs {
		t.Run(soc, func(t *testing.T) {
			ds := parseDT(t, soc)
			want := formatArchive(soc, generate(ds))
			file := filepath.Join("testdata", soc+".debugfs.txtar")
			if *update {
				if err := os.WriteFile(file, []byte(want), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, string(got)); diff != "" {
				t.Fatalf("%s differs from the generator's output (run with -update) (-want +got):\n%s", file, diff)
			}

			fromDebugfs, err := energy.ReadDebugfs(&energy.Options{FS: loadFixture(t, soc)})
			if err != nil {
				t.Fatal(err)
			}
			fromOPP, err := energy.FromOPP(oppDomains(t, ds))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(fromOPP.Domains, fromDebugfs.Domains, cmpopts...); diff != "" {
				t.Errorf("FromOPP and ReadDebugfs disagree (-FromOPP +ReadDebugfs):\n%s", diff)
			}
			if len(fromDebugfs.Assumed) != 0 {
				t.Errorf("ReadDebugfs assumed %q", fromDebugfs.Assumed)
			}
		})
	}
}

// TestFixturesCrossCheckCanFail shows that the comparison of TestFixtures
// notices a one-unit change in any number the generator writes.
func TestFixturesCrossCheckCanFail(t *testing.T) {
	ds := parseDT(t, "rk3399")
	fromOPP, err := energy.FromOPP(oppDomains(t, ds))
	if err != nil {
		t.Fatal(err)
	}
	files := generate(ds)
	var changed int
	for name, content := range files {
		if !strings.Contains(name, "/ps:") || strings.HasSuffix(name, "/frequency") || strings.HasSuffix(name, "/inefficient") {
			continue
		}
		v, err := strconv.ParseUint(strings.TrimSpace(content), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		tampered := mapFS(files)
		tampered[name] = &fstest.MapFile{Data: []byte(strconv.FormatUint(v+1, 10) + "\n")}
		m, err := energy.ReadDebugfs(&energy.Options{FS: tampered})
		if err == nil && cmp.Equal(fromOPP.Domains, m.Domains, cmpopts...) {
			t.Errorf("%s + 1 went unnoticed", name)
		}
		changed++
	}
	if changed < 30 {
		t.Fatalf("only %d files tampered with", changed)
	}
}
