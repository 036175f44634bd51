// Package sysfstest gives tests the real sysfs snapshots of
// topology/testdata, unpacked.
package sysfstest

import (
	"archive/tar"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// dir is topology/testdata, found from this file's location so that tests
// of any package can use it.
func dir(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("sysfstest: cannot locate topology/testdata")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "topology", "testdata")
}

// Names lists the snapshots: the base names of topology/testdata/*.tar.gz,
// e.g. "amd64-hybrid-4p8e-16cpu".
func Names(t testing.TB) []string {
	t.Helper()
	archives, err := filepath.Glob(filepath.Join(dir(t), "*.tar.gz"))
	if err != nil || len(archives) == 0 {
		t.Fatalf("sysfstest: no snapshots in %s", dir(t))
	}
	var names []string
	for _, a := range archives {
		names = append(names, strings.TrimSuffix(filepath.Base(a), ".tar.gz"))
	}
	slices.Sort(names)
	return names
}

// Unpack extracts the snapshot called name into a temporary directory,
// removed with the test, and returns that directory: a filesystem root
// holding sys/.
func Unpack(t testing.TB, name string) string {
	t.Helper()
	root := t.TempDir()
	if err := UnpackTo(filepath.Join(dir(t), name+".tar.gz"), root); err != nil {
		t.Fatalf("sysfstest: unpack %s: %v", name, err)
	}
	return root
}

// Archive returns the path of the snapshot called name.
func Archive(t testing.TB, name string) string {
	t.Helper()
	return filepath.Join(dir(t), name+".tar.gz")
}

// UnpackTo extracts the directories, regular files and symlinks of a
// .tar.gz snapshot into root. Entries that would land outside root are
// skipped.
func UnpackTo(archive, root string) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		path := filepath.Join(root, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(path, root+string(filepath.Separator)) {
			continue
		}
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(path, 0o755)
		case tar.TypeReg:
			if err = os.MkdirAll(filepath.Dir(path), 0o755); err == nil {
				var data []byte
				if data, err = io.ReadAll(tr); err == nil {
					err = os.WriteFile(path, data, 0o644)
				}
			}
		case tar.TypeSymlink:
			if err = os.MkdirAll(filepath.Dir(path), 0o755); err == nil {
				err = os.Symlink(h.Linkname, path)
			}
		}
		if err != nil {
			return err
		}
	}
}
