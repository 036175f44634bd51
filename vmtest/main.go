package vmtest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Environment variables that steer Main.
const (
	// EnvHost, set to 1, makes Main run the tests directly on the host,
	// for a host that has sched_ext itself.
	EnvHost = "SCXKIT_VMTEST_HOST"
	// EnvConsole, set to "all", streams the whole kernel console (boot
	// included) to stderr; by default -test.v streams it from the start
	// of init on, and a failure prints its last lines.
	EnvConsole = "SCXKIT_VMTEST_CONSOLE"
)

// Config configures Main. The zero value runs the tests on every kernel of
// Kernels() in a VM with 2 vCPUs and 1 GiB.
type Config struct {
	Topology  Topology
	MemoryMiB int
	Cmdline   []string // extra kernel command line arguments
	Files     []File   // extra files for the guest
	Env       []string // extra environment for the tests, KEY=VALUE
	Kernels   []Kernel // nil: Kernels()
	// Timeout limits each VM. The default is the test binary's
	// -test.timeout plus two minutes for boot and power-off, or 12 minutes
	// without one.
	Timeout time.Duration
	// Exclusive runs each of the package's guests alone among this
	// user's vmtest guests (VM.Exclusive): it waits for the guests of
	// other packages (go test runs packages in parallel) to end, and they
	// wait for it. For tests that compare timings within a run on many
	// vCPUs, which a second guest competing for the host's cores would
	// blur. It cannot keep other load off the host: such tests still
	// compare within the run.
	Exclusive bool
}

// guestPackageDir is where the package's testdata goes in the guest and
// where its tests run, as go test runs them in the package directory.
const guestPackageDir = "/vmtest/pkg"

// Main runs the tests of a package inside VMs, once per kernel, and exits.
// Call it from TestMain:
//
//	func TestMain(m *testing.M) { vmtest.Main(m, nil) }
//
// On the host, Main boots each kernel with the test binary itself as the
// payload, passing on the test flags (-test.run, -test.v, -test.count, ...)
// and the package's testdata directory; the guest's output appears as the
// test binary's output, so failures read like normal go test failures. In
// the guest, Main simply runs the tests.
//
// When qemu, busybox or a kernel is missing, Main prints why and what to run,
// and skips the tests (exit status 0); with CI=true it fails instead.
func Main(m *testing.M, cfg *Config) {
	os.Exit(Run(m, cfg))
}

// Run is Main without the exit: it returns the exit status, so that
// TestMain can clean up what it made for the guest (a binary built for
// Config.Files, say) before it exits.
func Run(m *testing.M, cfg *Config) int {
	return run(m, cfg, os.Stdout, os.Stderr)
}

func run(m *testing.M, cfg *Config, stdout, stderr io.Writer) int {
	if cfg == nil {
		cfg = &Config{}
	}
	if InGuest() || os.Getenv(EnvHost) == "1" {
		return m.Run()
	}
	flag.Parse()
	if f := flag.Lookup("test.list"); f != nil && f.Value.String() != "" {
		return m.Run() // listing tests needs no VM
	}
	code, err := runHost(cfg, stdout, stderr)
	if err != nil {
		if errors.Is(err, ErrUnavailable) && os.Getenv("CI") != "true" {
			fmt.Fprintf(stderr, "vmtest: SKIP: VM tests not run: %v\n", err)
			return 0
		}
		fmt.Fprintf(stderr, "vmtest: FAIL: %v\n", err)
		return 1
	}
	return code
}

