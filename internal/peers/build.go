package peers

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/scxkit/scxkit/internal/kbtf"
	"github.com/scxkit/scxkit/internal/privdir"
)

// extractDirs are the folders of the source tree the build reads:
// tools/sched_ext with libbpf, bpftool and the tools' build system and
// headers (tools), the kernel's headers (include: the BPF programs' -I),
// scripts/bpf_doc.py (libbpf's helper definitions) and kernel/bpf
// (bpftool's disassembler).
var extractDirs = []string{"tools", "include", "scripts", "kernel/bpf"}

// makeDir is the Makefile's folder in the source tree.
const makeDir = "tools/sched_ext"

// Names of the files of a set in the cache, beside the programs.
const (
	manifestName = "manifest"
	logName      = "build.log"
)

// set is a folder of the cache that holds the peers built from one
// source against one BTF image.
type set struct {
	dir    string
	built  []string // the peers that built, each a program in dir
	failed []string // the peers that did not
}

// path returns the program of the peer name.
func (s *set) path(name string) (string, error) {
	if !slices.Contains(s.built, name) {
		return "", fmt.Errorf("peers: %s did not build: see %s (remove %s to build again)",
			name, filepath.Join(s.dir, logName), s.dir)
	}
	p := filepath.Join(s.dir, name)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("peers: cached %s: %w (remove %s to build again)", name, err, s.dir)
	}
	return p, nil
}

// readSet reads the manifest of the set in dir. The folder is renamed
// into place whole, so a manifest means a complete set.
func readSet(dir string) (*set, error) {
	b, err := os.ReadFile(filepath.Join(dir, manifestName))
	if err != nil {
		return nil, err
	}
	s := &set{dir: dir}
	ok := false
	for _, line := range strings.Split(string(b), "\n") {
		key, value, _ := strings.Cut(line, " ")
		switch key {
		case "built":
			s.built = strings.Fields(value)
		case "failed":
			s.failed = strings.Fields(value)
		case "recipe":
			ok = value == fmt.Sprint(recipe)
		}
	}
	if !ok {
		return nil, fmt.Errorf("%s: not a manifest of recipe %d", filepath.Join(dir, manifestName), recipe)
	}
	// A set built before a peer joined Names lacks it: build again.
	for _, name := range Names {
		if !slices.Contains(s.built, name) && !slices.Contains(s.failed, name) {
			return nil, fmt.Errorf("%s: built before %s was a peer", dir, name)
		}
	}
	return s, nil
}

// cachedSet returns the set of key in o.CacheDir, building it first if
// it is not there.
func cachedSet(ctx context.Context, o *Options, key string) (*set, error) {
	switch err := privdir.Ensure(o.CacheDir); {
	case errors.Is(err, privdir.ErrUnsafe):
		return nil, fmt.Errorf("peers: cache folder %w; the programs in it run as root, so it must be a directory of this user's "+
			"that nobody else can write: remove it, or set SCXKIT_CACHE", err)
	case err != nil:
		return nil, fmt.Errorf("peers: cache: %w", err)
	}
	dir := filepath.Join(o.CacheDir, key)
	if s, err := readSet(dir); err == nil {
		return s, nil
	}
	lock := filepath.Join(o.CacheDir, key+".lock")
	unlock, err := privdir.Lock(ctx, lock, syscall.LOCK_EX, func() {
		fmt.Fprintf(o.Log, "peers: another process is building the same peers; waiting for it (lock %s)\n", lock)
	})
	if err != nil {
		return nil, fmt.Errorf("peers: cache: %w", err)
	}
	defer unlock()
	if s, err := readSet(dir); err == nil {
		return s, nil // another process built it while we waited
	}
	// Under the lock nobody else builds this key: what is left of it is
	// a killed build's, or a folder that is not a set.
	leftovers, _ := filepath.Glob(filepath.Join(o.CacheDir, ".build-"+key+"-*"))
	for _, d := range append(leftovers, dir) {
		if err := os.RemoveAll(d); err != nil {
			return nil, fmt.Errorf("peers: cache: %w", err)
		}
	}
	scratch, err := os.MkdirTemp(o.CacheDir, ".build-"+key+"-")
	if err != nil {
		return nil, fmt.Errorf("peers: cache: %w", err)
	}
	defer os.RemoveAll(scratch)
	out, err := build(ctx, o, scratch, dir)
	if err != nil {
		return nil, err
	}
	if err := os.Rename(out, dir); err != nil {
		return nil, fmt.Errorf("peers: cache: %w", err)
	}
	return readSet(dir)
}

