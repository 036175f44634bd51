package vmtest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakePackage names a kernel package that no apt source carries, so that
// apt can neither vouch for it nor download it.
var fakePackage = Kernel{Name: "fake", Package: "linux-image-0.0.1-scxkit-cache-test", Suite: "none", Member: "boot/vmlinuz"}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create files owned by another user")
	}
}

// withoutHome makes CacheDir fall back to the temporary directory, as
// under systemd or env -i.
func withoutHome(t *testing.T) string {
	t.Helper()
	tmp := t.TempDir()
	t.Setenv("HOME", "")
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv(EnvCache, "")
	t.Setenv("TMPDIR", tmp)
	return tmp
}

// TestCacheFallbackIsPrivate: without HOME the cache goes to a folder of
// this user's in the temporary directory, created 0700.
func TestCacheFallbackIsPrivate(t *testing.T) {
	tmp := withoutHome(t)
	dir, err := CacheDir()
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(dir) != tmp || !strings.Contains(filepath.Base(dir), "scxkit-cache-") {
		t.Fatalf("CacheDir() = %s, want a per-user folder in %s", dir, tmp)
	}
	if err := privateDir(dir); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("cache folder mode %v (%v), want 0700", fi.Mode().Perm(), err)
	}
}

// TestPlantedCacheRefused: another user creates the fallback cache folder
// first and plants a kernel in it. vmtest must refuse the folder, not boot
// the planted image.
func TestPlantedCacheRefused(t *testing.T) {
	requireRoot(t)
	withoutHome(t)
	dir, err := CacheDir()
	if err != nil {
		t.Fatal(err)
	}
	pkgDir := filepath.Join(dir, "kernels", fakePackage.Package)
	if err := os.MkdirAll(pkgDir, 0o777); err != nil {
		t.Fatal(err)
	}
	planted := filepath.Join(pkgDir, "vmlinuz")
	os.WriteFile(planted, []byte("attacker's kernel"), 0o644)
	for _, p := range []string{dir, filepath.Join(dir, "kernels"), pkgDir, planted} {
		os.Chown(p, 65534, 65534) // nobody
		os.Chmod(p, 0o777)
	}
	img, err := fakePackage.Vmlinuz(context.Background())
	if err == nil || img == planted {
		t.Fatalf("Vmlinuz() = %q, %v: the planted image was accepted", img, err)
	}
	if !errors.Is(err, ErrUnsafeCache) || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), EnvCache) {
		t.Errorf("error %q: want ErrUnsafeCache naming %s and the fix (%s)", err, dir, EnvCache)
	}
}

func TestPrivateDirChecks(t *testing.T) {
	requireRoot(t)
	base := t.TempDir()
	own := filepath.Join(base, "own")
	if err := privateDir(own); err != nil {
		t.Fatalf("a fresh folder: %v", err)
	}
	others := filepath.Join(base, "others")
	os.Mkdir(others, 0o700)
	os.Chown(others, 65534, 65534)
	writable := filepath.Join(base, "writable")
	os.Mkdir(writable, 0o700)
	os.Chmod(writable, 0o777)
	link := filepath.Join(base, "link")
	os.Symlink(own, link)
	file := filepath.Join(base, "file")
	os.WriteFile(file, nil, 0o600)
	for name, want := range map[string]string{
		others: "owned by uid 65534", writable: "writable by other users", link: "symbolic link",
	} {
		err := privateDir(name)
		if !errors.Is(err, ErrUnsafeCache) || !strings.Contains(err.Error(), want) {
			t.Errorf("privateDir(%s) = %v, want ErrUnsafeCache saying %q", filepath.Base(name), err, want)
		}
	}
	if err := privateDir(file); err == nil {
		t.Errorf("privateDir accepted a regular file")
	}
}

