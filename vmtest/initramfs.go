package vmtest

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/scxkit/scxkit/vmtest/internal/cpio"
)

// File is an extra file placed in the guest's root file system.
type File struct {
	Guest string      // absolute path in the guest
	Host  string      // file on the host to copy; ignored when Data is set
	Data  []byte      // contents, instead of Host
	Mode  fs.FileMode // permission bits; 0 means the host file's, or 0644 for Data
}

// Guest paths the init script and the payload use.
const (
	guestPayload = "/vmtest/payload"
	payloadTTY   = "/dev/ttyS1" // second serial port: the payload's output only
)

// initramfs describes everything that goes into a guest's initramfs.
type initramfs struct {
	busybox string   // static busybox on the host
	init    []byte   // the /init script
	payload string   // host path of the payload executable
	files   []File   // extra files
	libs    []string // shared libraries (and interpreter) of a dynamic payload
}

// write writes the newc archive to w. The layout is deterministic: equal
// inputs give identical bytes.
func (ir *initramfs) write(w io.Writer) error {
	cw := cpio.NewWriter(w)
	made := map[string]bool{}
	mkdirs := func(dir string) error {
		var missing []string
		for d := path.Clean(dir); d != "/" && d != "." && !made[d]; d = path.Dir(d) {
			missing = append(missing, d)
		}
		slices.Reverse(missing)
		for _, d := range missing {
			if err := cw.Dir(d, 0o755); err != nil {
				return err
			}
			made[d] = true
		}
		return nil
	}
	for _, d := range []string{"/bin", "/sbin", "/usr/bin", "/usr/sbin", "/dev", "/proc", "/sys", "/tmp", "/run", "/root", "/etc", "/vmtest"} {
		if err := mkdirs(d); err != nil {
			return err
		}
	}
	// The kernel opens /dev/console for init before devtmpfs is mounted.
	if err := cw.CharDevice("/dev/console", 0o600, 5, 1); err != nil {
		return err
	}
	if err := addHostFile(cw, "/bin/busybox", ir.busybox, 0o755); err != nil {
		return err
	}
	if err := cw.File("/init", 0o755, int64(len(ir.init)), bytes.NewReader(ir.init)); err != nil {
		return err
	}
	if ir.payload != "" {
		if err := addHostFile(cw, guestPayload, ir.payload, 0o755); err != nil {
			return err
		}
	}
	// A path goes into the archive once: the payload's libraries and
	// those of extra programs (HostProgram) overlap. A path given twice
	// with different contents is an error.
	added := map[string]File{}
	for _, lib := range ir.libs {
		if err := mkdirs(path.Dir(lib)); err != nil {
			return err
		}
		if err := addHostFile(cw, lib, lib, 0o755); err != nil {
			return err
		}
		added[lib] = File{Guest: lib, Host: lib, Mode: 0o755}
	}
	for _, f := range ir.files {
		if !path.IsAbs(f.Guest) {
			return fmt.Errorf("vmtest: extra file %q: guest path must be absolute", f.Guest)
		}
		if prev, ok := added[path.Clean(f.Guest)]; ok {
			if prev.Data == nil && f.Data == nil && prev.Host == f.Host {
				continue
			}
			return fmt.Errorf("vmtest: extra file %q is given twice, with different contents (%q and %q)", f.Guest, prev.Host, f.Host)
		}
		added[path.Clean(f.Guest)] = f
		if err := mkdirs(path.Dir(f.Guest)); err != nil {
			return err
		}
		var err error
		if f.Data != nil {
			mode := f.Mode
			if mode == 0 {
				mode = 0o644
			}
			err = cw.File(f.Guest, mode, int64(len(f.Data)), bytes.NewReader(f.Data))
		} else {
			err = addHostFile(cw, f.Guest, f.Host, f.Mode)
		}
		if err != nil {
			return err
		}
	}
	return cw.Close()
}

