package vmtest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/scxkit/scxkit/internal/privdir"
)

// Topology is the guest's CPU and memory shape. Zero fields take defaults:
// one socket, two cores, one thread, no NUMA nodes.
type Topology struct {
	Sockets int // CPU packages
	Cores   int // cores per socket
	Threads int // SMT threads per core
	Nodes   int // NUMA nodes; sockets are spread evenly over them (0: no NUMA)
}

// CPUs returns the number of vCPUs of t, with defaults applied.
func (t Topology) CPUs() int {
	t = t.withDefaults()
	return t.Sockets * t.Cores * t.Threads
}

func (t Topology) withDefaults() Topology {
	if t.Sockets == 0 {
		t.Sockets = 1
	}
	if t.Cores == 0 {
		t.Cores = 2
	}
	if t.Threads == 0 {
		t.Threads = 1
	}
	return t
}

func (t Topology) String() string {
	t = t.withDefaults()
	s := fmt.Sprintf("%d vCPUs (%d sockets x %d cores x %d threads)", t.CPUs(), t.Sockets, t.Cores, t.Threads)
	if t.Nodes > 0 {
		s += fmt.Sprintf(", %d NUMA nodes", t.Nodes)
	}
	return s
}

func (t Topology) validate() error {
	if t.Sockets < 0 || t.Cores < 0 || t.Threads < 0 || t.Nodes < 0 {
		return fmt.Errorf("vmtest: topology %+v: counts must not be negative", t)
	}
	t = t.withDefaults()
	if t.CPUs() > 255 {
		return fmt.Errorf("vmtest: topology %+v: %d vCPUs is more than 255", t, t.CPUs())
	}
	if t.Nodes > 0 && t.Nodes > t.CPUs() {
		return fmt.Errorf("vmtest: topology %+v: more NUMA nodes than vCPUs", t)
	}
	return nil
}

// Accel is a qemu accelerator.
type Accel string

const (
	// AccelAuto uses KVM when it works on this host, else TCG.
	AccelAuto Accel = ""
	// AccelKVM uses hardware virtualisation.
	AccelKVM Accel = "kvm"
	// AccelTCG uses qemu's software emulation: slower, works everywhere.
	AccelTCG Accel = "tcg"
)

// EnvAccel forces an accelerator ("kvm" or "tcg") for every VM.
const EnvAccel = "SCXKIT_VMTEST_ACCEL"

// VM describes a virtual machine to boot. The zero value of every field but
// Kernel is usable.
type VM struct {
	Kernel    Kernel
	Topology  Topology
	MemoryMiB int           // guest memory; default 1024
	Cmdline   []string      // extra kernel command line arguments
	Accel     Accel         // default: SCXKIT_VMTEST_ACCEL, else AccelAuto
	Timeout   time.Duration // limit for boot, payload and power-off; default 5 minutes
	// BootTimeout bounds the time from starting qemu to the payload
	// starting. A guest that misses it is killed and booted once more; if
	// the second boot misses it too, Run returns a *RunError of kind
	// FailBootTimeout with the console tail. It exists because a hung boot
	// (seen once: a 4-vCPU TCG guest that never reached init) would
	// otherwise hold the run until Timeout. Default: DefaultBootTimeoutTCG
	// under TCG, DefaultBootTimeoutKVM under KVM.
	BootTimeout time.Duration
	// QuietAfter is how long the guest may print nothing, on the console
	// or from the payload, before Run writes a note with the console tail
	// to Log (once per quiet stretch). The run goes on until Timeout: the
	// note only shows where a payload stalled before a timeout ends it.
	// Default: DefaultQuietAfter; negative: no notes.
	QuietAfter time.Duration
	// Log receives vmtest's notes on the run: a boot that was retried, a
	// guest that has been quiet for QuietAfter. Nil discards them.
	Log io.Writer
	// CPU is qemu's -cpu model. The default, "host" under KVM and
	// "max,vendor=GenuineIntel" under TCG, gives every pinned kernel the
	// SMT topology asked for (TCG's plain "max" looks like an old AMD part
	// without topoext, on which 6.16 sees one thread per core).
	CPU string

	// Console receives the kernel console (the first serial port) line by
	// line as it arrives. Nil discards it; the last lines are kept for
	// failure reports either way.
	Console io.Writer
	// Exclusive runs the guest alone among this user's vmtest guests:
	// Run waits for the others to end, and they wait for it (every guest
	// holds the guests' lock in the cache directory, shared or, for this
	// one, exclusive). For tests that compare timings within a run on
	// many vCPUs, which a second guest competing for the host's cores
	// would blur. Other load on the host is not kept off. The wait does
	// not count against Timeout.
	Exclusive bool
}

