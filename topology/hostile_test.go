package topology

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
	"time"
)

// hangLimit bounds how long a test waits for Discover on a tree that used
// to make it block forever. It only turns a hang into a failure: Discover
// takes milliseconds there.
const hangLimit = time.Minute

// TestDiscoverFIFO puts a FIFO where sysfs has a file or a directory, in a
// real directory read through Options.Root: Discover must fail, naming the
// path, rather than block in open until a writer comes.
func TestDiscoverFIFO(t *testing.T) {
	const cpu = "sys/devices/system/cpu/"
	for _, fifo := range []string{
		cpu + "online",
		cpu + "cpu0/topology/core_id",
		cpu + "cpu1/cache",
		cpu + "cpu2/cpu_capacity",
		"sys/devices/system/node",
	} {
		t.Run(strings.ReplaceAll(fifo, "/", "_"), func(t *testing.T) {
			root := t.TempDir()
			if err := writeTree(root, without(smallFiles(), fifo, fifo+"/")); err != nil {
				t.Fatal(err)
			}
			full := filepath.Join(root, filepath.FromSlash(fifo))
			if err := os.RemoveAll(full); err != nil {
				t.Fatal(err)
			}
			if err := syscall.Mkfifo(full, 0o644); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				_, err := Discover(&Options{Root: root})
				done <- err
			}()
			var err error
			select {
			case err = <-done:
			case <-time.After(hangLimit):
				// Let the blocked open return, so that the test ends.
				if w, werr := os.OpenFile(full, os.O_WRONLY|syscall.O_NONBLOCK, 0); werr == nil {
					w.Close()
				}
				t.Fatalf("Discover blocked for %v on a FIFO at %s", hangLimit, fifo)
			}
			if err == nil || !errors.Is(err, errNotRegular) || !strings.Contains(err.Error(), fifo+": ") ||
				!strings.Contains(err.Error(), "named pipe (FIFO)") {
				t.Errorf("Discover: %v; want an error naming %s as a named pipe", err, fifo)
			}
		})
	}
}

// TestDiscoverFSSpecialFiles checks the same through Options.FS: a file
// whose mode is not regular is refused before it is opened.
func TestDiscoverFSSpecialFiles(t *testing.T) {
	const cpu = "sys/devices/system/cpu/"
	for _, tc := range []struct {
		mode fs.FileMode
		kind string
	}{{fs.ModeNamedPipe, "named pipe (FIFO)"}, {fs.ModeSocket, "socket"}, {fs.ModeDevice | fs.ModeCharDevice, "character device"}} {
		m := mapFS(smallFiles())
		m[cpu+"present"] = &fstest.MapFile{Mode: tc.mode | 0o444}
		_, err := discoverFS(m)
		if err == nil || !strings.Contains(err.Error(), cpu+"present: ") || !strings.Contains(err.Error(), tc.kind) {
			t.Errorf("present as a %s: %v", tc.kind, err)
		}
	}
}

// TestDiscoverInconsistentLists checks that masks which cannot all be true
// are refused, naming both files, and that absurd CPU ids are refused
// before anything is sized by them.
func TestDiscoverInconsistentLists(t *testing.T) {
	const cpu = "sys/devices/system/cpu/"
	tests := []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"online beyond present", with(smallFiles(), cpu+"online", "0-8\n"),
			[]string{cpu + "online (0-8) names cpus 8 that " + cpu + "present (0-7) lacks"}},
		{"present beyond possible", with(smallFiles(), cpu+"present", "0-9\n"),
			[]string{cpu + "present (0-9) names cpus 8-9 that " + cpu + "possible (0-7) lacks"}},
		{"online beyond possible, present missing", without(with(smallFiles(), cpu+"online", "0-65535\n", cpu+"possible", "0-11\n"), cpu+"present"),
			[]string{cpu + "online: cpu 65535: Linux supports at most 8192 CPUs"}},
		{"online far beyond possible", with(smallFiles(), cpu+"online", "0-8191\n", cpu+"possible", "0-11\n", cpu+"present", "0-11\n"),
			[]string{cpu + "online (0-8191) names cpus 12-8191 that " + cpu + "present (0-11) lacks"}},
		{"absurd possible", with(smallFiles(), cpu+"possible", "0-8192\n"),
			[]string{cpu + "possible: cpu 8192: Linux supports at most 8192 CPUs"}},
		{"directories beyond possible", with(smallFiles(), cpu+"possible", "0-3\n", cpu+"present", "0-3\n", cpu+"online", "0-3\n"),
			[]string{cpu + "cpuN directories exist for cpus 4-7 that " + cpu + "possible (0-3) lacks"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			topo, err := discoverFS(mapFS(tt.files))
			if err == nil {
				t.Fatalf("Discover succeeded with %d CPUs", len(topo.CPUs))
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestDiscoverRootIsSysfs gives Discover a root that is sysfs itself
// (/sys rather than /): the error must say to give its parent.
func TestDiscoverRootIsSysfs(t *testing.T) {
	inner := map[string]string{}
	for p, c := range smallFiles() {
		if rest, ok := strings.CutPrefix(p, "sys/"); ok {
			inner[rest] = c
		}
	}
	root := t.TempDir()
	sys := filepath.Join(root, "sys")
	if err := writeTree(sys, inner); err != nil {
		t.Fatal(err)
	}
	_, err := Discover(&Options{Root: sys})
	if err == nil || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "the root is sysfs itself") ||
		!strings.Contains(err.Error(), "its parent") {
		t.Errorf("Discover of a sysfs root: %v; want it to say to give the parent", err)
	}
	if _, err := Discover(&Options{Root: root}); err != nil {
		t.Errorf("Discover of its parent: %v", err)
	}
}