// TestPlantedLockSymlink: a .lock symbolic link must not make vmtest
// create or truncate the file it points to.
func TestPlantedLockSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "victim")
	lock := filepath.Join(dir, ".lock")
	os.Symlink(target, lock)
	if unlock, err := lockFile(lock); err == nil {
		unlock()
		t.Errorf("lockFile followed a symbolic link")
	}
	if _, err := os.Lstat(target); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the link's target was created (%v)", err)
	}
}

// TestWritePrivateReplacesLink: kvm-broken and the manifest are written
// through a new file and a rename, never through a planted link.
func TestWritePrivateReplacesLink(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	os.WriteFile(victim, []byte("keep me"), 0o644)
	name := filepath.Join(dir, "kvm-broken")
	os.Symlink(victim, name)
	if err := writePrivate(name, []byte("verdict")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep me" {
		t.Errorf("the link's target was overwritten: %q", b)
	}
	if fi, err := os.Lstat(name); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: %v, %v; want a regular 0600 file", name, fi.Mode(), err)
	}
	if b, err := readPrivate(victim, 100); err != nil || string(b) != "keep me" {
		t.Errorf("readPrivate(victim) = %q, %v", b, err)
	}
	os.Symlink(victim, filepath.Join(dir, "link2"))
	if _, err := readPrivate(filepath.Join(dir, "link2"), 100); err == nil {
		t.Errorf("readPrivate followed a link")
	}
}

// TestCachedImageVerified: a cached image is used only when it matches
// its manifest; one without a manifest, or changed since, is fetched
// again (here the fetch fails, as apt has no such package).
func TestCachedImageVerified(t *testing.T) {
	if _, err := exec.LookPath("apt-get"); err != nil {
		t.Skip("apt-get not installed")
	}
	cache := t.TempDir()
	t.Setenv(EnvCache, cache)
	dir := filepath.Join(cache, "kernels", fakePackage.Package)
	os.MkdirAll(dir, 0o700)
	img := filepath.Join(dir, "vmlinuz")
	os.WriteFile(img, []byte("kernel image"), 0o600)

	if got, err := fakePackage.Vmlinuz(context.Background()); err == nil {
		t.Fatalf("an image without a manifest was used: %s", got)
	}
	sum, _ := fileSHA256(img)
	m := manifest{Package: fakePackage.Package, DebSHA256: strings.Repeat("0", 64), ImgSHA256: sum}
	os.WriteFile(filepath.Join(dir, manifestName), []byte(m.String()), 0o600)
	if got, err := fakePackage.Vmlinuz(context.Background()); err != nil || got != img {
		t.Fatalf("an image matching its manifest: %q, %v", got, err)
	}
	os.WriteFile(img, []byte("changed image"), 0o600)
	if got, err := fakePackage.Vmlinuz(context.Background()); err == nil {
		t.Fatalf("an image changed after its manifest was used: %s", got)
	}
}

// TestCachedKernelsVerify checks the real cache: each pinned kernel that
// is cached must match its manifest, and the manifest's .deb sum must be
// the one apt lists (when it still lists the package).
func TestCachedKernelsVerify(t *testing.T) {
	if _, err := exec.LookPath("apt-cache"); err != nil {
		t.Skip("apt-cache not installed")
	}
	cache, err := CacheDir()
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, k := range Matrix {
		dir := filepath.Join(cache, "kernels", k.Package)
		if _, err := os.Stat(filepath.Join(dir, manifestName)); err != nil {
			continue
		}
		checked++
		if err := k.cached(dir); err != nil {
			t.Errorf("kernel %s: %v", k.Name, err)
		}
		b, _ := os.ReadFile(filepath.Join(dir, manifestName))
		m, err := parseManifest(b)
		if want, ok := aptSHA256(context.Background(), k.Package); ok && (err != nil || m.DebSHA256 != want) {
			t.Errorf("kernel %s: manifest's .deb SHA-256 %q, apt lists %s", k.Name, m.DebSHA256, want)
		}
	}
	if checked == 0 {
		t.Skip("no pinned kernel is cached yet")
	}
}
