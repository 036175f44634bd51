package vmtest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestQemuArgsShape(t *testing.T) {
	vm := &VM{Topology: Topology{Sockets: 2, Cores: 2, Threads: 2, Nodes: 2}, MemoryMiB: 1025, Cmdline: []string{"foo=1"}}
	args := strings.Join(vm.qemuArgs("/k", "/i", AccelTCG, "tcg,thread=multi"), " ")
	for _, want := range []string{
		"-accel tcg,thread=multi", "-cpu max,vendor=GenuineIntel",
		"-smp cpus=8,sockets=2,cores=2,threads=2", "-m 1024",
		"memory-backend-ram,id=mem0,size=512M", "-numa node,nodeid=0,memdev=mem0,cpus=0-3",
		"memory-backend-ram,id=mem1,size=512M", "-numa node,nodeid=1,memdev=mem1,cpus=4-7",
		"console=ttyS0", "foo=1", "-kernel /k -initrd /i",
	} {
		if !strings.Contains(args, want) {
			t.Errorf("qemu args lack %q:\n%s", want, args)
		}
	}
	kvm := strings.Join((&VM{}).qemuArgs("/k", "/i", AccelKVM, ""), " ")
	if !strings.Contains(kvm, "-accel kvm -cpu host") || strings.Contains(kvm, "-numa") ||
		!strings.Contains(kvm, "-smp cpus=2,sockets=1,cores=2,threads=1") {
		t.Errorf("default KVM args: %s", kvm)
	}
}

func TestTopologyValidate(t *testing.T) {
	for _, bad := range []Topology{{Sockets: -1}, {Sockets: 16, Cores: 16, Threads: 2}, {Cores: 2, Nodes: 3}} {
		if _, err := (&VM{Topology: bad}).Run(context.Background(), &Command{Argv: []string{"true"}}); err == nil {
			t.Errorf("topology %+v accepted", bad)
		}
	}
}

func TestInitScriptQuoting(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	ic := initConfig{nonce: "n", dir: "/tmp", argv: []string{"printf", "%s|", "it's", "$HOME", "a b"}, env: []string{"X=it's $y"}}
	script := string(ic.script())
	// The payload line must hand the arguments through unchanged.
	var line string
	for _, l := range strings.Split(script, "\n") {
		if strings.HasPrefix(l, "'printf'") {
			line = strings.TrimSuffix(l, " >$out 2>&1 </dev/null")
		}
	}
	out, err := exec.Command(sh, "-c", line).Output()
	if err != nil || string(out) != "it's|$HOME|a b|" {
		t.Errorf("payload line %q printed %q, %v", line, out, err)
	}
	if !strings.Contains(script, `export 'X=it'\''s $y'`) {
		t.Errorf("environment not quoted:\n%s", script)
	}
}

// newestKernel is the kernel the failure-mode tests boot: they test vmtest,
// not the kernels, so one kernel is enough.
func newestKernel() Kernel { return Matrix[len(Matrix)-1] }

// requireVM skips the test when VMs cannot run here, or fails it with CI=true.
func requireVM(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("boots a VM; skipped with -short")
	}
	_, err := exec.LookPath("qemu-system-x86_64")
	if err == nil {
		_, err = findBusybox()
	}
	if err == nil {
		_, err = newestKernel().Vmlinuz(context.Background())
	}
	if err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true and VMs cannot run: %v", err)
	}
	t.Skipf("VMs cannot run here (%v)", err)
}

func runVM(t *testing.T, vm *VM, cmd *Command) (*Result, *RunError) {
	t.Helper()
	if vm.Kernel.Name == "" {
		vm.Kernel = newestKernel()
	}
	res, err := vm.Run(context.Background(), cmd)
	if err == nil {
		return res, nil
	}
	var re *RunError
	if !errors.As(err, &re) {
		t.Fatalf("Run: %v", err)
	}
	return res, re
}

// TestRunDynamicPayloadExitStatus runs the host's dynamically linked /bin/sh
// as the payload (so its libraries must be copied in) and checks that its
// output and exit status come back.
func TestRunDynamicPayloadExitStatus(t *testing.T) {
	requireVM(t)
	sh, _ := filepath.EvalSymlinks("/bin/sh")
	if interp, _ := elfInterpreter(sh); interp == "" {
		t.Skipf("%s is static here", sh)
	}
	var out strings.Builder
	res, re := runVM(t, &VM{}, &Command{Path: sh, Args: []string{"-c", "echo from the guest: $SCXKIT_VMTEST_KERNEL; exit 7"}, Stdout: &out})
	if re == nil || re.Kind != FailExit || re.ExitCode != 7 || res.ExitCode != 7 {
		t.Fatalf("error %v, result %+v; want payload exit status 7", re, res)
	}
	if want := "from the guest: " + newestKernel().Name + "\n"; out.String() != want {
		t.Errorf("payload output %q, want %q", out.String(), want)
	}
	if res.Boot <= 0 || res.Boot > res.Duration {
		t.Errorf("boot time %v, duration %v", res.Boot, res.Duration)
	}
	t.Logf("boot %v, total %v, %s", res.Boot, res.Duration, res.Accel)
}

