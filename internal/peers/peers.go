package peers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/scxkit/scxkit/vmtest"
)

// Names lists the peers Build can build: the schedulers of the kernel's
// tools/sched_ext that build from linux-source-7.3 with clang-19 and run
// standalone, attached until SIGINT, with their default flags (each ran
// scxkit bench's three benchmarks on 7.3 with 2 vCPUs).
//
// Two of the Makefile's targets are left out. scx_central reads the
// kernel's configuration (libbpf looks for /proc/config.gz or
// /boot/config-$(uname -r); Debian's kernels have no IKCONFIG and the VM
// no /boot), and fails to load without it. scx_qmap builds, but 7.3's
// verifier rejects what clang-19 makes of its qmap_dequeue.
var Names = []string{
	"scx_cpu0",
	"scx_flatcg",
	"scx_pair",
	"scx_sdt",
	"scx_simple",
	"scx_userland",
}

// Sentinel errors, wrapped with the details.
var (
	// ErrUnknown: a name that is not one of Names.
	ErrUnknown = errors.New("unknown peer")
	// ErrNoSource: the kernel source package is not installed.
	ErrNoSource = errors.New("kernel source not installed")
)

// SetupCommand installs the source package and the build's toolchain.
const SetupCommand = vmtest.SetupCommand

// ValidateName returns an error wrapping ErrUnknown, which lists the
// known peers, unless name is one of Names.
func ValidateName(name string) error {
	if slices.Contains(Names, name) {
		return nil
	}
	return fmt.Errorf("%w %q: want one of %s", ErrUnknown, name, strings.Join(Names, ", "))
}

// Default source: Debian's package of the 7.3 kernel's source, the
// kernel vmtest boots by default (BTFKernel).
const (
	DefaultPackage = "linux-source-7.3"
	DefaultTarball = "/usr/src/linux-source-7.3.tar.xz"
	// BTFKernel is the vmtest.Matrix kernel whose image the build takes
	// its types from, the kernel of the same source.
	BTFKernel = "7.3"
)

// Source is a kernel source tarball as Debian's linux-source packages
// install it: an xz-compressed tar whose top folder is the file's name
// without ".tar.xz" (linux-source-7.3/).
type Source struct {
	// Package is the Debian package that installed Tarball.
	Package string
	// Tarball is the path of the .tar.xz.
	Tarball string
	// Version identifies the source in the cache key: the package's
	// version, or for a tarball no package owns, its size and time.
	Version string
}

// root is the top folder of the tarball.
func (s Source) root() string {
	return strings.TrimSuffix(filepath.Base(s.Tarball), ".tar.xz")
}

func (s Source) String() string { return fmt.Sprintf("%s %s (%s)", s.Package, s.Version, s.Tarball) }

// DefaultSource returns Debian's linux-source-7.3 as installed on this
// machine. An error wraps ErrNoSource when the tarball is missing, and
// names the fix.
func DefaultSource(ctx context.Context) (Source, error) {
	return findSource(ctx, DefaultPackage, DefaultTarball)
}

// findSource returns the source at tarball, installed by pkg, with pkg's
// version as dpkg knows it.
func findSource(ctx context.Context, pkg, tarball string) (Source, error) {
	fi, err := os.Stat(tarball)
	if err != nil {
		return Source{}, fmt.Errorf("peers: %s is not installed (%w: %v): run %s, or apt-get install %s/trixie-backports",
			pkg, ErrNoSource, err, SetupCommand, pkg)
	}
	src := Source{Package: pkg, Tarball: tarball}
	out, err := exec.CommandContext(ctx, "dpkg-query", "-W", "-f=${Version}", pkg).Output()
	if v := strings.TrimSpace(string(out)); err == nil && v != "" {
		src.Version = v
	} else {
		src.Version = fmt.Sprintf("file-%d-%d", fi.Size(), fi.ModTime().Unix())
	}
	return src, nil
}

