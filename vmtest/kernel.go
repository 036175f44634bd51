package vmtest

import (
	"archive/tar"
	"bytes"
	"context"
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
)

// Environment variables that select kernels.
const (
	// EnvVmlinuz names a local kernel image to boot instead of the matrix.
	// The kernel needs CONFIG_SCHED_CLASS_EXT=y for sched_ext tests, and the
	// initramfs drivers vmtest relies on built in (serial 8250, tmpfs).
	EnvVmlinuz = "SCHEDKIT_VMLINUZ"
	// EnvKernels restricts the matrix to a comma-separated list of
	// Kernel.Name values, e.g. "7.3" or "6.16,7.3".
	EnvKernels = "SCHEDKIT_KERNELS"
	// EnvCache overrides the cache directory (default: the user cache
	// directory's schedkit folder).
	EnvCache = "SCHEDKIT_CACHE"
)

// Kernel is a kernel vmtest can boot: either a pinned Debian package, whose
// image is downloaded with apt on first use, or a local image.
type Kernel struct {
	Name    string // short name used in output and in SCHEDKIT_KERNELS, e.g. "7.3"
	Release string // what uname -r prints in the guest; empty if unknown
	Package string // Debian binary package that holds the image
	Suite   string // Debian suite that carries Package
	Member  string // path of the image inside the package
	Image   string // a local kernel image; when set, Package is not used
}

// Kernels returns the kernels to test on: the local image named by
// SCHEDKIT_VMLINUZ if set, else the entries of Matrix named in
// SCHEDKIT_KERNELS if set, else all of Matrix.
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
// $SCHEDKIT_CACHE, else the schedkit folder of os.UserCacheDir, else (no
// $HOME, as in some CI environments) a schedkit-cache folder in the
// temporary directory.
func CacheDir() (string, error) {
	if d := os.Getenv(EnvCache); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "schedkit-cache"), nil
	}
	return filepath.Join(d, "schedkit"), nil
}

// Vmlinuz returns the path of the kernel image, downloading and unpacking
// the package into the cache on first use. Concurrent callers (several test
// binaries) wait for one download.
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
	dir := filepath.Join(cache, "kernels", k.Package)
	img := filepath.Join(dir, "vmlinuz")
	if _, err := os.Stat(img); err == nil {
		return img, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("vmtest: kernel cache: %w", err)
	}
	unlock, err := lockFile(filepath.Join(dir, ".lock"))
	if err != nil {
		return "", fmt.Errorf("vmtest: kernel cache: %w", err)
	}
	defer unlock()
	if _, err := os.Stat(img); err == nil {
		return img, nil // another process finished the download
	}
	if err := k.download(ctx, dir, img); err != nil {
		return "", err
	}
	return img, nil
}

func lockFile(name string) (unlock func(), err error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	return func() { f.Close() }, nil
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
	tmp := img + ".tmp"
	if err := extractDebMember(ctx, debs[0], k.Member, tmp); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("vmtest: kernel %s: %w", k.Name, err)
	}
	if err := os.Rename(tmp, img); err != nil {
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
		f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
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
