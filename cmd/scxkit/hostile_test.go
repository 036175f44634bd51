package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scxkit/scxkit/topology"
)

// hangLimit bounds how long a test waits for a command that used to block
// forever; it only turns a hang into a failure, the commands take
// milliseconds.
const hangLimit = time.Minute

// runLimited runs the command line like runArgs, in a goroutine, and fails
// the test if it does not return within hangLimit.
func runLimited(t *testing.T, ctx context.Context, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, &out, &errOut) }()
	select {
	case code = <-done:
	case <-time.After(hangLimit):
		t.Fatalf("scxkit %s did not end within %v; stderr:\n%s", strings.Join(args, " "), hangLimit, errOut.String())
	}
	return code, out.String(), errOut.String()
}

// TestTopologyFIFO gives topology a sysfs copy with a FIFO in place of
// cpu/online: it must end with an error naming the file, not wait for a
// writer forever.
func TestTopologyFIFO(t *testing.T) {
	root := t.TempDir()
	cpu := filepath.Join(root, "sys/devices/system/cpu")
	if err := os.MkdirAll(filepath.Join(cpu, "cpu0/topology"), 0o755); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(cpu, "online")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Release an open that blocked on the FIFO, if any.
		if w, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			w.Close()
		}
	})
	code, stdout, stderr := runLimited(t, context.Background(), "topology", "--sysfs", root)
	if code != exitFail || stdout != "" || !strings.Contains(stderr, "sys/devices/system/cpu/online: ") || !strings.Contains(stderr, "named pipe (FIFO)") {
		t.Errorf("exit %d, stdout %q, stderr %q; want 1 and an error naming the FIFO", code, stdout, stderr)
	}
}

// TestTopologyInterrupted makes discovery block and cancels the context,
// as SIGINT and SIGTERM do: the command must end, saying so.
func TestTopologyInterrupted(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	started := make(chan struct{})
	old := discover
	discover = func(*topology.Options) (*topology.Topology, error) {
		close(started)
		<-release
		return nil, errors.New("released")
	}
	defer func() { discover = old }()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-started
		cancel()
	}()
	code, stdout, stderr := runLimited(t, ctx, "topology", "--sysfs", t.TempDir())
	if code != exitFail || stdout != "" || !strings.Contains(stderr, "scxkit topology: interrupted while reading ") {
		t.Errorf("exit %d, stdout %q, stderr %q; want 1 and interrupted", code, stdout, stderr)
	}
}

func TestTopologyRootUsage(t *testing.T) {
	sysLike := t.TempDir()
	if err := os.MkdirAll(filepath.Join(sysLike, "devices/system/cpu/cpu0"), 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"empty", []string{"topology", "--sysfs", ""}, `--sysfs "": give the directory that holds sys/`},
		{"sysfs itself", []string{"topology", "--sysfs", sysLike}, "--sysfs " + sysLike + ": holds devices/system/cpu itself, so it is sysfs, not the directory that holds sys/: pass its parent, e.g. --sysfs " + filepath.Dir(sysLike)},
		{"missing", []string{"topology", "--sysfs", filepath.Join(sysLike, "nope")}, "nope: no such file or directory: give the directory that holds sys/"},
		{"file", []string{"topology", "--sysfs", file}, file + ": not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runArgs(t, tt.args...)
			if code != exitUsage || stdout != "" || !strings.Contains(stderr, tt.want) || !strings.Contains(stderr, "Usage: scxkit topology") {
				t.Errorf("exit %d, want %d; stdout %q; stderr lacks %q or the usage:\n%s", code, exitUsage, stdout, tt.want, stderr)
			}
		})
	}
}