func TestRunKernelPanic(t *testing.T) {
	requireVM(t)
	// The payload would sleep past the timeout: a FailPanic (not a
	// FailTimeout) shows that the panic stopped the run, without a clock
	// bound that a busy host could break.
	_, re := runVM(t, &VM{Timeout: 5 * time.Minute}, &Command{Argv: []string{"sh", "-c", "echo c > /proc/sysrq-trigger; sleep 1000"}})
	if re == nil || re.Kind != FailPanic {
		t.Fatalf("error %v, want a kernel panic", re)
	}
	if !slices.ContainsFunc(re.Console, func(l string) bool { return strings.Contains(l, "sysrq") }) {
		t.Errorf("console tail does not show the sysrq crash:\n%s", re.ConsoleTail())
	}
	if len(re.Report) == 0 || !strings.Contains(re.Report[0], "Kernel panic") {
		t.Errorf("failure report %q does not start with the panic line", re.Report)
	}
}

func TestRunTimeout(t *testing.T) {
	requireVM(t)
	const timeout = 40 * time.Second
	res, re := runVM(t, &VM{Timeout: timeout}, &Command{Argv: []string{"sh", "-c", "echo hanging; sleep 1000"}})
	if re == nil || re.Kind != FailTimeout || re.Timeout != timeout {
		t.Fatalf("error %v, want a timeout after %v", re, timeout)
	}
	// qemu is killed when the timer fires; only host scheduling delays
	// its exit, so a minute of slack holds on a busy host while a timer
	// that never fired (the payload sleeps 1000 s) still fails.
	if res.Duration < timeout || res.Duration > timeout+time.Minute {
		t.Errorf("qemu ran %v, want the %v timeout to stop it", res.Duration, timeout)
	}
	if len(re.Console) == 0 || !strings.Contains(re.ConsoleTail(), "Run /init") {
		t.Errorf("console tail lacks the boot log:\n%s", re.ConsoleTail())
	}
}

// TestRunSchedExtDisable writes a sched_ext disable line into the kernel
// log, once unannounced (the run fails) and once announced (it passes).
func TestRunSchedExtDisable(t *testing.T) {
	requireVM(t)
	line := `<3>sched_ext: BPF scheduler "fake" disabled (runnable task stall)`
	_, re := runVM(t, &VM{}, &Command{Argv: []string{"sh", "-c", "echo '" + line + "' > /dev/kmsg; sleep 1"}})
	if re == nil || re.Kind != FailSchedExtDisabled || !strings.Contains(re.Line, `"fake" disabled`) {
		t.Fatalf("unannounced disable: error %v, want %v", re, FailSchedExtDisabled)
	}
	announce := "<4>" + expectMarker + `"fake" disabled \(runnable task stall\)`
	_, re = runVM(t, &VM{}, &Command{Argv: []string{"sh", "-c", "echo '" + announce + "' > /dev/kmsg; echo '" + line + "' > /dev/kmsg; sleep 1"}})
	if re != nil {
		t.Fatalf("announced disable: %v\n%s", re, re.ConsoleTail())
	}
}

// TestMainReportsGuestFailure builds the selftest package's test binary and
// runs it like go test does, with one guest test failing on purpose: the
// host process must fail and show the guest test's message.
func TestMainReportsGuestFailure(t *testing.T) {
	requireVM(t)
	bin := filepath.Join(t.TempDir(), "selftest.test")
	build := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "test", "-c", "-o", bin, "./selftest")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go test -c ./selftest: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-test.run=^TestGuestFailure$", "-test.v")
	cmd.Dir = "selftest"
	cmd.Env = append(os.Environ(), EnvKernels+"="+newestKernel().Name, "VMTEST_SELFTEST_FAIL=1")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("test binary: %v, want exit status 1\n%s", err, out)
	}
	for _, want := range []string{
		"--- FAIL: TestGuestFailure",
		"deliberate guest failure: 42 != 43",
		"vmtest: kernel " + newestKernel().Name + ": FAIL: ",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
