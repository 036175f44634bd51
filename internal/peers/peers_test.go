package peers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

func TestValidateName(t *testing.T) {
	for _, name := range Names {
		if err := ValidateName(name); err != nil {
			t.Errorf("ValidateName(%q) = %v, want nil", name, err)
		}
	}
	for _, name := range []string{"", "simple", "scx_nope", "../scx_simple", "scx_simple ", "SCX_SIMPLE"} {
		err := ValidateName(name)
		if !errors.Is(err, ErrUnknown) {
			t.Errorf("ValidateName(%q) = %v, want ErrUnknown", name, err)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, fmt.Sprintf("%q", name)) || !strings.Contains(msg, "scx_simple, ") {
			t.Errorf("ValidateName(%q): %q should quote the name and list the peers", name, msg)
		}
	}
}

func TestCacheKey(t *testing.T) {
	src := Source{Package: "linux-source-7.3", Tarball: "/usr/src/linux-source-7.3.tar.xz", Version: "7.3.4-1~bpo13+1"}
	const sum = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	key := cacheKey(src, sum)
	if want := fmt.Sprintf("linux-source-7.3_7.3.4-1~bpo13+1-btf-0123456789ab-r%d", recipe); key != want {
		t.Errorf("cacheKey = %q, want %q", key, want)
	}
	if cacheKey(src, sum) != key {
		t.Error("cacheKey is not deterministic")
	}
	// The tarball's path is not part of the key: the version is.
	moved := src
	moved.Tarball = "/elsewhere/linux-source-7.3.tar.xz"
	if cacheKey(moved, sum) != key {
		t.Error("the key depends on where the tarball is")
	}
	newer := src
	newer.Version = "7.3.5-1~bpo13+1"
	otherBTF := "f" + sum[1:]
	for _, k := range []string{cacheKey(newer, sum), cacheKey(src, otherBTF)} {
		if k == key {
			t.Errorf("a different source or BTF image gives the same key %q", k)
		}
	}
	odd := Source{Package: "linux-source-7.3", Version: "../a b/c:d"}
	if k := cacheKey(odd, sum); strings.ContainsAny(k, "/ :") || k != filepath.Base(k) {
		t.Errorf("cacheKey(%q) = %q: not a plain file name", odd.Version, k)
	}
}

// TestMissingSource: without the tarball the error wraps ErrNoSource
// and names the package and the fix.
func TestMissingSource(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "linux-source-9.9.tar.xz")
	_, err := findSource(context.Background(), "linux-source-9.9", missing)
	if !errors.Is(err, ErrNoSource) {
		t.Fatalf("findSource of a missing tarball: %v, want ErrNoSource", err)
	}
	for _, want := range []string{"linux-source-9.9 is not installed", "run scripts/setup", "apt-get install linux-source-9.9/trixie-backports", missing} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	src := Source{Package: "linux-source-9.9", Tarball: missing, Version: "1"}
	_, err = Build(context.Background(), []string{"scx_simple"}, &Options{Source: src, BTF: missing, CacheDir: t.TempDir()})
	if !errors.Is(err, ErrNoSource) || !strings.Contains(err.Error(), "run scripts/setup") {
		t.Errorf("Build from a missing tarball: %v, want ErrNoSource naming scripts/setup", err)
	}
	_, err = Build(context.Background(), []string{"scx_nope"}, &Options{Source: src})
	if !errors.Is(err, ErrUnknown) {
		t.Errorf("Build of an unknown peer: %v, want ErrUnknown before anything else", err)
	}
}