// build builds every peer from o.Source in scratch and returns the
// folder, in scratch, that holds the programs, the log and the manifest,
// to be renamed to final.
func build(ctx context.Context, o *Options, scratch, final string) (string, error) {
	if err := checkToolchain(); err != nil {
		return "", err
	}
	fmt.Fprintf(o.Log, "peers: building the kernel's sched_ext schedulers from %s (once; about a minute)\n", o.Source)
	start := time.Now()
	if err := extract(ctx, o.Source, scratch); err != nil {
		return "", err
	}
	fmt.Fprintf(o.Log, "peers: extracted %s from %s in %.1fs\n", strings.Join(extractDirs, ", "), o.Source.Tarball, time.Since(start).Seconds())
	vmlinux := filepath.Join(scratch, "vmlinux")
	if err := writeBTF(o.BTF, vmlinux); err != nil {
		return "", err
	}
	out := filepath.Join(scratch, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		return "", fmt.Errorf("peers: %w", err)
	}
	src := filepath.Join(scratch, o.Source.root())
	logPath := filepath.Join(out, logName)
	makeStart := time.Now()
	makeErr := runMake(ctx, filepath.Join(src, makeDir), vmlinux, logPath)
	if ctx.Err() != nil {
		return "", fmt.Errorf("peers: build interrupted: %w", ctx.Err())
	}
	var built, failed []string
	for _, name := range Names {
		err := os.Rename(filepath.Join(src, makeDir, "build", "bin", name), filepath.Join(out, name))
		switch {
		case err == nil:
			built = append(built, name)
		case errors.Is(err, fs.ErrNotExist):
			failed = append(failed, name)
		default:
			return "", fmt.Errorf("peers: %w", err)
		}
	}
	if len(built) == 0 {
		return "", fmt.Errorf("peers: building %s's tools/sched_ext failed (%v); the last lines of its log:\n%s\n(if a tool or library is missing, run %s)",
			o.Source.Package, makeErr, logTail(logPath, 15), SetupCommand)
	}
	if len(failed) > 0 {
		fmt.Fprintf(o.Log, "peers: %s did not build (%v): see %s\n", strings.Join(failed, ", "), makeErr, filepath.Join(final, logName))
	}
	m := fmt.Sprintf("recipe %d\npackage %s\nversion %s\ntarball %s\nbtf %s\nbuilt %s\nfailed %s\n",
		recipe, o.Source.Package, o.Source.Version, o.Source.Tarball, o.BTF, strings.Join(built, " "), strings.Join(failed, " "))
	if err := os.WriteFile(filepath.Join(out, manifestName), []byte(m), 0o644); err != nil {
		return "", fmt.Errorf("peers: %w", err)
	}
	fmt.Fprintf(o.Log, "peers: built %d schedulers in %.1fs (%.1fs in all)\n", len(built), time.Since(makeStart).Seconds(), time.Since(start).Seconds())
	return out, nil
}

// toolchain lists what the build runs or includes, each with the Debian
// package that has it.
var toolchain = []struct{ file, pkg string }{
	{"tar", "tar"},
	{"xz", "xz-utils"},
	{"make", "make"},
	{"clang-19", "clang-19"},
	{"ld.lld-19", "lld-19"},
	{"llvm-ar-19", "llvm-19"},
	{"/usr/include/gelf.h", "libelf-dev"},
	{"/usr/include/zlib.h", "zlib1g-dev"},
	{"/usr/include/zstd.h", "libzstd-dev"},
}

