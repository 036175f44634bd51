package selftest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scxkit/scxkit/vmtest"
)

// shape is the VM every test here runs in.
var shape = vmtest.Topology{Sockets: 2, Cores: 2, Threads: 2, Nodes: 2}

// envFail makes TestGuestFailure fail on purpose; vmtest's host tests set it
// to check that a failing guest test fails the host run with its message.
const envFail = "VMTEST_SELFTEST_FAIL"

func TestMain(m *testing.M) {
	vmtest.Main(m, &vmtest.Config{
		Topology: shape,
		Env:      []string{envFail + "=" + os.Getenv(envFail)},
	})
}

func readTrimmed(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestInGuest(t *testing.T) {
	if !vmtest.InGuest() {
		t.Fatalf("%s is not set: the test binary did not run as a vmtest payload", vmtest.EnvGuestKernel)
	}
}

func TestKernelRelease(t *testing.T) {
	k := vmtest.GuestKernel()
	got := readTrimmed(t, "/proc/sys/kernel/osrelease")
	if k.Release == "" {
		t.Skipf("local kernel image: release %s not pinned", got)
	}
	if got != k.Release {
		t.Errorf("uname -r = %q, want %q (kernel %s)", got, k.Release, k.Name)
	}
}

func TestSchedExtState(t *testing.T) {
	if got := readTrimmed(t, "/sys/kernel/sched_ext/state"); got != "disabled" {
		t.Errorf("/sys/kernel/sched_ext/state = %q, want disabled", got)
	}
}

func TestMounts(t *testing.T) {
	mounts := readTrimmed(t, "/proc/mounts")
	want := map[string]string{
		"/proc": "proc", "/sys": "sysfs", "/dev": "devtmpfs", "/tmp": "tmpfs",
		"/sys/fs/bpf": "bpf", "/sys/kernel/debug": "debugfs",
		"/sys/kernel/tracing": "tracefs", "/sys/fs/cgroup": "cgroup2",
	}
	got := map[string]string{}
	for _, line := range strings.Split(mounts, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && want[f[1]] != "" {
			got[f[1]] = f[2]
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mounts (-want +got):\n%s", diff)
	}
}

func TestTestdata(t *testing.T) {
	if got := readTrimmed(t, "testdata/hello.txt"); got != "testdata reaches the guest" {
		t.Errorf("testdata/hello.txt = %q", got)
	}
}

// cpuPlace is where sysfs says a CPU sits.
type cpuPlace struct {
	Package  int
	Siblings string // thread_siblings_list
	Node     int
}

func TestTopology(t *testing.T) {
	const sys = "/sys/devices/system"
	n := shape.CPUs()
	if got, want := readTrimmed(t, sys+"/cpu/online"), fmt.Sprintf("0-%d", n-1); got != want {
		t.Fatalf("cpu/online = %q, want %q", got, want)
	}
	// qemu numbers vCPUs socket-major, then core, then thread; vmtest puts
	// whole sockets on each NUMA node.
	want := map[int]cpuPlace{}
	perSocket := shape.Cores * shape.Threads
	for cpu := range n {
		first := cpu - cpu%shape.Threads
		want[cpu] = cpuPlace{
			Package:  cpu / perSocket,
			Siblings: fmt.Sprintf("%d-%d", first, first+shape.Threads-1),
			Node:     cpu / perSocket / (shape.Sockets / shape.Nodes),
		}
	}
	got := map[int]cpuPlace{}
	for cpu := range n {
		dir := fmt.Sprintf("%s/cpu/cpu%d", sys, cpu)
		pkg, err := strconv.Atoi(readTrimmed(t, dir+"/topology/physical_package_id"))
		if err != nil {
			t.Fatal(err)
		}
		nodes, _ := filepath.Glob(dir + "/node*")
		if len(nodes) != 1 {
			t.Fatalf("cpu%d: %d node links, want 1", cpu, len(nodes))
		}
		node, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(nodes[0]), "node"))
		if err != nil {
			t.Fatal(err)
		}
		got[cpu] = cpuPlace{Package: pkg, Siblings: readTrimmed(t, dir+"/topology/thread_siblings_list"), Node: node}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("CPU placement (-want +got):\n%s", diff)
	}
	for node := range shape.Nodes {
		per := n / shape.Nodes
		wantList := fmt.Sprintf("%d-%d", node*per, (node+1)*per-1)
		if got := readTrimmed(t, fmt.Sprintf("%s/node/node%d/cpulist", sys, node)); got != wantList {
			t.Errorf("node%d/cpulist = %q, want %q", node, got, wantList)
		}
	}
}

// TestGuestFailure fails on purpose when envFail is set, so that vmtest's
// host tests can check how a failing guest test is reported.
func TestGuestFailure(t *testing.T) {
	if os.Getenv(envFail) != "1" {
		t.Skipf("fails on purpose only with %s=1", envFail)
	}
	t.Fatal("deliberate guest failure: 42 != 43")
}