// lockGuests takes the guests' lock (see Exclusive) and returns its
// release. It waits while a guest that holds the lock in a conflicting
// way runs, until ctx is done.
func (vm *VM) lockGuests(ctx context.Context) (unlock func(), err error) {
	dir, err := CacheDir()
	if err != nil {
		return nil, err
	}
	if err := privateDir(dir); err != nil {
		return nil, err
	}
	how := syscall.LOCK_SH
	if vm.Exclusive {
		how = syscall.LOCK_EX
		vm.logf("vmtest: kernel %s: waiting to run alone (Exclusive)\n", vm.Kernel.Name)
	}
	unlock, err = privdir.Lock(ctx, filepath.Join(dir, "guests.lock"), how, nil)
	if err != nil {
		return nil, fmt.Errorf("vmtest: guests' lock: %w", err)
	}
	return unlock, nil
}

// Command is the program a VM runs as its payload.
type Command struct {
	Path   string   // executable on the host, copied into the guest
	Args   []string // arguments, not including the program name
	Env    []string // extra environment, KEY=VALUE
	Dir    string   // guest working directory; default /tmp
	Files  []File   // extra files for the guest
	Stdout io.Writer
	// Argv, when set, runs a command that is already in the guest (such as
	// a busybox applet: []string{"sh", "-c", "..."}) instead of Path.
	Argv []string
}

// Result describes a finished run.
type Result struct {
	Kernel   Kernel
	Accel    Accel
	Boot     time.Duration // from starting qemu to the payload starting
	Duration time.Duration // from starting qemu to qemu exiting, over all boots
	ExitCode int           // the payload's exit status
	// Attempts is how many times the guest was booted: 2 when the first
	// boot missed VM.BootTimeout and was killed.
	Attempts int
}

// consoleTail is how many console lines a failure report keeps.
const consoleTail = 60

// Default bounds of the boot watchdog and the quiet note.
//
// Measured from qemu's start to the payload's start with Debian's kernels
// under TCG on a 2-core host (2026-12-04, whole suite, 36-38 boots of 2-8
// vCPUs): 5-16 s while other builds ran, and up to 27 s (4 vCPUs, NUMA)
// with stress-ng keeping both host cores busy. The TCG bound leaves more
// than six times that; a boot that exceeds it is hung, not slow.
const (
	DefaultBootTimeoutTCG = 3 * time.Minute
	DefaultBootTimeoutKVM = time.Minute
	DefaultQuietAfter     = 3 * time.Minute
)

// RunRetryingPokeRace runs cmd as Run does, and once more when the guest
// hit qemu TCG's race with the kernel's live code patching
// (RunError.TCGPokeRace): an emulator fault, neither the kernel's nor the
// payload's. Before the second run it calls retrying, if not nil, with
// the first run's error, so that the caller can say so and drop what it
// collected of the first run's output (cmd may be changed there, e.g. its
// Stdout). A second race, or any other failure, is returned.
func (vm *VM) RunRetryingPokeRace(ctx context.Context, cmd *Command, retrying func(*RunError)) (*Result, error) {
	return retryPokeRace(ctx, func() (*Result, error) { return vm.Run(ctx, cmd) }, retrying)
}

// retryPokeRace calls run, and once more after retrying when the first
// call failed on a TCG poke race while ctx is live.
func retryPokeRace(ctx context.Context, run func() (*Result, error), retrying func(*RunError)) (*Result, error) {
	res, err := run()
	var re *RunError
	if err == nil || ctx.Err() != nil || !errors.As(err, &re) || !re.TCGPokeRace() {
		return res, err
	}
	if retrying != nil {
		retrying(re)
	}
	return run()
}