// checkToolchain checks that everything in toolchain is there, so that a
// missing piece is named before a minute of work rather than deep in the
// build log.
func checkToolchain() error {
	var missing, pkgs []string
	for _, t := range toolchain {
		var err error
		if filepath.IsAbs(t.file) {
			_, err = os.Stat(t.file)
		} else {
			_, err = exec.LookPath(t.file)
		}
		if err != nil {
			missing = append(missing, t.file)
			pkgs = append(pkgs, t.pkg)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("peers: the build needs %s, not found: run %s (or apt-get install %s)",
			strings.Join(missing, ", "), SetupCommand, strings.Join(pkgs, " "))
	}
	return nil
}

// extract unpacks extractDirs of src's tarball into dir.
func extract(ctx context.Context, src Source, dir string) error {
	args := []string{"-xJf", src.Tarball, "-C", dir}
	for _, d := range extractDirs {
		args = append(args, src.root()+"/"+d)
	}
	cmd := exec.CommandContext(ctx, "tar", args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("peers: extract %s: interrupted: %w", src.Tarball, ctx.Err())
		}
		return fmt.Errorf("peers: extract %s from %s: %w: %s (a damaged package? reinstall %s)",
			strings.Join(extractDirs, ", "), src.Tarball, err, strings.TrimSpace(string(out)), src.Package)
	}
	return nil
}

// btfMagic starts a raw BTF file (0xeB9F, little-endian).
var btfMagic = []byte{0x9f, 0xeb}

// writeBTF writes to dst what VMLINUX_BTF takes: the vmlinux ELF held by
// the kernel image image, or image itself when it already is raw BTF or
// an ELF.
func writeBTF(image, dst string) error {
	head := make([]byte, len(btfMagic))
	f, err := os.Open(image)
	if err != nil {
		return fmt.Errorf("peers: BTF image: %w", err)
	}
	_, err = io.ReadFull(f, head)
	f.Close()
	var data []byte
	if err == nil && bytes.Equal(head, btfMagic) {
		data, err = os.ReadFile(image)
	} else {
		data, err = kbtf.Vmlinux(image)
	}
	if err != nil {
		return fmt.Errorf("peers: BTF for the build from %s: %w", image, err)
	}
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		return fmt.Errorf("peers: %w", err)
	}
	return nil
}

// makeEnvDrop are environment variables that would redirect the tools'
// build system (its output, compilers or flags) away from the recipe.
var makeEnvDrop = []string{
	"O", "KBUILD_OUTPUT", "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "CROSS_COMPILE", "ARCH",
	"CC", "LD", "AR", "HOSTCC", "HOSTLD", "CFLAGS", "LDFLAGS", "EXTRA_CFLAGS",
	"BPFTOOL", "VMLINUX_H", "VMLINUX_BTF", "LLVM", "DESTDIR", "prefix", "V",
}

// runMake runs the Makefile in dir for every target, going on past a
// target that fails (-k), its output to logPath. Cancelling ctx kills
// make and its compilers.
func runMake(ctx context.Context, dir, vmlinux, logPath string) error {
	log, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("peers: %w", err)
	}
	defer log.Close()
	cmd := exec.CommandContext(ctx, "make", "-C", dir, "-k", fmt.Sprintf("-j%d", runtime.NumCPU()),
		"LLVM=-19", "VMLINUX_BTF="+vmlinux)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return slices.Contains(makeEnvDrop, k)
	})
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("make: %w", err)
	}
	return nil
}

// logTail returns the last n lines of the file at path, indented.
func logTail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return "  (no log: " + err.Error() + ")"
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, "  | "+sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}