// addHostFile copies a host file (following symlinks) into the archive.
func addHostFile(cw *cpio.Writer, guest, host string, mode fs.FileMode) error {
	f, err := os.Open(host)
	if err != nil {
		return fmt.Errorf("vmtest: file for guest %s: %w", guest, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("vmtest: file for guest %s: %w", guest, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("vmtest: file for guest %s: %s is not a regular file", guest, host)
	}
	if mode == 0 {
		mode = fi.Mode().Perm()
	}
	return cw.File(guest, mode, fi.Size(), f)
}

// findBusybox returns a statically linked busybox on the host.
func findBusybox() (string, error) {
	fix := "run " + SetupCommand + " (installs busybox-static)"
	bb, err := exec.LookPath("busybox")
	if err != nil {
		return "", &SetupError{Missing: "busybox not found", Fix: fix}
	}
	interp, err := elfInterpreter(bb)
	if err != nil {
		return "", fmt.Errorf("vmtest: busybox %s: %w", bb, err)
	}
	if interp != "" {
		return "", &SetupError{Missing: "busybox " + bb + " is dynamically linked", Fix: fix}
	}
	return bb, nil
}

// elfInterpreter returns the program interpreter (PT_INTERP) of an ELF
// executable, or "" for a static one.
func elfInterpreter(name string) (string, error) {
	f, err := elf.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		b, err := io.ReadAll(p.Open())
		if err != nil {
			return "", fmt.Errorf("read PT_INTERP: %w", err)
		}
		return string(bytes.TrimRight(b, "\x00")), nil
	}
	return "", nil
}

// HostProgram returns the files that run the host executable exe in the
// guest at guest (an absolute path): the executable itself and, for a
// dynamically linked one, the shared libraries and interpreter it needs,
// each at its host path, where the guest's dynamic loader looks by
// default. Put them in Command.Files or Config.Files; libraries shared
// between programs and the payload go into the guest once. For Debian's
// tools (stress-ng, cyclictest, ...) that need no files besides their
// libraries.
func HostProgram(exe, guest string) ([]File, error) {
	if !path.IsAbs(guest) {
		return nil, fmt.Errorf("vmtest: program %s: guest path %q must be absolute", exe, guest)
	}
	libs, err := sharedLibraries(exe)
	if err != nil {
		return nil, err
	}
	files := []File{{Guest: guest, Host: exe, Mode: 0o755}}
	for _, lib := range libs {
		files = append(files, File{Guest: lib, Host: lib, Mode: 0o755})
	}
	return files, nil
}

// sharedLibraries lists what a dynamically linked executable needs at run
// time, interpreter included, so the guest can run it. It returns nil for a
// static executable.
func sharedLibraries(exe string) ([]string, error) {
	interp, err := elfInterpreter(exe)
	if err != nil {
		return nil, fmt.Errorf("vmtest: program %s: %w", exe, err)
	}
	if interp == "" {
		return nil, nil
	}
	out, err := exec.Command("ldd", exe).Output()
	if err != nil {
		return nil, fmt.Errorf("vmtest: program %s is dynamically linked and ldd failed (build a Go payload with CGO_ENABLED=0): %w", exe, err)
	}
	libs, err := parseLdd(out)
	if err != nil {
		return nil, fmt.Errorf("vmtest: program %s: %w", exe, err)
	}
	if !slices.Contains(libs, interp) {
		libs = append(libs, interp)
	}
	slices.Sort(libs)
	return libs, nil
}

// parseLdd extracts the absolute library paths from ldd's output.
func parseLdd(out []byte) ([]string, error) {
	var libs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.Contains(line, "vdso") || line == "statically linked" {
			continue
		}
		if strings.Contains(line, "=> not found") {
			return nil, fmt.Errorf("missing shared library: %s", line)
		}
		if _, after, ok := strings.Cut(line, "=> "); ok {
			line = after
		}
		p, _, _ := strings.Cut(line, " (")
		if filepath.IsAbs(p) {
			libs = append(libs, p)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(libs) == 0 {
		return nil, errors.New("ldd listed no libraries")
	}
	return libs, nil
}
