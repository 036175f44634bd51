package scxkit_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// headerDir holds the C headers of scxkit: *.h the structs shared with Go,
// *.bpf.h the BPF code.
const headerDir = "bpf/include/scxkit"

// prerequisitesRE matches the line of a header's leading comment that
// names what must be included before it, e.g.
//
//   - Prerequisites: vmlinux.h, <bpf/bpf_helpers.h>, <bpf/bpf_core_read.h>
var prerequisitesRE = regexp.MustCompile(`^\s*\*\s*Prerequisites:(.*)$`)

// TestHeadersSelfContained compiles every header of bpf/include/scxkit
// alone, the way the gen.go files compile BPF code (clang-19, -I
// bpf/include, where vmlinux.h is): a generated C file includes vmlinux.h
// (with BPF_NO_KFUNC_PROTOTYPES, as scx.bpf.h has it), then what the
// header's "Prerequisites:" line names in angle brackets, then the header,
// once per kfunc generation (with and without SCXKIT_KFUNC_V2). A header
// without that line needs scx.bpf.h, the one header every scheduler
// includes first, if it is BPF code (*.bpf.h), and nothing if it holds
// shared structs (*.h). So a header that leans on something its includer
// happened to include before fails here, naming the header.
//
// Without clang-19 the test is skipped, unless CI=true.
func TestHeadersSelfContained(t *testing.T) {
	clang, err := exec.LookPath("clang-19")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("clang-19 missing: run scripts/setup")
		}
		t.Skip("clang-19 missing (run scripts/setup): cannot compile the BPF headers")
	}
	include, err := filepath.Abs("bpf/include")
	if err != nil {
		t.Fatal(err)
	}
	headers, err := filepath.Glob(filepath.Join(headerDir, "*.h"))
	if err != nil || len(headers) == 0 {
		t.Fatalf("no headers in %s: %v", headerDir, err)
	}
	tmp := t.TempDir()
	for _, h := range headers {
		name := filepath.Base(h)
		prereqs, err := prerequisites(h)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var src strings.Builder
			src.WriteString("#define BPF_NO_KFUNC_PROTOTYPES\n#include <vmlinux.h>\n")
			for _, p := range prereqs {
				fmt.Fprintf(&src, "#include <%s>\n", p)
			}
			fmt.Fprintf(&src, "#include <scxkit/%s>\n", name)
			for _, gen := range []string{"", "-DSCXKIT_KFUNC_V2"} {
				base := filepath.Join(tmp, strings.ReplaceAll(name, ".", "_")+strings.TrimPrefix(gen, "-D"))
				if err := os.WriteFile(base+".c", []byte(src.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				args := []string{"-target", "bpf", "-O2", "-mcpu=v3", "-Wno-missing-declarations", "-I", include}
				if gen != "" {
					args = append(args, gen)
				}
				args = append(args, "-c", base+".c", "-o", base+".o")
				if out, err := exec.Command(clang, args...).CombinedOutput(); err != nil {
					t.Errorf("%s does not compile alone after vmlinux.h%s (%s kfuncs): %v\n%s\n%s",
						h, listed(prereqs), generation(gen), err, src.String(), errorLines(out))
				}
			}
		})
	}
}

// prerequisites returns the includes that header h documents as its
// prerequisites (see TestHeadersSelfContained), vmlinux.h aside.
func prerequisites(h string) ([]string, error) {
	data, err := os.ReadFile(h)
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if m := prerequisitesRE.FindStringSubmatch(sc.Text()); m != nil {
			var out []string
			for _, inc := range regexp.MustCompile(`<([^>]+)>`).FindAllStringSubmatch(m[1], -1) {
				out = append(out, inc[1])
			}
			return out, nil
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if strings.HasSuffix(h, ".bpf.h") && filepath.Base(h) != "scx.bpf.h" {
		return []string{"scxkit/scx.bpf.h"}, nil
	}
	return nil, nil
}

func listed(prereqs []string) string {
	var b strings.Builder
	for _, p := range prereqs {
		fmt.Fprintf(&b, ", <%s>", p)
	}
	return b.String()
}

func generation(flag string) string {
	if flag == "" {
		return "base"
	}
	return "v2"
}

// errorLines keeps clang's errors and their context, not the warnings
// vmlinux.h always gives.
func errorLines(out []byte) string {
	var b strings.Builder
	keep := false
	for line := range strings.Lines(string(out)) {
		if strings.Contains(line, ": warning: ") {
			keep = false
		} else if strings.Contains(line, ": error: ") {
			keep = true
		}
		if keep {
			b.WriteString(line)
		}
	}
	return b.String()
}
