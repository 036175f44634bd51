package energy_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/scxkit/scxkit/energy"
)

const emDir = "sys/kernel/debug/energy_model/"

func TestReadDebugfsRK3399(t *testing.T) {
	m, err := energy.ReadDebugfs(&energy.Options{FS: loadFixture(t, "rk3399")})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Domains) != 2 || m.Domains[0].Name != "cpu0" || m.Domains[0].CPUs.String() != "0-3" || m.Domains[1].CPUs.String() != "4-5" {
		t.Fatalf("domains %+v", m.Domains)
	}
	little, big := m.Domains[0], m.Domains[1]
	// 408 MHz at 825 mV: 100 × 825² × 408 / 10^6 = 27769 µW; capacity
	// 485 × 1416 / (1024 × 1800) × 1024 = 381.
	want := energy.PerfState{FrequencyKHz: 408000, Power: 27769, Performance: 109, Cost: 2547, Inefficient: true}
	if little.States[0] != want {
		t.Errorf("little ps:408000 = %+v, want %+v", little.States[0], want)
	}
	if little.Capacity() != 381 || big.Capacity() != 1024 || !little.Microwatts {
		t.Errorf("capacities %d, %d", little.Capacity(), big.Capacity())
	}
	// 1800 MHz at 1.2 V: 436 × 1200² × 1800 / 10^6 = 1130112 µW.
	if top := big.States[len(big.States)-1]; top.Power != 1130112 || top.Cost != 11036 || top.Inefficient {
		t.Errorf("big ps:1800000 = %+v", top)
	}
}

func TestReadDebugfsRoot(t *testing.T) {
	// The same tree on disk, through Options.Root, with the mount point
	// of debugfs elsewhere and escaped as /proc/mounts escapes spaces.
	dir := t.TempDir()
	for name, f := range loadFixture(t, "hi3660") {
		name = strings.Replace(name, "sys/kernel/debug/", "mnt/debug fs/", 1)
		if name == "proc/mounts" {
			f.Data = []byte("debugfs /mnt/debug\\040fs debugfs rw 0 0\n")
		}
		p := filepath.Join(dir, strings.ReplaceAll(name, ":", "_colon_"))
		p = strings.ReplaceAll(p, "_colon_", ":")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m, err := energy.ReadDebugfs(&energy.Options{Root: dir})
	if err != nil {
		t.Fatal(err)
	}
	want, err := energy.ReadDebugfs(&energy.Options{FS: loadFixture(t, "hi3660")})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Domains) != 2 || m.Domains[1].States[4] != want.Domains[1].States[4] {
		t.Errorf("got %+v", m.Domains)
	}
}

func TestReadDebugfsNoEnergyModel(t *testing.T) {
	for name, fsys := range map[string]fstest.MapFS{
		"no energy_model": {"proc/mounts": {Data: []byte("debugfs /sys/kernel/debug debugfs rw 0 0\n")}, "sys/kernel/debug/tracing/x": {}},
		"no mounts":       {"sys/kernel/debug/tracing/x": {}},
		"not mounted":     {"proc/mounts": {Data: []byte("proc /proc proc rw 0 0\n")}},
		"devices only": {
			"proc/mounts": {Data: []byte("debugfs /sys/kernel/debug debugfs rw 0 0\n")},
			emDir + "ff9a0000.gpu/ps:200000/frequency": {Data: []byte("200000\n")},
		},
	} {
		_, err := energy.ReadDebugfs(&energy.Options{FS: fsys})
		if !errors.Is(err, fs.ErrNotExist) || errors.Is(err, energy.ErrInvalid) {
			t.Errorf("%s: %v, want fs.ErrNotExist", name, err)
		}
		if name == "no energy_model" && !strings.Contains(err.Error(), "no energy model") || !strings.Contains(err.Error(), "FromOPP") && name != "not mounted" {
			t.Errorf("%s: %v does not explain", name, err)
		}
	}
}

// fixtureFiles returns the RK3399 fixture as a map to edit.
func fixtureFiles(t *testing.T) fstest.MapFS {
	t.Helper()
	return loadFixture(t, "rk3399")
}