// TestUnpackagedSource: a tarball no package owns is keyed by its size
// and time.
func TestUnpackagedSource(t *testing.T) {
	tarball := filepath.Join(t.TempDir(), "linux-source-9.9.tar.xz")
	if err := os.WriteFile(tarball, []byte("12345"), 0o644); err != nil {
		t.Fatal(err)
	}
	mtime := time.Unix(1700000000, 0)
	if err := os.Chtimes(tarball, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	src, err := findSource(context.Background(), "scxkit-no-such-package", tarball)
	if err != nil {
		t.Fatal(err)
	}
	if want := "file-5-1700000000"; src.Version != want || src.root() != "linux-source-9.9" {
		t.Errorf("version %q, root %q; want %q, linux-source-9.9", src.Version, src.root(), want)
	}
}

func TestCheckToolchain(t *testing.T) {
	saved := toolchain
	t.Cleanup(func() { toolchain = saved })
	toolchain = append(saved[:1:1], struct{ file, pkg string }{"scxkit-no-such-tool", "tool-pkg"},
		struct{ file, pkg string }{"/no/such/header.h", "libheader-dev"})
	err := checkToolchain()
	if err == nil {
		t.Fatal("checkToolchain found tools that do not exist")
	}
	for _, want := range []string{"scxkit-no-such-tool, /no/such/header.h", "run scripts/setup", "apt-get install tool-pkg libheader-dev"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// fakeBzImage returns something shaped like a bzImage holding payload:
// random setup bytes, a decoy zstd magic, the zstd frame, the size the
// kernel build appends.
func fakeBzImage(t *testing.T, payload []byte) []byte {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 4))
	var img bytes.Buffer
	for range 2048 {
		img.WriteByte(byte(rng.Uint32()))
	}
	img.Write([]byte{0x28, 0xb5, 0x2f, 0xfd, 0, 0}) // decoy
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	img.Write(enc.EncodeAll(payload, nil))
	enc.Close()
	img.Write([]byte{byte(len(payload)), byte(len(payload) >> 8), 0, 0})
	return img.Bytes()
}

// TestWriteBTF: what VMLINUX_BTF gets from a bzImage is the ELF inside;
// raw BTF and an ELF pass as they are; anything else is an error naming
// the image.
func TestWriteBTF(t *testing.T) {
	dir := t.TempDir()
	elfData := append([]byte("\x7fELF\x02\x01\x01"), bytes.Repeat([]byte("vmlinux "), 500)...)
	rawBTF := append([]byte{0x9f, 0xeb, 1, 0}, bytes.Repeat([]byte{7}, 100)...)
	for _, tt := range []struct {
		name      string
		image     []byte
		want      []byte
		wantError string
	}{
		{"bzImage", fakeBzImage(t, elfData), elfData, ""},
		{"vmlinux", elfData, elfData, ""},
		{"raw BTF", rawBTF, rawBTF, ""},
		{"garbage", []byte("not a kernel at all"), nil, "no zstd-compressed kernel"},
		{"empty", nil, nil, "no zstd-compressed kernel"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			image := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
			if err := os.WriteFile(image, tt.image, 0o644); err != nil {
				t.Fatal(err)
			}
			dst := image + ".out"
			err := writeBTF(image, dst)
			if tt.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantError) || !strings.Contains(err.Error(), image) {
					t.Errorf("writeBTF: %v, want an error naming %s with %q", err, image, tt.wantError)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(dst)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Errorf("wrote %d bytes %.16q, want %d bytes %.16q", len(got), got, len(tt.want), tt.want)
			}
		})
	}
	if err := writeBTF(filepath.Join(dir, "missing"), filepath.Join(dir, "x")); err == nil {
		t.Error("writeBTF of a missing image succeeded")
	}
}

// fakeMakefile stands in for tools/sched_ext/Makefile: it checks make's
// command line and that only the folders the build needs were extracted,
// builds scx_simple and scx_pair as scripts that print their names after
// delay (sleep's argument), logs each build to count, and fails
// scx_flatcg.
const fakeMakefile = `all: scx_simple scx_pair scx_flatcg
scx_simple scx_pair:
	test "$(LLVM)" = "-19"
	test -e ../../kernel/bpf/disasm.c && test ! -e ../../drivers
	cmp "$(VMLINUX_BTF)" %[1]s
	sleep %[3]s
	mkdir -p build/bin
	printf '#!/bin/sh\necho $@\n' >build/bin/$@
	chmod +x build/bin/$@
	echo $@ >>%[2]s
scx_flatcg:
	@echo "scx_flatcg.bpf.c:1: error: synthetic failure" >&2; exit 1
`

