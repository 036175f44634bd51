package vmtest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/scxkit/scxkit/internal/privdir"
)

// Environment variables that select kernels.
const (
	// EnvVmlinuz names a local kernel image to boot instead of the matrix.
	// The kernel needs CONFIG_SCHED_CLASS_EXT=y for sched_ext tests, and the
	// initramfs drivers vmtest relies on built in (serial 8250, tmpfs).
	EnvVmlinuz = "SCXKIT_VMLINUZ"
	// EnvKernels restricts the matrix to a comma-separated list of
	// Kernel.Name values, e.g. "7.3" or "6.16,7.3".
	EnvKernels = "SCXKIT_KERNELS"
	// EnvCache overrides the cache directory (default: the user cache
	// directory's scxkit folder).
	EnvCache = "SCXKIT_CACHE"
)

// Kernel is a kernel vmtest can boot: either a pinned Debian package, whose
// image is downloaded with apt on first use, or a local image.
type Kernel struct {
	Name    string // short name used in output and in SCXKIT_KERNELS, e.g. "7.3"
	Release string // what uname -r prints in the guest; empty if unknown
	Package string // Debian binary package that holds the image
	Suite   string // Debian suite that carries Package
	Member  string // path of the image inside the package
	Image   string // a local kernel image; when set, Package is not used
}

// Kernels returns the kernels to test on: the local image named by
// SCXKIT_VMLINUZ if set, else the entries of Matrix named in
// SCXKIT_KERNELS if set, else all of Matrix.
func Kernels() ([]Kernel, error) {
	if img := os.Getenv(EnvVmlinuz); img != "" {
		abs, err := filepath.Abs(img)
		if err != nil {
			return nil, fmt.Errorf("vmtest: %s=%q: %w", EnvVmlinuz, img, err)
		}
		if _, err := os.Stat(abs); err != nil {
			return nil, fmt.Errorf("vmtest: %s names a kernel image that cannot be read: %w", EnvVmlinuz, err)
		}
		return []Kernel{{Name: "local", Image: abs}}, nil
	}
	sel := os.Getenv(EnvKernels)
	if sel == "" {
		return slices.Clone(Matrix), nil
	}
	var out []Kernel
	for _, name := range strings.Split(sel, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		i := slices.IndexFunc(Matrix, func(k Kernel) bool { return k.Name == name })
		if i < 0 {
			return nil, fmt.Errorf("vmtest: %s=%q: unknown kernel %q (known: %s)", EnvKernels, sel, name, strings.Join(matrixNames(), ", "))
		}
		out = append(out, Matrix[i])
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("vmtest: %s=%q selects no kernel (known: %s)", EnvKernels, sel, strings.Join(matrixNames(), ", "))
	}
	return out, nil
}

func matrixNames() []string {
	names := make([]string, len(Matrix))
	for i, k := range Matrix {
		names[i] = k.Name
	}
	return names
}

// String returns the kernel's name and release.
func (k Kernel) String() string {
	if k.Release == "" {
		return k.Name
	}
	return k.Name + " (" + k.Release + ")"
}

// CacheDir returns the directory where vmtest keeps downloaded kernels:
// $SCXKIT_CACHE, else the scxkit folder of os.UserCacheDir, else (no
// $HOME, as under systemd or env -i) a folder named for the user's id in
// the temporary directory. vmtest boots what it finds there as root, so
// before using the directory it creates it private (0700) and checks that
// it is a real directory owned by this user that nobody else can write;
// see ErrUnsafeCache.
func CacheDir() (string, error) {
	if d := os.Getenv(EnvCache); d != "" {
		if !filepath.IsAbs(d) {
			return "", fmt.Errorf("vmtest: %s=%q: want an absolute path", EnvCache, d)
		}
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		// A shared, world-writable place: the folder must be ours alone,
		// which privateDir checks.
		return filepath.Join(os.TempDir(), fmt.Sprintf("scxkit-cache-%d", os.Geteuid())), nil
	}
	return filepath.Join(d, "scxkit"), nil
}

// ErrUnsafeCache is wrapped by errors about a cache directory that another
// user could change: one not owned by this user, writable by group or
// others, or a symbolic link.
var ErrUnsafeCache = errors.New("unsafe cache directory")

// privateDir creates dir (and missing parents) with mode 0700 and checks
// that dir itself is a directory, not a symbolic link, owned by this user
// and writable by nobody else (privdir.Ensure). The error says how to fix
// what it refuses.
func privateDir(dir string) error {
	err := privdir.Ensure(dir)
	switch {
	case errors.Is(err, privdir.ErrUnsafe):
		return fmt.Errorf("vmtest: cache directory %w: %w; remove it, or set %s to a directory of your own",
			err, ErrUnsafeCache, EnvCache)
	case err != nil:
		return fmt.Errorf("vmtest: cache directory: %w", err)
	}
	return nil
}

