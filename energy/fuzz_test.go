package energy_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/scxkit/scxkit/energy"
)

// FuzzReadDebugfs feeds ReadDebugfs trees in the archive format of
// testdata/*.debugfs.txtar. It must never panic, must return a valid model
// or an error wrapping ErrInvalid or a file-system error, and the
// model must be usable by the rest of the package.
func FuzzReadDebugfs(f *testing.F) {
	for _, soc := range socs {
		data, err := os.ReadFile(filepath.Join("testdata", soc+".debugfs.txtar"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(data))
	}
	f.Add(formatArchive("old", mapToFiles(oldKernelTree("units", "milliWatts", true))))
	f.Add(formatArchive("old", mapToFiles(oldKernelTree("flags", "0x4", false))))
	f.Add("-- proc/mounts --\ndebugfs /d debugfs rw 0 0\n-- d/energy_model/cpu0/cpus --\n0\n-- d/energy_model/cpu0/ps:1/frequency --\n1\n-- d/energy_model/cpu0/ps:1/power --\n1\n-- d/energy_model/cpu0/ps:1/cost --\n0\n")
	f.Fuzz(func(t *testing.T, archive string) {
		if len(archive) > 1<<16 {
			return
		}
		files, err := parseArchive(archive)
		if err != nil || len(files) > 400 {
			return
		}
		fsys := mapFS(files)
		m, err := energy.ReadDebugfs(&energy.Options{FS: fsys})
		if _, estErr := energy.Estimate(rk3399Topology(), &energy.Options{FS: fsys}); estErr != nil && !errors.Is(estErr, energy.ErrInvalid) {
			t.Fatalf("Estimate: unexpected error %v", estErr)
		}
		if err != nil {
			var pe *fs.PathError
			if !errors.Is(err, energy.ErrInvalid) && !errors.Is(err, fs.ErrNotExist) && !errors.As(err, &pe) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("ReadDebugfs returned an invalid model: %v", err)
		}
		util := make([]float64, min(m.CPUs().Max()+1, 1<<12))
		for cpu := range m.CPUs().All() {
			if cpu >= len(util) {
				break
			}
			util[cpu] = float64(cpu % 1100)
		}
		if _, err := m.Energy(util); err != nil {
			t.Fatal(err)
		}
		_ = m.PerCPU()
		_ = m.Classes()
		var capacity uint64
		for _, d := range m.Domains {
			capacity += uint64(d.CPUs.Weight()) * d.Capacity()
		}
		if capacity > 20000 || len(m.Domains) > 64 {
			return
		}
		tb, err := m.CheapestSets(&energy.TableOptions{Granularity: 64})
		if err != nil {
			if errors.Is(err, energy.ErrTooBig) {
				return
			}
			t.Fatal(err)
		}
		if last := tb.Levels[len(tb.Levels)-1]; last.Demand != int64(capacity) {
			t.Fatalf("last level carries %d of %d", last.Demand, capacity)
		}
	})
}

func mapToFiles(fsys fstest.MapFS) map[string]string {
	files := map[string]string{}
	for name, f := range fsys {
		files[name] = string(f.Data)
	}
	return files
}