func TestReadDebugfsBadInput(t *testing.T) {
	const ps = emDir + "cpu0/ps:600000/"
	for _, tc := range []struct {
		name string
		edit func(fstest.MapFS)
		file string // the file the error must name
	}{
		{"missing cost", func(f fstest.MapFS) { delete(f, ps+"cost") }, ps + "cost"},
		{"missing power", func(f fstest.MapFS) { delete(f, ps+"power") }, ps + "power"},
		{"non-numeric power", func(f fstest.MapFS) { f[ps+"power"] = &fstest.MapFile{Data: []byte("40837 mW\n")} }, ps + "power"},
		{"negative cost", func(f fstest.MapFS) { f[ps+"cost"] = &fstest.MapFile{Data: []byte("-1\n")} }, ps + "cost"},
		{"frequency mismatch", func(f fstest.MapFS) { f[ps+"frequency"] = &fstest.MapFile{Data: []byte("600001\n")} }, ps + "frequency"},
		{"duplicate frequency", func(f fstest.MapFS) {
			for _, n := range []string{"frequency", "power", "cost", "performance", "inefficient"} {
				f[emDir+"cpu0/ps:0600000/"+n] = f[ps+n]
			}
		}, emDir + "cpu0/ps:0600000"},
		{"bad ps name", func(f fstest.MapFS) { f[emDir+"cpu0/ps:fast/frequency"] = &fstest.MapFile{Data: []byte("1\n")} }, emDir + "cpu0/ps:fast"},
		{"empty cpus", func(f fstest.MapFS) { f[emDir+"cpu0/cpus"] = &fstest.MapFile{Data: []byte("\n")} }, emDir + "cpu0/cpus"},
		{"bad cpus", func(f fstest.MapFS) { f[emDir+"cpu0/cpus"] = &fstest.MapFile{Data: []byte("0-x\n")} }, emDir + "cpu0/cpus"},
		{"cpus in two domains", func(f fstest.MapFS) { f[emDir+"cpu4/cpus"] = &fstest.MapFile{Data: []byte("3-5\n")} }, "cpus 3"},
		{"bad flags", func(f fstest.MapFS) { f[emDir+"cpu0/flags"] = &fstest.MapFile{Data: []byte("micro\n")} }, emDir + "cpu0/flags"},
		{"partial performance", func(f fstest.MapFS) { delete(f, ps+"performance") }, ps + "performance"},
		{"no states", func(f fstest.MapFS) {
			for name := range f {
				if strings.HasPrefix(name, emDir+"cpu4/ps:") {
					delete(f, name)
				}
			}
		}, emDir + "cpu4"},
		{"inefficient flag wrong", func(f fstest.MapFS) { f[ps+"inefficient"] = &fstest.MapFile{Data: []byte("1\n")} }, "ps:600000"},
		{"performance falls", func(f fstest.MapFS) { f[ps+"performance"] = &fstest.MapFile{Data: []byte("500\n")} }, "ps:600000"},
		{"power too high", func(f fstest.MapFS) { f[ps+"power"] = &fstest.MapFile{Data: []byte("64000001\n")} }, "ps:600000"},
		{"huge file", func(f fstest.MapFS) { f[ps+"cost"] = &fstest.MapFile{Data: make([]byte, 5000)} }, ps + "cost"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := fixtureFiles(t)
			tc.edit(f)
			_, err := energy.ReadDebugfs(&energy.Options{FS: f})
			if !errors.Is(err, energy.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tc.file) {
				t.Errorf("err = %v, does not name %s", err, tc.file)
			}
		})
	}
}