// Options are Build's optional settings; nil means all defaults.
type Options struct {
	// Source is the kernel source; zero means DefaultSource.
	Source Source
	// BTF is the kernel image whose types the build compiles against: a
	// bzImage with a zstd-compressed kernel, a vmlinux ELF, or raw BTF
	// such as /sys/kernel/btf/vmlinux. "" means BTFKernel's image, which
	// vmtest downloads on first use.
	BTF string
	// CacheDir is the folder of the cache; "" means the peers folder of
	// vmtest.CacheDir.
	CacheDir string
	// Log receives progress lines, none on a cache hit; nil discards
	// them.
	Log io.Writer
}

// Peer is a built peer.
type Peer struct {
	Name string // one of Names
	Path string // the program, in the cache
}

// recipe is the version of the build recipe (the directories extracted,
// make's command line, the cache layout): bumping it rebuilds every
// cached set.
const recipe = 1

// cacheKey names the folder of the set built from src against the BTF
// image whose SHA-256 is btfSum: safe as a file name whatever the
// version holds.
func cacheKey(src Source, btfSum string) string {
	clean := func(s string) string {
		return strings.Map(func(r rune) rune {
			switch {
			case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune(".+~-", r):
				return r
			}
			return '_'
		}, s)
	}
	return fmt.Sprintf("%s_%s-btf-%.12s-r%d", clean(src.Package), clean(src.Version), btfSum, recipe)
}

// sha256File returns the hex SHA-256 of a file's contents.
func sha256File(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", name, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Build returns the peers named, building every peer from the source
// into the cache on first use (25 s on two idle cores: 10 s to extract,
// 15 s to compile), and taking them from the cache afterwards, at once
// and silently. Two processes that build the same set at once
// build it once: the second waits for the first. Cancelling ctx stops
// the build and leaves the cache as it was.
func Build(ctx context.Context, names []string, opts *Options) ([]Peer, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	for _, name := range names {
		if err := ValidateName(name); err != nil {
			return nil, fmt.Errorf("peers: %w", err)
		}
	}
	if o.Source == (Source{}) {
		src, err := DefaultSource(ctx)
		if err != nil {
			return nil, err
		}
		o.Source = src
	} else if _, err := os.Stat(o.Source.Tarball); err != nil {
		return nil, fmt.Errorf("peers: source tarball of %s (%w: %v): run %s", o.Source.Package, ErrNoSource, err, SetupCommand)
	}
	if o.BTF == "" {
		img, err := btfKernelImage(ctx)
		if err != nil {
			return nil, err
		}
		o.BTF = img
	}
	if o.CacheDir == "" {
		dir, err := vmtest.CacheDir()
		if err != nil {
			return nil, fmt.Errorf("peers: %w", err)
		}
		o.CacheDir = filepath.Join(dir, "peers")
	}
	btfSum, err := sha256File(o.BTF)
	if err != nil {
		return nil, fmt.Errorf("peers: BTF image: %w", err)
	}
	set, err := cachedSet(ctx, &o, cacheKey(o.Source, btfSum))
	if err != nil {
		return nil, err
	}
	var res []Peer
	for _, name := range names {
		path, err := set.path(name)
		if err != nil {
			return nil, err
		}
		res = append(res, Peer{Name: name, Path: path})
	}
	return res, nil
}

// btfKernelImage returns the image of vmtest's BTFKernel, downloading it
// on first use.
func btfKernelImage(ctx context.Context) (string, error) {
	i := slices.IndexFunc(vmtest.Matrix, func(k vmtest.Kernel) bool { return k.Name == BTFKernel })
	if i < 0 {
		return "", fmt.Errorf("peers: vmtest.Matrix has no kernel %s to take BTF from: pin one, or set Options.BTF", BTFKernel)
	}
	img, err := vmtest.Matrix[i].Vmlinuz(ctx)
	if err != nil {
		return "", fmt.Errorf("peers: BTF for the build: %w", err)
	}
	return img, nil
}