// fakeSource writes a tarball shaped like linux-source's, with
// fakeMakefile, and the kernel image the build must be given; count is
// the file the fake build appends to.
func fakeSource(t *testing.T, delay string) (src Source, image, count string) {
	t.Helper()
	dir := t.TempDir()
	elfData := append([]byte("\x7fELF\x02\x01\x01"), bytes.Repeat([]byte("fake vmlinux "), 100)...)
	image = filepath.Join(dir, "vmlinuz")
	if err := os.WriteFile(image, fakeBzImage(t, elfData), 0o644); err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(dir, "vmlinux.want")
	if err := os.WriteFile(want, elfData, 0o644); err != nil {
		t.Fatal(err)
	}
	count = filepath.Join(dir, "count")
	tree := filepath.Join(dir, "tree", "linux-source-9.9")
	files := map[string]string{
		"tools/sched_ext/Makefile": fmt.Sprintf(fakeMakefile, want, count, delay),
		"include/linux/x.h":        "",
		"scripts/bpf_doc.py":       "",
		"kernel/bpf/disasm.c":      "",
		"drivers/not/needed.c":     "",
	}
	for name, data := range files {
		p := filepath.Join(tree, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tarball := filepath.Join(dir, "linux-source-9.9.tar.xz")
	if out, err := exec.Command("tar", "-cJf", tarball, "-C", filepath.Dir(tree), "linux-source-9.9").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	return Source{Package: "linux-source-9.9", Tarball: tarball, Version: "9.9.1-1"}, image, count
}

// fakeToolchain limits the toolchain check to what the fake build runs.
func fakeToolchain(t *testing.T) {
	saved := toolchain
	t.Cleanup(func() { toolchain = saved })
	toolchain = saved[:3] // tar, xz, make
	if err := checkToolchain(); err != nil {
		t.Skipf("the fake build needs tar, xz and make: %v", err)
	}
}

// TestBuildFake runs Build's whole path on a fake source: extraction of
// the needed folders only, the BTF image handed to make as an ELF, the
// programs cached, a failed peer reported with its log, and a second call
// answered from the cache without a word.
func TestBuildFake(t *testing.T) {
	fakeToolchain(t)
	src, image, count := fakeSource(t, "0")
	cache := filepath.Join(t.TempDir(), "peers")
	var log bytes.Buffer
	o := &Options{Source: src, BTF: image, CacheDir: cache, Log: &log}
	ps, err := Build(context.Background(), []string{"scx_pair", "scx_simple"}, o)
	if err != nil {
		t.Fatalf("Build: %v\nlog:\n%s", err, log.String())
	}
	if len(ps) != 2 || ps[0].Name != "scx_pair" || ps[1].Name != "scx_simple" {
		t.Fatalf("Build returned %+v, want scx_pair then scx_simple", ps)
	}
	for _, p := range ps {
		if !strings.HasPrefix(p.Path, cache+string(filepath.Separator)) {
			t.Errorf("%s at %s, outside the cache %s", p.Name, p.Path, cache)
		}
		out, err := exec.Command(p.Path).Output()
		if err != nil || strings.TrimSpace(string(out)) != p.Name {
			t.Errorf("%s printed %q (%v), want its name", p.Path, out, err)
		}
	}
	for _, want := range []string{"peers: building", "linux-source-9.9 9.9.1-1", "scx_cpu0, scx_flatcg, scx_sdt, scx_userland did not build (make: exit status 2)", "peers: built 2 schedulers"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log.String())
		}
	}
	dir := filepath.Dir(ps[0].Path)
	if _, err := os.Stat(filepath.Join(dir, "linux-source-9.9")); err == nil {
		t.Error("the cached set holds the source tree")
	}
	if leftovers, _ := filepath.Glob(filepath.Join(cache, ".build-*")); len(leftovers) > 0 {
		t.Errorf("scratch folders left behind: %v", leftovers)
	}

	// Second call: from the cache, silently, without running make.
	log.Reset()
	start := time.Now()
	again, err := Build(context.Background(), []string{"scx_simple"}, o)
	if err != nil || len(again) != 1 || again[0] != ps[1] {
		t.Fatalf("second Build: %+v, %v; want %+v", again, err, ps[1])
	}
	if log.Len() > 0 || time.Since(start) > 2*time.Second {
		t.Errorf("cache hit took %v and logged %q: want quick and silent", time.Since(start), log.String())
	}
	if b, _ := os.ReadFile(count); string(b) != "scx_simple\nscx_pair\n" && string(b) != "scx_pair\nscx_simple\n" {
		t.Errorf("make built %q, want each program once", b)
	}

	// The peer that failed: an error that points at the log, which says why.
	_, err = Build(context.Background(), []string{"scx_flatcg"}, o)
	if err == nil || !strings.Contains(err.Error(), "scx_flatcg did not build") || !strings.Contains(err.Error(), logName) {
		t.Fatalf("Build of a failed peer: %v, want an error naming the build log", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, logName)); !bytes.Contains(b, []byte("synthetic failure")) {
		t.Errorf("build log lacks make's output:\n%s", b)
	}

	// A set from before a peer joined Names is built again.
	m, err := os.ReadFile(filepath.Join(dir, manifestName))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, manifestName), bytes.ReplaceAll(m, []byte(" scx_userland"), nil), 0o644); err != nil {
		t.Fatal(err)
	}
	log.Reset()
	if _, err := Build(context.Background(), []string{"scx_simple"}, o); err != nil || !strings.Contains(log.String(), "peers: building") {
		t.Errorf("Build over a set that lacks a peer: %v, log %q; want a new build", err, log.String())
	}
	if b, _ := os.ReadFile(count); strings.Count(string(b), "scx_simple") != 2 {
		t.Errorf("make built %q, want scx_simple twice by now", b)
	}
}