// oldKernelTree returns the RK3399 little domain as Linux before 6.9
// shows it: no performance files, the old cost, and the given power unit
// file.
func oldKernelTree(unitsFile, units string, mw bool) fstest.MapFS {
	f := fstest.MapFS{
		"proc/mounts": {Data: []byte("debugfs /sys/kernel/debug debugfs rw 0 0\n")},
		"sys/devices/system/cpu/cpu0/cpu_capacity": {Data: []byte("381\n")},
		emDir + "cpu0/cpus":                        {Data: []byte("0-3\n")},
		emDir + "gpu/ps:200000/frequency":          {Data: []byte("200000\n")}, // a device: skipped
		emDir + "cpu0/ps:408000/frequency":         {Data: []byte("408000\n")},
		emDir + "cpu0/ps:600000/frequency":         {Data: []byte("600000\n")},
		emDir + "cpu0/ps:1416000/frequency":        {Data: []byte("1416000\n")},
		emDir + "cpu0/ps:408000/cost":              {Data: []byte("96375\n")},
		emDir + "cpu0/ps:600000/cost":              {Data: []byte("96377\n")},
		emDir + "cpu0/ps:1416000/cost":             {Data: []byte("179212\n")},
		emDir + "cpu0/ps:1416000/inefficient":      {Data: []byte("0\n")},
		emDir + "cpu0/ps:408000/inefficient":       {Data: []byte("0\n")},
		emDir + "cpu0/ps:600000/inefficient":       {Data: []byte("0\n")},
	}
	pw := []string{"27769", "40837", "179212"}
	if mw {
		pw = []string{"27", "40", "179"}
	}
	for i, ps := range []string{"408000", "600000", "1416000"} {
		f[emDir+"cpu0/ps:"+ps+"/power"] = &fstest.MapFile{Data: []byte(pw[i] + "\n")}
	}
	if unitsFile != "" {
		f[emDir+"cpu0/"+unitsFile] = &fstest.MapFile{Data: []byte(units + "\n")}
	}
	return f
}

func TestReadDebugfsOldKernels(t *testing.T) {
	for _, tc := range []struct {
		name, file, content string
		mw, microwatts      bool
		power0              uint64
	}{
		{"6.x flags", "flags", "0x1", false, true, 27769},
		{"5.11 milliWatts", "units", "milliWatts", true, true, 27000},
		{"5.11 bogoWatts", "units", "bogoWatts", false, false, 27769},
		{"5.10", "", "", true, true, 27000},
		{"abstract flags", "flags", "0", false, false, 27769},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := energy.ReadDebugfs(&energy.Options{FS: oldKernelTree(tc.file, tc.content, tc.mw)})
			if err != nil {
				t.Fatal(err)
			}
			d := m.Domains[0]
			if len(m.Domains) != 1 || d.Microwatts != tc.microwatts || d.States[0].Power != tc.power0 {
				t.Fatalf("got %+v", m.Domains)
			}
			s := d.States[0]
			if s.Performance != 381*408000/1416000 || s.Cost != s.Power*10/s.Performance {
				t.Errorf("state %+v not modernized", s)
			}
			if len(m.Assumed) == 0 || !strings.Contains(strings.Join(m.Assumed, "\n"), "cpu_capacity") {
				t.Errorf("Assumed %q", m.Assumed)
			}
		})
	}
	// Without cpu_capacity, performance cannot be computed.
	f := oldKernelTree("flags", "0x1", false)
	delete(f, "sys/devices/system/cpu/cpu0/cpu_capacity")
	if _, err := energy.ReadDebugfs(&energy.Options{FS: f}); !errors.Is(err, energy.ErrInvalid) || !strings.Contains(err.Error(), "cpu0/cpu_capacity") {
		t.Errorf("no cpu_capacity: %v", err)
	}
	// An artificial model's cost is rescaled, not recomputed from power.
	f = oldKernelTree("flags", "0x4", false)
	m, err := energy.ReadDebugfs(&energy.Options{FS: f})
	if err != nil {
		t.Fatal(err)
	}
	if c := m.Domains[0].States[0].Cost; c != 96375*10/381 {
		t.Errorf("artificial cost %d", c)
	}
	if f := m.Domains[0].States; !f[0].Inefficient == (f[0].Cost >= f[1].Cost) {
		t.Errorf("inefficient flags not recomputed: %+v", f)
	}
}
