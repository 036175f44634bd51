package scxkit_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// How the go:generate lines that build BPF objects start: bpf2go for
// test objects with one kfunc generation, scxkit gen for schedulers (both
// generations, the way a scheduler author's module builds them).
const (
	bpf2goDirective = "//go:generate go tool bpf2go "
	genDirective    = "//go:generate go run github.com/scxkit/scxkit/cmd/scxkit gen "
)

// directive is one go:generate line that builds BPF objects.
type directive struct {
	dir, file, pkg string
	gen            bool // scxkit gen, else bpf2go
	args           []string
}

// TestBPFObjectsUpToDate rebuilds every committed BPF object from its
// sources, as `go generate ./...` would, and fails if any generated file
// differs byte for byte from the committed one. Rebuilding happens in a
// copy of the sources at the same relative paths, because the objects'
// BTF line info names source files relative to the output directory.
//
// Objects must match byte for byte, or else up to BTF type order (see
// sameObject). That holds for the toolchain scripts/setup installs (Debian
// 12's clang-19, llvm-19, libbpf-dev 1.4 headers, bpftool 7.5); without it
// the test is skipped, unless CI=true.
func TestBPFObjectsUpToDate(t *testing.T) {
	for _, tool := range []string{"clang-19", "llvm-strip-19", "llvm-objdump-19", "bpftool", "/usr/include/bpf/bpf_helpers.h"} {
		if _, err := exec.LookPath(tool); err != nil {
			if _, serr := os.Stat(tool); serr == nil {
				continue
			}
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s missing: run scripts/setup", tool)
			}
			t.Skipf("%s missing (run scripts/setup): cannot rebuild BPF objects", tool)
		}
	}
	dirs := directives(t)
	if len(dirs) == 0 {
		t.Fatal("no bpf2go go:generate directives found")
	}
	checkEveryBPFSourceIsBuilt(t, dirs)

	tmp := t.TempDir()
	bpf2go := filepath.Join(tmp, "bin", "bpf2go")
	if out, err := exec.Command("go", "build", "-o", bpf2go, "github.com/cilium/ebpf/cmd/bpf2go").CombinedOutput(); err != nil {
		t.Fatalf("build bpf2go: %v\n%s", err, out)
	}
	scxkit := filepath.Join(tmp, "bin", "scxkit")
	if out, err := exec.Command("go", "build", "-o", scxkit, "./cmd/scxkit").CombinedOutput(); err != nil {
		t.Fatalf("build cmd/scxkit: %v\n%s", err, out)
	}
	mirror := filepath.Join(tmp, "src")
	copySources(t, mirror)

	for _, d := range dirs {
		cmd := exec.Command(bpf2go, d.args...)
		if d.gen {
			// The mirror holds no go.mod for gen to find the headers
			// through: name them. gen passes them to clang relative
			// to the output directory, as in the tree.
			args := append([]string{"gen", "-include", filepath.Join(mirror, "bpf", "include")}, d.args...)
			cmd = exec.Command(scxkit, args...)
		}
		cmd.Dir = filepath.Join(mirror, d.dir)
		cmd.Env = append(os.Environ(), "GOPACKAGE="+d.pkg, "GOFILE="+d.file)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s/%s: %s: %v\n%s", d.dir, d.file, strings.Join(cmd.Args, " "), err, out)
		}
	}
	err := filepath.WalkDir(mirror, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || !isGenerated(path) {
			return err
		}
		rel, _ := filepath.Rel(mirror, path)
		fresh, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		committed, err := os.ReadFile(rel)
		if errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s is generated but not in the tree: run go generate ./... and commit it", rel)
			return nil
		}
		if err != nil {
			return err
		}
		if bytes.Equal(fresh, committed) {
			return nil
		}
		if strings.HasSuffix(rel, ".o") {
			same, err := sameObject(t, path, rel)
			if err != nil {
				return err
			}
			if same {
				t.Logf("%s: equal up to BTF type order", rel)
				return nil
			}
		}
		t.Errorf("%s is stale: its sources changed; run go generate ./... (with the toolchain from scripts/setup) and commit the result", rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// sameObject compares two BPF objects up to the order of their BTF types.
//
// clang-19 does not always emit BTF types in the same order: forward
// declarations (struct cfs_rq; struct task_group; ...) come out in an order
// that changes with the absolute path of the source tree, so an object
// rebuilt in another directory can differ in a few type IDs while meaning
// exactly the same. Everything else is compared exactly: every section
// other than .BTF, .BTF.ext and their relocations byte for byte (the
// program instructions, maps, .rodata, struct_ops data), and the BTF as the
// blocks of its raw dump with type IDs replaced by names (btfLines).
func sameObject(t *testing.T, a, b string) (bool, error) {
	t.Helper()
	for _, render := range []func(string) (string, error){nonBTFSections, btfLines} {
		ra, err := render(a)
		if err != nil {
			return false, err
		}
		rb, err := render(b)
		if err != nil {
			return false, err
		}
		if ra != rb {
			return false, nil
		}
	}
	return true, nil
}

// nonBTFSections returns llvm-objdump's hex dump of every section except
// the BTF ones.
func nonBTFSections(obj string) (string, error) {
	out, err := exec.Command("llvm-objdump-19", "-s", obj).Output()
	if err != nil {
		return "", fmt.Errorf("llvm-objdump-19 -s %s: %w", obj, err)
	}
	var b strings.Builder
	skip := false
	for line := range strings.Lines(string(out)) {
		if name, ok := strings.CutPrefix(line, "Contents of section "); ok {
			name = strings.TrimSuffix(strings.TrimSpace(name), ":")
			skip = strings.HasPrefix(name, ".BTF") || strings.HasPrefix(name, ".rel.BTF")
		}
		if !skip && !strings.Contains(line, "file format") {
			b.WriteString(line)
		}
	}
	return b.String(), nil
}

// btfLines renders the object's BTF without type IDs: each type is one
// block (its line from bpftool's raw dump plus its member lines), every
// type_id=N reference is replaced by the kind and name of type N, and the
// blocks are sorted.
func btfLines(obj string) (string, error) {
	out, err := exec.Command("bpftool", "btf", "dump", "file", obj).Output()
	if err != nil {
		return "", fmt.Errorf("bpftool btf dump file %s: %w", obj, err)
	}
	header := regexp.MustCompile(`^\[(\d+)\] (\S+ '[^']*')`)
	ref := regexp.MustCompile(`type_id=(\d+)`)
	names := map[string]string{"0": "void"}
	var blocks []string
	for line := range strings.Lines(string(out)) {
		if m := header.FindStringSubmatch(line); m != nil {
			names[m[1]] = m[2]
			blocks = append(blocks, line)
		} else if len(blocks) > 0 {
			blocks[len(blocks)-1] += line
		}
	}
	for i, b := range blocks {
		b = header.ReplaceAllString(b, "$2")
		blocks[i] = ref.ReplaceAllStringFunc(b, func(r string) string {
			return "type=" + names[strings.TrimPrefix(r, "type_id=")]
		})
	}
	slices.Sort(blocks)
	return strings.Join(blocks, ""), nil
}

// isGenerated reports whether bpf2go writes files named like path.
func isGenerated(path string) bool {
	base := filepath.Base(path)
	return strings.Contains(base, "_bpfel") && (strings.HasSuffix(base, ".o") || strings.HasSuffix(base, ".go"))
}

// directives finds the go:generate lines of the module that build BPF
// objects.
func directives(t *testing.T) []directive {
	t.Helper()
	var out []directive
	err := filepath.WalkDir(".", func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() && (strings.HasPrefix(e.Name(), ".") && path != "." || e.Name() == "testdata") {
			return filepath.SkipDir
		}
		if e.IsDir() || !strings.HasSuffix(path, ".go") || isGenerated(path) {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil || !bytes.Contains(data, []byte(bpf2goDirective)) && !bytes.Contains(data, []byte(genDirective)) {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, data, parser.PackageClauseOnly)
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			d := directive{dir: filepath.Dir(path), file: filepath.Base(path), pkg: f.Name.Name}
			rest, ok := strings.CutPrefix(sc.Text(), bpf2goDirective)
			if !ok {
				rest, ok = strings.CutPrefix(sc.Text(), genDirective)
				d.gen = true
			}
			if ok {
				d.args = strings.Fields(rest)
				out = append(out, d)
			}
		}
		return sc.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkEveryBPFSourceIsBuilt fails for a *.bpf.c file that no directive
// compiles: its object would silently be missing.
func checkEveryBPFSourceIsBuilt(t *testing.T, dirs []directive) {
	t.Helper()
	built := make(map[string]bool)
	for _, d := range dirs {
		for _, a := range d.args {
			if strings.HasSuffix(a, ".bpf.c") {
				built[filepath.Join(d.dir, a)] = true
			}
		}
	}
	sources, _ := filepath.Glob("*/*.bpf.c")
	more, _ := filepath.Glob("*/*/*.bpf.c")
	deeper, _ := filepath.Glob("*/*/*/*.bpf.c")
	for _, src := range append(append(sources, more...), deeper...) {
		if !built[src] {
			t.Errorf("%s has no go:generate directive (scxkit gen or bpf2go)", src)
		}
	}
}

// copySources copies what the BPF compiler reads (C sources and headers)
// into dst at the same relative paths.
func copySources(t *testing.T, dst string) {
	t.Helper()
	err := filepath.WalkDir(".", func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			if strings.HasPrefix(e.Name(), ".") && path != "." {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".c") && !strings.HasSuffix(path, ".h") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, path)
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}
