package vmtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// tcgOptions returns the -accel argument for TCG. qemu before 10 races with
// the kernel's int3-based live code patching when vCPUs run on several host
// threads (guests oops in sched_clock_cpu about once in ten boots with
// Debian 12's qemu 7.2), so older qemu runs all vCPUs on one thread. qemu
// 10 still races, but rarely (twice in about 200 boots on 2026-11-22, both
// at the same static branch in __schedule on 7.3, one of them while
// sched_ext was disabling a scheduler): runHost recognizes that oops
// (RunError.TCGPokeRace) and runs the VM once more.
func tcgOptions(qemu string) string {
	if qemuMajor(qemu) >= 10 {
		return "tcg,thread=multi"
	}
	return "tcg,thread=single"
}

var qemuVersion struct {
	once  sync.Once
	major int
}

var qemuVersionRE = regexp.MustCompile(`version (\d+)\.`)

func qemuMajor(qemu string) int {
	qemuVersion.once.Do(func() {
		out, err := exec.Command(qemu, "--version").Output()
		if err != nil {
			return
		}
		if m := qemuVersionRE.FindSubmatch(out); m != nil {
			qemuVersion.major, _ = strconv.Atoi(string(m[1]))
		}
	})
	return qemuVersion.major
}

// accel returns the accelerator to use for vm.
func (vm *VM) accel(ctx context.Context, qemu string) (Accel, error) {
	a := vm.Accel
	if a == AccelAuto {
		a = Accel(os.Getenv(EnvAccel))
	}
	switch a {
	case AccelTCG, AccelKVM:
		return a, nil
	case AccelAuto:
		if kvmWorks(ctx, qemu) {
			return AccelKVM, nil
		}
		return AccelTCG, nil
	}
	return "", fmt.Errorf("vmtest: unknown accelerator %q (from VM.Accel or %s): use %q or %q", a, EnvAccel, AccelKVM, AccelTCG)
}

var kvmProbe struct {
	once   sync.Once
	ok     bool
	mu     sync.Mutex
	broken bool // a real guest failed under KVM
}

// markKVMBroken remembers, for this process and in the cache directory for
// later ones on the same host kernel and qemu, that KVM cannot boot guests.
func markKVMBroken(qemu string) {
	kvmProbe.mu.Lock()
	kvmProbe.broken = true
	kvmProbe.mu.Unlock()
	if name, key, ok := kvmVerdictFile(qemu); ok && privateDir(filepath.Dir(name)) == nil {
		writePrivate(name, []byte(key))
	}
}

// kvmVerdictFile names the file that records a KVM failure and the key
// (host kernel and qemu version) under which the record holds.
func kvmVerdictFile(qemu string) (name, key string, ok bool) {
	cache, err := CacheDir()
	if err != nil {
		return "", "", false
	}
	rel, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "", "", false
	}
	key = fmt.Sprintf("host %s qemu %d\n", strings.TrimSpace(string(rel)), qemuMajor(qemu))
	return filepath.Join(cache, "kvm-broken"), key, true
}

func knownKVMBroken(qemu string) bool {
	name, key, ok := kvmVerdictFile(qemu)
	if !ok || privateDir(filepath.Dir(name)) != nil {
		return false
	}
	b, err := readPrivate(name, 4096)
	return err == nil && string(b) == key
}

// kvmWorks reports whether qemu can run a guest under KVM here. An existing
// /dev/kvm is not enough: nested virtualisation often opens it and then
// fails on the first MSR or instruction it cannot emulate. So the probe boots
// a real-mode program that writes to qemu's isa-debug-exit port: only a
// working accelerator gets qemu to exit with the status that write asks for.
// The answer is computed once per process. Nested setups can pass this
// probe and still fail on a real kernel (qemu reports "KVM internal error"
// and pauses); VM.Run notices that and falls back to TCG.
func kvmWorks(ctx context.Context, qemu string) bool {
	kvmProbe.once.Do(func() {
		kvmProbe.ok = !knownKVMBroken(qemu) && probeKVM(ctx, qemu)
	})
	kvmProbe.mu.Lock()
	defer kvmProbe.mu.Unlock()
	return kvmProbe.ok && !kvmProbe.broken
}

// probeBootSector is a BIOS boot sector: mov al, 0x31; out 0xf4, al; cli;
// hlt; jmp $-2. Padded to 512 bytes with the 0x55 0xAA signature.
var probeBootSector = func() []byte {
	b := make([]byte, 512)
	copy(b, []byte{0xb0, 0x31, 0xe6, 0xf4, 0xfa, 0xf4, 0xeb, 0xfd})
	b[510], b[511] = 0x55, 0xaa
	return b
}()

// probeExitStatus is what qemu exits with after the boot sector's write:
// (0x31 << 1) | 1.
const probeExitStatus = 0x31<<1 | 1

func probeKVM(ctx context.Context, qemu string) bool {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return false
	}
	f.Close()
	img, err := os.CreateTemp("", "vmtest-kvm-probe-*.img")
	if err != nil {
		return false
	}
	defer os.Remove(img.Name())
	_, werr := img.Write(probeBootSector)
	if cerr := img.Close(); werr != nil || cerr != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu,
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-accel", "kvm", "-cpu", "host", "-m", "64",
		"-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
		"-drive", "file="+img.Name()+",format=raw,if=ide")
	err = cmd.Run()
	return err != nil && cmd.ProcessState != nil && cmd.ProcessState.ExitCode() == probeExitStatus
}