// Run boots the VM, runs cmd in it and waits for the guest to power off. It
// returns a *RunError when the payload fails, the kernel panics, oopses or
// reports a BUG or an unexpected sched_ext disable, or the run times out;
// and an error wrapping ErrUnavailable when a prerequisite is missing. The
// Result is valid whenever qemu ran.
func (vm *VM) Run(ctx context.Context, cmd *Command) (*Result, error) {
	if err := vm.Topology.validate(); err != nil {
		return nil, err
	}
	if cmd.Path == "" && len(cmd.Argv) == 0 {
		return nil, errors.New("vmtest: command has neither Path nor Argv")
	}
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		return nil, &SetupError{Missing: "qemu-system-x86_64 not found", Fix: "run " + SetupCommand + " (installs qemu-system-x86)"}
	}
	image, err := vm.Kernel.Vmlinuz(ctx)
	if err != nil {
		return nil, err
	}
	busybox, err := findBusybox()
	if err != nil {
		return nil, err
	}
	accel, err := vm.accel(ctx, qemu)
	if err != nil {
		return nil, err
	}

	nonce := make([]byte, 12)
	rand.Read(nonce)
	ic := initConfig{
		nonce: "vmtest-" + hex.EncodeToString(nonce),
		dir:   cmd.Dir,
		env: append([]string{
			EnvGuestKernel + "=" + vm.Kernel.Name,
			EnvGuestRelease + "=" + vm.Kernel.Release,
		}, cmd.Env...),
	}
	if ic.dir == "" {
		ic.dir = "/tmp"
	}
	ir := initramfs{busybox: busybox, files: cmd.Files}
	if cmd.Path != "" {
		ir.payload = cmd.Path
		ic.argv = append([]string{guestPayload}, cmd.Args...)
		if ir.libs, err = sharedLibraries(cmd.Path); err != nil {
			return nil, err
		}
	} else {
		ic.argv = cmd.Argv
	}
	ir.init = ic.script()

	initrd, err := os.CreateTemp("", "vmtest-initramfs-*.cpio")
	if err != nil {
		return nil, fmt.Errorf("vmtest: initramfs: %w", err)
	}
	defer os.Remove(initrd.Name())
	bw := bufio.NewWriterSize(initrd, 1<<20)
	if err := ir.write(bw); err != nil {
		initrd.Close()
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		initrd.Close()
		return nil, fmt.Errorf("vmtest: initramfs: %w", err)
	}
	if err := initrd.Close(); err != nil {
		return nil, fmt.Errorf("vmtest: initramfs: %w", err)
	}

	timeout := vm.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	spec := runSpec{
		qemu: qemu, image: image, initrd: initrd.Name(), accel: accel,
		nonce: ic.nonce, timeout: timeout, stdout: cmd.Stdout,
	}
	unlock, err := vm.lockGuests(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	res, err := vm.bootWatched(ctx, spec)
	if errors.Is(err, errKVMFailed) && vm.Accel == AccelAuto && os.Getenv(EnvAccel) == "" {
		// KVM opened and passed the probe but cannot run this kernel
		// (typical of nested virtualisation): use TCG from now on.
		markKVMBroken(qemu)
		spec.accel = AccelTCG
		res, err = vm.bootWatched(ctx, spec)
	}
	return res, err
}

// bootWatched boots the guest and, when it does not start its payload
// within the boot bound, kills it and boots it once more.
func (vm *VM) bootWatched(ctx context.Context, s runSpec) (*Result, error) {
	s.bootTimeout = vm.BootTimeout
	if s.bootTimeout <= 0 {
		s.bootTimeout = DefaultBootTimeoutTCG
		if s.accel == AccelKVM {
			s.bootTimeout = DefaultBootTimeoutKVM
		}
	}
	s.quiet = vm.QuietAfter
	if s.quiet == 0 {
		s.quiet = DefaultQuietAfter
	}
	res, err := vm.boot(ctx, s)
	var re *RunError
	if !errors.As(err, &re) || re.Kind != FailBootTimeout {
		return res, err
	}
	vm.logf("vmtest: kernel %s: the guest did not start its payload within %v; killed it, booting once more\n%s",
		vm.Kernel.Name, s.bootTimeout, re.ConsoleTail())
	first := res.Duration
	res, err = vm.boot(ctx, s)
	if res != nil {
		res.Attempts = 2
		res.Duration += first
	}
	return res, err
}

func (vm *VM) logf(format string, args ...any) {
	if vm.Log != nil {
		fmt.Fprintf(vm.Log, format, args...)
	}
}

