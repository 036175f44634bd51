package kbtf

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf/btf"
	"github.com/klauspost/compress/zstd"

	"github.com/scxkit/scxkit/vmtest"
)

// fakeBzImage builds something shaped like a bzImage: a prefix with a decoy
// zstd magic, one zstd frame holding payload, then trailing bytes (the
// kernel build appends the decompressed size; here it is a wrong size plus
// a second decoy, which Vmlinux must ignore).
func fakeBzImage(t *testing.T, payload []byte) string {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	prefix := make([]byte, 4096)
	for i := range prefix {
		prefix[i] = byte(rng.Uint32())
	}
	copy(prefix[1000:], zstdMagic) // decoy: random bytes follow it

	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		t.Fatal(err)
	}
	frame := enc.EncodeAll(payload, nil)
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}

	var img bytes.Buffer
	img.Write(prefix)
	img.Write(frame)
	img.Write([]byte{0xff, 0xff, 0xff, 0x7f}) // implausible size
	img.Write(zstdMagic)
	img.WriteString("trailing garbage")

	name := filepath.Join(t.TempDir(), "vmlinuz")
	if err := os.WriteFile(name, img.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}

// elfPayload returns the bytes of an ELF on the host: any will do, Vmlinux
// only has to return them unchanged.
func elfPayload(t *testing.T) []byte {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, elfMagic) {
		t.Skipf("test binary %s is not an ELF", exe)
	}
	return b
}

func TestVmlinuxSynthetic(t *testing.T) {
	payload := elfPayload(t)
	got, err := Vmlinux(fakeBzImage(t, payload))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatalf("Vmlinux returned %d bytes, want the %d bytes of the compressed ELF", len(got), len(payload))
	}
}

func TestVmlinuxUncompressed(t *testing.T) {
	payload := elfPayload(t)
	name := filepath.Join(t.TempDir(), "vmlinux")
	if err := os.WriteFile(name, payload, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := Vmlinux(name)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatalf("Vmlinux returned %d bytes, want the ELF's %d bytes unchanged", len(got), len(payload))
	}
}

func TestVmlinuxNotELF(t *testing.T) {
	// A valid frame whose content is not an ELF is not a kernel.
	name := fakeBzImage(t, bytes.Repeat([]byte("not an elf "), 1000))
	_, err := Vmlinux(name)
	if err == nil {
		t.Fatal("Vmlinux succeeded on a frame that holds no ELF")
	}
	if !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "not an ELF") {
		t.Errorf("error %q should name %s and say the frame is not an ELF", err, name)
	}
}

func TestVmlinuxErrors(t *testing.T) {
	dir := t.TempDir()
	noMagic := filepath.Join(dir, "no-magic")
	if err := os.WriteFile(noMagic, bytes.Repeat([]byte("MZ kernel? "), 100), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Vmlinux(noMagic)
	if err == nil {
		t.Fatal("Vmlinux succeeded on a file without a zstd frame")
	}
	want := "no zstd-compressed kernel found in " + noMagic + " (is it a bzImage built with CONFIG_KERNEL_ZSTD?)"
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}

	missing := filepath.Join(dir, "missing")
	_, err = Vmlinux(missing)
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("Vmlinux(missing file) = %v, want an error wrapping os.ErrNotExist that names %s", err, missing)
	}

	if _, err := LoadSpec(noMagic); err == nil || !strings.Contains(err.Error(), noMagic) {
		t.Errorf("LoadSpec(%s) = %v, want an error naming the file", noMagic, err)
	}
}

// TestFrameLenTruncated checks that a frame cut short is reported, not
// decoded from memory past the end.
func TestFrameLenTruncated(t *testing.T) {
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	frame := enc.EncodeAll(bytes.Repeat([]byte("scxkit "), 50000), nil)
	enc.Close()
	n, _, err := frameLen(frame)
	if err != nil || n != len(frame) {
		t.Fatalf("frameLen(whole frame) = %d, %v; want %d, nil", n, err, len(frame))
	}
	for _, cut := range []int{5, len(frame) / 2, len(frame) - 1} {
		if n, _, err := frameLen(frame[:cut]); err == nil {
			t.Errorf("frameLen(frame[:%d]) = %d, nil; want an error", cut, n)
		}
	}
}

// TestMatrixBTF reads the BTF of each pinned kernel whose image is at hand
// and checks what scxkit relies on: sched_ext exists everywhere, and the
// kfunc generations differ as vmtest/kernels.go says.
func TestMatrixBTF(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the matrix kernels take a few seconds to decompress and parse")
	}
	const v2 = "scx_bpf_dsq_move_to_local___v2"
	wantV2 := map[string]bool{"6.16": false, "7.0": false, "7.3": true}
	for _, k := range vmtest.Matrix {
		t.Run(k.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			img, err := k.Vmlinuz(ctx)
			if err != nil {
				if os.Getenv("CI") == "true" {
					t.Fatalf("kernel %s: %v", k, err)
				}
				t.Skipf("kernel %s unavailable (CI=true makes this fail): %v", k, err)
			}
			spec, err := LoadSpec(img)
			if err != nil {
				t.Fatal(err)
			}

			var ops *btf.Struct
			if err := spec.TypeByName("sched_ext_ops", &ops); err != nil {
				t.Errorf("struct sched_ext_ops: %v", err)
			}

			want, known := wantV2[k.Name]
			if !known {
				t.Logf("no expectation for %s on kernel %s", v2, k.Name)
				return
			}
			var fn *btf.Func
			err = spec.TypeByName(v2, &fn)
			switch {
			case want && err != nil:
				t.Errorf("func %s: %v, want it on kernel %s", v2, err, k)
			case !want && err == nil:
				t.Errorf("func %s exists on kernel %s, want it only from 7.3 on", v2, k)
			case !want && !errors.Is(err, btf.ErrNotFound):
				t.Errorf("func %s: %v, want btf.ErrNotFound", v2, err)
			}
		})
	}
}