// TestBuildRace: processes (here goroutines, each with its own lock
// file descriptor, as flock counts them) that ask for the same peers at
// once build them once and all get the same programs.
func TestBuildRace(t *testing.T) {
	fakeToolchain(t)
	src, image, count := fakeSource(t, "1")
	cache := t.TempDir()
	const n = 3
	var wg sync.WaitGroup
	paths := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ps, err := Build(context.Background(), []string{"scx_simple"}, &Options{Source: src, BTF: image, CacheDir: cache})
			if err == nil {
				paths[i] = ps[0].Path
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || paths[i] != paths[0] {
			t.Errorf("build %d: %q, %v; want %q", i, paths[i], errs[i], paths[0])
		}
	}
	if b, _ := os.ReadFile(count); strings.Count(string(b), "scx_simple") != 1 {
		t.Errorf("make ran %d times for scx_simple, want once:\n%s", strings.Count(string(b), "scx_simple"), b)
	}
}

// TestBuildCancel: cancelling stops make at once and leaves nothing in
// the cache, so the next call builds afresh.
func TestBuildCancel(t *testing.T) {
	fakeToolchain(t)
	src, image, _ := fakeSource(t, "60")
	cache := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	_, err := Build(ctx, []string{"scx_simple"}, &Options{Source: src, BTF: image, CacheDir: cache})
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Build with a deadline: %v, want it interrupted", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("Build took %v to stop after its deadline", d)
	}
	entries, _ := os.ReadDir(cache)
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".lock") {
			t.Errorf("left in the cache: %s", e.Name())
		}
	}
}

// TestBuildNothing: a build that makes no program (here: the BTF image
// is not the one the fake Makefile wants) is an error with the log's tail
// and the fix, and caches nothing.
func TestBuildNothing(t *testing.T) {
	fakeToolchain(t)
	src, _, _ := fakeSource(t, "0")
	cache := t.TempDir()
	other := filepath.Join(t.TempDir(), "vmlinux")
	if err := os.WriteFile(other, []byte("\x7fELF another kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Build(context.Background(), []string{"scx_flatcg"}, &Options{Source: src, BTF: other, CacheDir: cache})
	if err == nil {
		t.Fatal("Build succeeded though make built nothing")
	}
	for _, want := range []string{"building linux-source-9.9's tools/sched_ext failed", "synthetic failure", "run scripts/setup"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if sets, _ := filepath.Glob(filepath.Join(cache, "linux-source-9.9_*-r*[0-9]")); len(sets) > 0 {
		t.Errorf("a failed build was cached: %v", sets)
	}
}