type runSpec struct {
	qemu, image, initrd string
	accel               Accel
	nonce               string
	timeout             time.Duration
	bootTimeout         time.Duration // payload start deadline, from qemu's start
	quiet               time.Duration // note a guest quiet this long; <= 0: never
	stdout              io.Writer
}

// qemuArgs returns qemu's command line. The console goes to fd 3 and the
// payload's output to fd 4 (the first and second serial ports).
func (vm *VM) qemuArgs(image, initrd string, accel Accel, tcg string) []string {
	t := vm.Topology.withDefaults()
	mem := vm.MemoryMiB
	if mem <= 0 {
		mem = 1024
	}
	cpu := vm.CPU
	switch {
	case cpu != "":
	case accel == AccelKVM:
		cpu = "host"
	default:
		cpu = "max,vendor=GenuineIntel"
	}
	accelArg := string(accel)
	if accel == AccelTCG {
		accelArg = tcg
	}
	cmdline := append([]string{
		"console=ttyS0", "panic=-1", "printk.devkmsg=on", "mitigations=off",
	}, vm.Cmdline...)
	args := []string{
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-accel", accelArg, "-cpu", cpu,
		"-smp", fmt.Sprintf("cpus=%d,sockets=%d,cores=%d,threads=%d", t.CPUs(), t.Sockets, t.Cores, t.Threads),
		"-kernel", image, "-initrd", initrd,
		"-append", strings.Join(cmdline, " "),
		"-chardev", "file,id=console,path=/dev/fd/3", "-serial", "chardev:console",
		"-chardev", "file,id=payload,path=/dev/fd/4", "-serial", "chardev:payload",
	}
	if t.Nodes == 0 {
		return append(args, "-m", strconv.Itoa(mem))
	}
	// NUMA: split memory and CPUs evenly over the nodes, whole sockets per
	// node when the counts allow it (CPU ids are socket-major in qemu).
	mem -= mem % t.Nodes
	args = append(args, "-m", strconv.Itoa(mem))
	cpus := t.CPUs()
	for n := range t.Nodes {
		first, last := n*cpus/t.Nodes, (n+1)*cpus/t.Nodes-1
		args = append(args,
			"-object", fmt.Sprintf("memory-backend-ram,id=mem%d,size=%dM", n, mem/t.Nodes),
			"-numa", fmt.Sprintf("node,nodeid=%d,memdev=mem%d,cpus=%d-%d", n, n, first, last))
	}
	return args
}

// boot runs qemu and watches both serial ports until the guest powers off.
func (vm *VM) boot(ctx context.Context, s runSpec) (*Result, error) {
	res := &Result{Kernel: vm.Kernel, Accel: s.accel, Attempts: 1}
	conR, conW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		conR.Close()
		conW.Close()
		return nil, err
	}
	qemuOut := &qemuOutput{kvmFailed: make(chan struct{})}
	cmd := exec.Command(s.qemu, vm.qemuArgs(s.image, s.initrd, s.accel, tcgOptions(s.qemu))...)
	cmd.ExtraFiles = []*os.File{conW, outW}
	// qemu dies with us: a test binary killed by go test's -timeout (or
	// any signal) must not leave a guest running on the host.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stdout = qemuOut
	cmd.Stderr = qemuOut
	start := time.Now()
	err = cmd.Start()
	conW.Close()
	outW.Close()
	if err != nil {
		conR.Close()
		outR.Close()
		return nil, fmt.Errorf("vmtest: start qemu: %w", err)
	}

	mon := newMonitor(s.nonce)
	// Failures beyond the buffer are dropped: the first one decides.
	events := make(chan monitorEvent, 16)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		mon.watchConsole(conR, vm.Console, events)
	}()
	go func() {
		defer wg.Done()
		mon.watchPayload(outR, s.stdout)
	}()
	exited := make(chan error, 1)
	go func() {
		wg.Wait() // both pipes closed: qemu is gone
		exited <- cmd.Wait()
	}()

	timer := time.NewTimer(s.timeout)
	defer timer.Stop()
	// The watchdog checks the boot bound and the guest's quiet time.
	watchdog := time.NewTicker(watchdogPeriod(s))
	defer watchdog.Stop()
	var (
		failure  *RunError
		grace    <-chan time.Time
		canceled error
		waitErr  error
		noted    bool // the current quiet stretch was reported
	)
	kill := func() { cmd.Process.Kill() }