// Vmlinuz returns the path of the kernel image, downloading and unpacking
// the package into the cache on first use. Concurrent callers (several test
// binaries) wait for one download.
//
// A cached image is used only if it matches the manifest written when it
// was unpacked, after the .deb's SHA-256 was checked against the one apt's
// package lists give: the manifest records both sums. An image without a
// manifest, or that no longer matches it, is downloaded again.
func (k Kernel) Vmlinuz(ctx context.Context) (string, error) {
	if k.Image != "" {
		if _, err := os.Stat(k.Image); err != nil {
			return "", fmt.Errorf("vmtest: kernel %s: %w", k.Name, err)
		}
		return k.Image, nil
	}
	if k.Package == "" || k.Member == "" {
		return "", fmt.Errorf("vmtest: kernel %q has neither Image nor Package and Member", k.Name)
	}
	cache, err := CacheDir()
	if err != nil {
		return "", err
	}
	if err := privateDir(cache); err != nil {
		return "", err
	}
	kernels := filepath.Join(cache, "kernels")
	dir := filepath.Join(kernels, k.Package)
	for _, d := range []string{kernels, dir} {
		if err := privateDir(d); err != nil {
			return "", err
		}
	}
	img := filepath.Join(dir, "vmlinuz")
	if k.cached(dir) == nil {
		return img, nil
	}
	unlock, err := lockFile(filepath.Join(dir, ".lock"))
	if err != nil {
		return "", fmt.Errorf("vmtest: kernel cache: %w", err)
	}
	defer unlock()
	if k.cached(dir) == nil {
		return img, nil // another process finished the download
	}
	if err := k.download(ctx, dir, img); err != nil {
		return "", err
	}
	return img, k.cached(dir)
}

// manifestName is the file beside a cached vmlinuz that records its origin.
const manifestName = "manifest"

// manifest records where a cached image came from.
type manifest struct {
	Package   string // Kernel.Package
	DebSHA256 string // the .deb's SHA-256, as apt listed it
	ImgSHA256 string // the extracted vmlinuz's SHA-256
}

func (m manifest) String() string {
	return fmt.Sprintf("package %s\ndeb-sha256 %s\nvmlinuz-sha256 %s\n", m.Package, m.DebSHA256, m.ImgSHA256)
}

func parseManifest(b []byte) (manifest, error) {
	var m manifest
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		key, value, _ := strings.Cut(line, " ")
		switch key {
		case "package":
			m.Package = value
		case "deb-sha256":
			m.DebSHA256 = value
		case "vmlinuz-sha256":
			m.ImgSHA256 = value
		}
	}
	if m.Package == "" || len(m.DebSHA256) != 64 || len(m.ImgSHA256) != 64 {
		return m, errors.New("incomplete manifest")
	}
	return m, nil
}

// errNotCached reports a cache entry that is missing or does not verify.
var errNotCached = errors.New("not cached")

// cached checks the cached image in dir against its manifest. apt's
// checksum was checked when the manifest was written (download); asking apt
// again on every boot would cost about 0.7 s a VM, and nobody else can
// write the private cache directory.
func (k Kernel) cached(dir string) error {
	b, err := readPrivate(filepath.Join(dir, manifestName), 4096)
	if err != nil {
		return fmt.Errorf("%w: %v", errNotCached, err)
	}
	m, err := parseManifest(b)
	if err != nil || m.Package != k.Package {
		return fmt.Errorf("%w: manifest does not describe %s", errNotCached, k.Package)
	}
	sum, err := fileSHA256(filepath.Join(dir, "vmlinuz"))
	if err != nil || sum != m.ImgSHA256 {
		return fmt.Errorf("%w: vmlinuz does not match its manifest", errNotCached)
	}
	return nil
}

// openRegular opens name for reading without following a symbolic link
// or blocking (a FIFO planted in its place), and only if it is a regular
// file.
func openRegular(name string) (*os.File, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s is not a regular file", name)
	}
	return f, nil
}

// readPrivate reads at most limit bytes of a regular file, refusing to
// follow a symbolic link.
func readPrivate(name string, limit int64) ([]byte, error) {
	f, err := openRegular(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit))
}

