package vmtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestGuestTestArgs(t *testing.T) {
	in := []string{
		"-test.paniconexit0", "-test.timeout=10m0s", "-test.v=test2json",
		"-test.testlogfile=/tmp/go-build1/testlog.txt", "-test.run", "^TestX$",
		"-test.coverprofile", "/tmp/c.out", "-test.count=2", "--test.outputdir=/x", "-test.short",
	}
	want := []string{
		"-test.paniconexit0", "-test.timeout=10m0s", "-test.v=test2json",
		"-test.run", "^TestX$", "-test.count=2", "-test.short",
	}
	if diff := cmp.Diff(want, guestTestArgs(in)); diff != "" {
		t.Errorf("guestTestArgs (-want +got):\n%s", diff)
	}
}

func TestTestdataFiles(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "td/sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "td/a.txt"), []byte("a"), 0o644)
	os.WriteFile(filepath.Join(dir, "td/sub/b.bin"), []byte("b"), 0o644)
	os.Symlink("a.txt", filepath.Join(dir, "td/link"))
	files, err := testdataFiles(filepath.Join(dir, "td"), "/vmtest/pkg/testdata")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		got = append(got, f.Guest+" <- "+strings.TrimPrefix(f.Host, dir))
	}
	want := []string{
		"/vmtest/pkg/testdata/a.txt <- /td/a.txt",
		"/vmtest/pkg/testdata/sub/b.bin <- /td/sub/b.bin",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("testdata files (-want +got):\n%s", diff)
	}
	if files, err := testdataFiles(filepath.Join(dir, "none"), "/x"); err != nil || len(files) != 0 {
		t.Errorf("missing testdata: %v, %v; want nothing, no error", files, err)
	}
}

func TestConsoleStream(t *testing.T) {
	var b strings.Builder
	c := &consoleStream{w: &b, prefix: "console[7.3]: "}
	for _, l := range []string{"[0.0] Linux version\n", "[3.8] Run /init as init process\n", "[4.0] sched_ext: enabled\n"} {
		c.Write([]byte(l))
	}
	if want := "console[7.3]: [4.0] sched_ext: enabled\n"; b.String() != want {
		t.Errorf("streamed %q, want %q", b.String(), want)
	}
}
