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

func TestKernelsSelection(t *testing.T) {
	t.Setenv(EnvVmlinuz, "")
	t.Setenv(EnvKernels, "")
	all, err := Kernels()
	if err != nil || len(all) != len(Matrix) {
		t.Fatalf("Kernels() = %d kernels, %v; want the %d of Matrix", len(all), err, len(Matrix))
	}

	t.Setenv(EnvKernels, " 7.3 ,6.16")
	got, err := Kernels()
	if err != nil || len(got) != 2 || got[0].Name != "7.3" || got[1].Name != "6.16" {
		t.Errorf("SCXKIT_KERNELS=7.3,6.16: %v, %v", got, err)
	}

	t.Setenv(EnvKernels, "5.10")
	if _, err := Kernels(); err == nil || !strings.Contains(err.Error(), "known: 6.16, 7.0, 7.3") {
		t.Errorf("unknown kernel: error %v does not list the known names", err)
	}

	img := filepath.Join(t.TempDir(), "bzImage")
	os.WriteFile(img, []byte("not really"), 0o644)
	t.Setenv(EnvVmlinuz, img)
	got, err = Kernels()
	if err != nil || len(got) != 1 || got[0].Image != img || got[0].Name != "local" {
		t.Errorf("SCXKIT_VMLINUZ: %v, %v", got, err)
	}
	t.Setenv(EnvVmlinuz, img+".missing")
	if _, err := Kernels(); err == nil || !strings.Contains(err.Error(), EnvVmlinuz) {
		t.Errorf("missing SCXKIT_VMLINUZ image: error %v does not name the variable", err)
	}
}

func TestMatrixPins(t *testing.T) {
	for _, k := range Matrix {
		if k.Name == "" || k.Release == "" || k.Suite == "" || !strings.Contains(k.Package, k.Release) ||
			!strings.Contains(k.Member, "vmlinuz") {
			t.Errorf("inconsistent pin %+v", k)
		}
	}
}

// TestExtractDebMember builds a real .deb with dpkg-deb and extracts one
// member from it, as Vmlinuz does with a kernel package.
func TestExtractDebMember(t *testing.T) {
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("dpkg-deb not installed")
	}
	root := t.TempDir()
	pkg := filepath.Join(root, "pkg")
	for name, body := range map[string]string{
		"DEBIAN/control":                "Package: fake-kernel\nVersion: 1.0\nArchitecture: all\nMaintainer: scxkit <test@example.invalid>\nDescription: test\n",
		"usr/lib/modules/9.9.9/vmlinuz": "KERNEL IMAGE",
		"boot/config-9.9.9":             "CONFIG_SCHED_CLASS_EXT=y\n",
	} {
		p := filepath.Join(pkg, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	deb := filepath.Join(root, "fake.deb")
	if out, err := exec.Command("dpkg-deb", "--root-owner-group", "--build", pkg, deb).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb --build: %v\n%s", err, out)
	}
	dst := filepath.Join(root, "vmlinuz")
	if err := extractDebMember(context.Background(), deb, "usr/lib/modules/9.9.9/vmlinuz", dst); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(dst); string(b) != "KERNEL IMAGE" {
		t.Errorf("extracted %q", b)
	}
	err := extractDebMember(context.Background(), deb, "boot/vmlinuz-9.9.9", dst)
	if err == nil || !strings.Contains(err.Error(), "vmtest/kernels.go") {
		t.Errorf("missing member: error %v does not say what to fix", err)
	}
}

// TestMissingPackage asks apt for a package that does not exist and checks
// that the error says what to do.
func TestMissingPackage(t *testing.T) {
	if _, err := exec.LookPath("apt-get"); err != nil {
		t.Skip("apt-get not installed")
	}
	t.Setenv(EnvCache, t.TempDir())
	k := Kernel{Name: "gone", Package: "linux-image-0.0.1-scxkit-does-not-exist", Suite: "trixie-backports", Member: "boot/vmlinuz"}
	_, err := k.Vmlinuz(context.Background())
	var se *SetupError
	if !errors.As(err, &se) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("error %v (%T), want a *SetupError wrapping ErrUnavailable", err, err)
	}
	for _, want := range []string{k.Package, SetupCommand, EnvVmlinuz, "vmtest/kernels.go"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}