loop:
	for {
		select {
		case now := <-watchdog.C:
			if failure != nil {
				break
			}
			if _, ok := mon.started(); !ok && now.Sub(start) >= s.bootTimeout {
				failure = &RunError{Kind: FailBootTimeout, Timeout: s.bootTimeout, Detail: lastLines(qemuOut.String(), 10)}
				kill()
				break
			}
			switch quiet := mon.quietFor(now); {
			case s.quiet <= 0:
			case quiet < s.quiet:
				noted = false
			case !noted:
				noted = true
				vm.logf("vmtest: kernel %s: the guest has printed nothing for %v (%v since boot); still running, up to the %v timeout\n%s",
					vm.Kernel.Name, quiet.Round(time.Second), now.Sub(start).Round(time.Second), s.timeout,
					formatTail(vm.Kernel.Name, mon.tail()))
			}
		case ev := <-events:
			// A kernel failure: give the kernel a moment to print the
			// rest of its report, then stop the machine.
			if failure == nil {
				failure = &RunError{Kind: ev.failure, Line: ev.line}
				grace = time.After(3 * time.Second)
			}
		case <-grace:
			kill()
		case <-qemuOut.kvmFailed:
			qemuOut.kvmFailed = nil
			kill()
		case <-timer.C:
			if failure == nil {
				failure = &RunError{Kind: FailTimeout, Timeout: s.timeout}
			}
			kill()
		case <-ctx.Done():
			canceled = ctx.Err()
			kill()
		case waitErr = <-exited:
			break loop
		}
	}
	// The watchers have returned, so every event they sent is buffered.
	for len(events) > 0 {
		if ev := <-events; failure == nil {
			failure = &RunError{Kind: ev.failure, Line: ev.line}
		}
	}
	res.Duration = time.Since(start)
	if started, ok := mon.started(); ok {
		res.Boot = started.Sub(start)
	}
	if canceled != nil {
		return res, fmt.Errorf("vmtest: kernel %s: %w", vm.Kernel.Name, canceled)
	}
	if qemuOut.failedKVM() {
		return res, fmt.Errorf("vmtest: kernel %s: %w: %s", vm.Kernel.Name, errKVMFailed, lastLine(qemuOut.String()))
	}
	if failure == nil {
		switch code, ok := mon.exitCode(); {
		case !ok:
			detail := lastLines(qemuOut.String(), 10)
			if waitErr != nil {
				detail = strings.TrimSpace(detail + " (" + waitErr.Error() + ")")
			}
			failure = &RunError{Kind: FailNoStatus, Detail: detail}
		case code != 0:
			failure = &RunError{Kind: FailExit, ExitCode: code}
		}
	}
	if code, ok := mon.exitCode(); ok {
		res.ExitCode = code
	}
	if failure != nil {
		failure.Kernel = vm.Kernel.Name
		failure.Console = mon.tail()
		failure.Report = mon.failureReport()
		return res, failure
	}
	return res, nil
}

// watchdogPeriod returns how often the run loop checks the boot bound and
// the quiet time: a tenth of the shorter one, between 100 ms and 1 s.
func watchdogPeriod(s runSpec) time.Duration {
	d := s.bootTimeout
	if s.quiet > 0 && s.quiet < d {
		d = s.quiet
	}
	return min(max(d/10, 100*time.Millisecond), time.Second)
}

// errKVMFailed reports that qemu stopped the guest with a KVM error.
var errKVMFailed = errors.New("KVM cannot run this guest")

// qemuOutput collects qemu's own output and notices KVM failures, after
// which qemu pauses the guest instead of exiting.
type qemuOutput struct {
	mu        sync.Mutex
	buf       bytes.Buffer
	kvmFailed chan struct{} // closed on the first KVM failure
	failed    bool
}

func (q *qemuOutput) Write(p []byte) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.buf.Write(p)
	if !q.failed && (bytes.Contains(q.buf.Bytes(), []byte("KVM internal error")) ||
		bytes.Contains(q.buf.Bytes(), []byte("emulation failure"))) {
		q.failed = true
		close(q.kvmFailed)
	}
	return len(p), nil
}

func (q *qemuOutput) String() string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.buf.String()
}

func (q *qemuOutput) failedKVM() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.failed
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