func fileSHA256(name string) (string, error) {
	f, err := openRegular(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// aptSHA256 returns the SHA-256 that apt's package lists give for pkg, if
// apt lists it.
func aptSHA256(ctx context.Context, pkg string) (string, bool) {
	out, err := exec.CommandContext(ctx, "apt-cache", "show", "--no-all-versions", pkg).Output()
	if err != nil {
		return "", false
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "SHA256: "); ok && len(strings.TrimSpace(v)) == 64 {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

// lockFile takes an exclusive lock on name, creating it if need be,
// waiting as long as another process holds it. It never follows a
// symbolic link planted in its place.
func lockFile(name string) (unlock func(), err error) {
	return privdir.Lock(context.Background(), name, syscall.LOCK_EX, nil)
}

// writePrivate writes data to name through a new temporary file in the
// same directory (created exclusively, 0600) and a rename, so that nothing
// planted at name, a symbolic link say, is followed.
func writePrivate(name string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp-*")
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(f.Name(), name)
	}
	if werr != nil {
		os.Remove(f.Name())
	}
	return werr
}

// download fetches k.Package with apt-get into a scratch folder of dir and
// extracts k.Member to img.
func (k Kernel) download(ctx context.Context, dir, img string) error {
	for _, tool := range []string{"apt-get", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			return &SetupError{
				Missing: fmt.Sprintf("kernel %s: %s not found, cannot download %s", k.Name, tool, k.Package),
				Fix:     fmt.Sprintf("on Debian run %s; elsewhere set %s to a kernel image with CONFIG_SCHED_CLASS_EXT=y", SetupCommand, EnvVmlinuz),
			}
		}
	}
	scratch, err := os.MkdirTemp(dir, "download-")
	if err != nil {
		return fmt.Errorf("vmtest: kernel cache: %w", err)
	}
	defer os.RemoveAll(scratch)

	var stderr bytes.Buffer
	// The sandbox option keeps apt quiet when root downloads into a folder
	// its _apt user cannot write.
	cmd := exec.CommandContext(ctx, "apt-get", "-q", "-o", "APT::Sandbox::User=root", "download", k.Package)
	cmd.Dir = scratch
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if strings.Contains(msg, "Unable to locate package") || strings.Contains(msg, "Can't select") ||
			strings.Contains(msg, "has no installation candidate") || strings.Contains(msg, "Couldn't find any package") {
			return &SetupError{
				Missing: fmt.Sprintf("kernel %s: package %s is not in apt's lists", k.Name, k.Package),
				Fix: fmt.Sprintf("run %s (it adds %s to apt); if it is still missing, Debian has dropped this version: "+
					"update the pin in vmtest/kernels.go or set %s to a local kernel image", SetupCommand, k.Suite, EnvVmlinuz),
				Err: errors.New(lastLine(msg)),
			}
		}
		return fmt.Errorf("vmtest: kernel %s: apt-get download %s: %w: %s", k.Name, k.Package, err, lastLine(msg))
	}
	debs, _ := filepath.Glob(filepath.Join(scratch, "*.deb"))
	if len(debs) != 1 {
		return fmt.Errorf("vmtest: kernel %s: apt-get download %s left %d .deb files, want 1", k.Name, k.Package, len(debs))
	}
	// apt-get verified the download against its signed lists; check it
	// once more against the checksum they give, and record it.
	debSum, err := fileSHA256(debs[0])
	if err != nil {
		return fmt.Errorf("vmtest: kernel %s: %w", k.Name, err)
	}
	if want, ok := aptSHA256(ctx, k.Package); !ok || want != debSum {
		return fmt.Errorf("vmtest: kernel %s: %s has SHA-256 %s, but apt lists %q for it: run apt-get update and try again",
			k.Name, filepath.Base(debs[0]), debSum, want)
	}
	tmp, err := os.CreateTemp(dir, ".vmlinuz.tmp-*")
	if err != nil {
		return fmt.Errorf("vmtest: kernel cache: %w", err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	if err := extractDebMember(ctx, debs[0], k.Member, tmp.Name()); err != nil {
		return fmt.Errorf("vmtest: kernel %s: %w", k.Name, err)
	}
	imgSum, err := fileSHA256(tmp.Name())
	if err != nil {
		return fmt.Errorf("vmtest: kernel cache: %w", err)
	}
	if err := os.Rename(tmp.Name(), img); err != nil {
		return fmt.Errorf("vmtest: kernel cache: %w", err)
	}
	m := manifest{Package: k.Package, DebSHA256: debSum, ImgSHA256: imgSum}
	if err := writePrivate(filepath.Join(dir, manifestName), []byte(m.String())); err != nil {
		return fmt.Errorf("vmtest: kernel cache: %w", err)
	}
	return nil
}

// extractDebMember copies one file of a .deb's data archive to dst. dpkg-deb
// does the decompression, whatever compressor the package used.
func extractDebMember(ctx context.Context, deb, member, dst string) error {
	cmd := exec.CommandContext(ctx, "dpkg-deb", "--fsys-tarfile", deb)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("dpkg-deb: %w", err)
	}
	found, copyErr := copyTarMember(pipe, member, dst)
	io.Copy(io.Discard, pipe) // let dpkg-deb finish writing
	waitErr := cmd.Wait()
	switch {
	case copyErr != nil:
		return fmt.Errorf("read %s: %w", filepath.Base(deb), copyErr)
	case waitErr != nil:
		return fmt.Errorf("dpkg-deb --fsys-tarfile %s: %w: %s", filepath.Base(deb), waitErr, lastLine(stderr.String()))
	case !found:
		return fmt.Errorf("%s has no %s: the package layout changed; fix Member in vmtest/kernels.go", filepath.Base(deb), member)
	}
	return nil
}

func copyTarMember(r io.Reader, member, dst string) (bool, error) {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if path.Clean(strings.TrimPrefix(hdr.Name, "./")) != member || hdr.Typeflag != tar.TypeReg {
			continue
		}
		f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW, 0o600)
		if err != nil {
			return false, err
		}
		if _, err := io.Copy(f, tr); err != nil {
			f.Close()
			return false, err
		}
		return true, f.Close()
	}
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