func runHost(cfg *Config, stdout, stderr io.Writer) (int, error) {
	kernels := cfg.Kernels
	if kernels == nil {
		var err error
		if kernels, err = Kernels(); err != nil {
			return 0, err
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("vmtest: find test binary: %w", err)
	}
	files, err := testdataFiles("testdata", path.Join(guestPackageDir, "testdata"))
	if err != nil {
		return 0, err
	}
	files = append(files, cfg.Files...)
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 12 * time.Minute
		if f := flag.Lookup("test.timeout"); f != nil {
			if d, ok := f.Value.(flag.Getter).Get().(time.Duration); ok && d > 0 {
				timeout = d + 2*time.Minute
			}
		}
	}
	cmd := &Command{
		Path:   exe,
		Args:   guestTestArgs(os.Args[1:]),
		Env:    cfg.Env,
		Dir:    guestPackageDir,
		Files:  files,
		Stdout: stdout,
	}
	failed := 0
	for _, k := range kernels {
		vm := &VM{
			Kernel: k, Topology: cfg.Topology, MemoryMiB: cfg.MemoryMiB,
			Cmdline: cfg.Cmdline, Timeout: timeout, Log: stdout,
			Exclusive: cfg.Exclusive,
		}
		if testing.Verbose() || os.Getenv(EnvConsole) == "all" {
			vm.Console = &consoleStream{w: stderr, prefix: "console[" + k.Name + "]: ", all: os.Getenv(EnvConsole) == "all"}
		}
		fmt.Fprintf(stdout, "vmtest: kernel %s, %s: booting\n", k, cfg.Topology)
		res, err := vm.RunRetryingPokeRace(context.Background(), cmd, func(re *RunError) {
			fmt.Fprintf(stdout, "vmtest: kernel %s: the guest hit qemu TCG's race with live code patching (%s); running it again\n%s",
				k.Name, re.Line, re.ConsoleTail())
		})
		var re *RunError
		switch {
		case errors.As(err, &re):
			failed++
			fmt.Fprintf(stdout, "vmtest: kernel %s: FAIL: %v (%s, boot %v, total %v)\n",
				k.Name, err, res.Accel, res.Boot.Round(time.Millisecond), res.Duration.Round(time.Millisecond))
			if re.Kind != FailExit {
				fmt.Fprint(stdout, re.ConsoleTail())
			}
		case err != nil:
			return 0, err
		default:
			fmt.Fprintf(stdout, "vmtest: kernel %s: ok (%s, boot %v, total %v)\n",
				k.Name, res.Accel, res.Boot.Round(time.Millisecond), res.Duration.Round(time.Millisecond))
		}
	}
	if failed > 0 {
		return 1, nil
	}
	return 0, nil
}

// hostOnlyFlags name test flags whose values are host paths, which the
// guest can neither read nor write.
var hostOnlyFlags = map[string]bool{
	"test.testlogfile": true, "test.coverprofile": true, "test.cpuprofile": true,
	"test.memprofile": true, "test.blockprofile": true, "test.mutexprofile": true,
	"test.trace": true, "test.outputdir": true, "test.gocoverdir": true,
	"test.fuzzcachedir": true,
}

// guestTestArgs returns the test binary's arguments minus the flags that
// name host paths.
func guestTestArgs(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		name := strings.TrimLeft(a, "-")
		name, _, hasValue := strings.Cut(name, "=")
		if !strings.HasPrefix(a, "-") || !hostOnlyFlags[name] {
			out = append(out, a)
			continue
		}
		if !hasValue {
			i++ // the value is the next argument
		}
	}
	return out
}

// testdataFiles lists the regular files under dir (if it exists) as guest
// files under guestDir.
func testdataFiles(dir, guestDir string) ([]File, error) {
	var files []File
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == dir {
			return fs.SkipAll
		}
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		files = append(files, File{Guest: path.Join(guestDir, filepath.ToSlash(rel)), Host: p})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("vmtest: testdata: %w", err)
	}
	return files, nil
}

// consoleStream prefixes console lines and, unless all is set, drops the
// boot log up to the kernel starting init.
type consoleStream struct {
	mu      sync.Mutex
	w       io.Writer
	prefix  string
	all     bool
	started bool
}

func (c *consoleStream) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	line := string(p)
	if !c.all && !c.started {
		c.started = strings.Contains(line, "Run /init as init process")
		return len(p), nil
	}
	_, err := io.WriteString(c.w, c.prefix+line)
	return len(p), err
}