// TestTopologyInconsistent gives cpu/online far beyond cpu/possible: an
// error naming both files, not a CPU per id.
func TestTopologyInconsistent(t *testing.T) {
	root := t.TempDir()
	cpu := filepath.Join(root, "sys/devices/system/cpu")
	for _, d := range []string{"cpu0/topology", "cpu1/topology"} {
		if err := os.MkdirAll(filepath.Join(cpu, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range map[string]string{"possible": "0-1\n", "present": "0-1\n", "online": "0-8191\n"} {
		if err := os.WriteFile(filepath.Join(cpu, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, stdout, stderr := runArgs(t, "topology", "--sysfs", root)
	if code != exitFail || stdout != "" || !strings.Contains(stderr, "sys/devices/system/cpu/online (0-8191) names cpus 2-8191 that sys/devices/system/cpu/present (0-1) lacks") {
		t.Errorf("exit %d, %d bytes of stdout, stderr %q; want 1 and an error naming online and present", code, len(stdout), stderr)
	}
}

// TestLatencyListenInUse binds a port and gives it to --listen: a usage
// error, before anything is loaded.
func TestLatencyListenInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	code, stdout, stderr := runArgs(t, "latency", "--listen", addr, "--duration", "10ms", "--interval", "10ms")
	if code != exitUsage || stdout != "" || !strings.Contains(stderr, fmt.Sprintf("--listen %q: listen tcp %s: bind: address already in use", addr, addr)) {
		t.Errorf("exit %d, want %d; stdout %q; stderr:\n%s", code, exitUsage, stdout, stderr)
	}
}

// TestListenWarning checks that an address without a host, or with the
// unspecified address, warns that every interface is served, and that a
// loopback address does not.
func TestListenWarning(t *testing.T) {
	for _, tc := range []struct {
		addr string
		warn bool
	}{{":0", true}, {"0.0.0.0:0", true}, {"[::]:0", true}, {"127.0.0.1:0", false}, {"localhost:0", false}} {
		var buf strings.Builder
		ln, err := listenMetrics(tc.addr, &buf)
		if err != nil {
			t.Errorf("%s: %v", tc.addr, err)
			continue
		}
		ln.Close()
		warned := strings.Contains(buf.String(), "level=WARN") && strings.Contains(buf.String(), "every network interface") &&
			strings.Contains(buf.String(), "127.0.0.1")
		if warned != tc.warn {
			t.Errorf("--listen %s: warned %v, want %v: %q", tc.addr, warned, tc.warn, buf.String())
		}
	}
	code, stdout, _ := runArgs(t, "help", "latency")
	if code != 0 || !strings.Contains(stdout, "127.0.0.1:9100") || strings.Contains(stdout, "e.g. :9100") {
		t.Errorf("help latency does not show 127.0.0.1:9100 as the example:\n%s", stdout)
	}
}

// TestLatencyDuration checks that --duration D with --interval I prints
// ceil(D/I) intervals, the last one too.
func TestLatencyDuration(t *testing.T) {
	requireLatencyRoot(t)
	for _, tc := range []struct {
		duration, interval string
		want               int
	}{{"300ms", "100ms", 3}, {"250ms", "100ms", 3}, {"50ms", "1s", 1}} {
		code, stdout, stderr := runLimited(t, context.Background(), "latency", "--cgroup", "/", "--json",
			"--duration", tc.duration, "--interval", tc.interval)
		if code != 0 {
			t.Fatalf("--duration %s --interval %s: exit %d: %s", tc.duration, tc.interval, code, stderr)
		}
		n := 0
		sc := bufio.NewScanner(strings.NewReader(stdout))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var line struct {
				Type string `json:"type"`
			}
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
				t.Fatalf("not JSON: %v: %s", err, sc.Text())
			}
			if line.Type == "interval" {
				n++
			}
		}
		if n != tc.want {
			t.Errorf("--duration %s --interval %s: %d intervals, want %d:\n%s", tc.duration, tc.interval, n, tc.want, stdout)
		}
	}
}

// TestLatencyUnprivileged runs scxkit latency as user nobody: it must
// say which privileges it needs and how to get them.
func TestLatencyUnprivileged(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("not root: cannot switch to user nobody")
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		t.Skipf("user nobody has uid %q, gid %q", u.Uid, u.Gid)
	}
	// A copy of the test binary that nobody may run: the go command
	// builds it in a directory only its user can enter.
	dir, err := os.MkdirTemp("", "scxkit-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "scxkit")
	if err := copyFile(exe, os.Args[0]); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "latency", "--duration", "1s")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), mainEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitFail {
		t.Fatalf("scxkit latency as nobody: %v, want exit status 1; stderr:\n%s", err, stderr.String())
	}
	t.Logf("as nobody: %s", stderr.String())
	for _, want := range []string{"scxkit latency: latency: permission denied: ", "CAP_BPF", "CAP_PERFMON", "run as root (sudo)", "setcap"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	if stdout.Len() > 0 {
		t.Errorf("stdout: %s", stdout.String())
	}
}

func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
