// Package vmtest runs Go tests inside qemu virtual machines on real Linux
// kernels with sched_ext, so that a scheduler's tests attach a real BPF
// scheduler on any Debian machine, laptop or CI runner, whatever its own
// kernel.
//
// # Testing your scheduler
//
// Opt a package in from TestMain; its tests then run in a VM, once per
// kernel of the test matrix:
//
//	func TestMain(m *testing.M) {
//		vmtest.Main(m, &vmtest.Config{
//			Topology: vmtest.Topology{Sockets: 1, Cores: 4, Threads: 1},
//		})
//	}
//
//	func TestAttach(t *testing.T) {
//		// Runs as root in the guest: load and attach the scheduler,
//		// run a bounded workload, read /sys/kernel/sched_ext/state.
//	}
//
// Then "go test ./yourpkg" builds the test binary as usual and runs it on
// the host, where Main boots each kernel with the binary itself as the
// guest's payload. Test flags (-run, -v, -count, -timeout, -json, ...) reach
// the guest; the package's testdata directory is copied in and the tests run
// beside it. The guest's output becomes the test binary's output, followed by
// one summary line per kernel:
//
//	vmtest: kernel 7.3: ok (tcg, boot 6.1s, total 11.4s)
//
// A VM run fails when a test fails, when the kernel panics, oopses or reports
// a BUG, when a sched_ext scheduler is disabled with an error the test did
// not announce with ExpectSchedExtDisable, or when it exceeds its timeout;
// the failure report ends with the last console lines.
//
// A boot watchdog keeps a hung guest from holding the run: a guest that has
// not started its payload within VM.BootTimeout (3 minutes under TCG) is
// killed and booted once more, and a second miss fails the run with the
// console tail. A guest that prints nothing for VM.QuietAfter (3 minutes)
// is reported, with its console tail, while the run goes on.
//
// One VM boots per test binary per kernel, never one per test: put tests
// that need another VM shape in another package. Build test binaries with
// CGO_ENABLED=0 when you can; a dynamically linked binary works too, as
// vmtest copies the libraries ldd lists into the guest.
//
// # Setting up a machine
//
// vmtest needs qemu-system-x86_64, a static busybox, and either apt (to
// download the pinned Debian kernels) or a kernel image of your own. On
// Debian 12, the scxkit module's scripts/setup installs everything.
// Without qemu or a kernel, Main skips the tests with a message that names
// the fix; with CI=true it fails instead, so CI never passes by skipping.
//
// Kernels are downloaded once into the cache directory (CacheDir) and only
// their vmlinuz is kept, with a manifest of its SHA-256 and of the package's
// (checked against apt's lists at download); the image is checked against
// the manifest before each boot. vmtest boots what it finds
// there, so it refuses a cache directory that another user could write. KVM is used where it actually works; elsewhere,
// nested virtualisation included, qemu's TCG emulation boots a kernel to its
// payload in about 8-10 s on an idle 2-core host (BenchmarkBoot measures
// it), and up to about 15 s for 8 vCPUs while other VMs run.
//
// # Environment
//
//	SCXKIT_KERNELS=7.3        test only these kernels of Matrix (comma-separated names)
//	SCXKIT_VMLINUZ=/path      boot this kernel image instead of the matrix
//	SCXKIT_VMTEST_ACCEL=tcg   force an accelerator (kvm or tcg)
//	SCXKIT_VMTEST_CONSOLE=all stream the whole kernel console, boot log included
//	SCXKIT_VMTEST_HOST=1      run the tests directly on this host (it has sched_ext)
//	SCXKIT_CACHE=/dir         where kernels are cached
//	CI=true                     missing prerequisites fail instead of skip
//
// # Inside the guest
//
// The guest runs a busybox userland from an initramfs built at test time.
// Its init mounts proc, sysfs, devtmpfs, tmpfs (/tmp, /run), bpffs,
// debugfs, tracefs and cgroup2, runs the payload as root, reports its exit
// status to the host and powers off. The kernel console is on the first
// serial port and the payload's output on the second, so kernel messages
// never interleave with test output:
//
//	host                                  guest (qemu)
//	go test -> test binary --initramfs-->  kernel --> /init --> test binary
//	              ^   ^                      | ttyS0             | ttyS1
//	              |   +-- monitor <----------+ console           | output,
//	              |       (panic, oops, BUG, sched_ext)          | exit status
//	              +----------------------------------------------+
//
// For lower-level use (a scheduler binary as payload, a shell command, a
// custom shape per run), see VM.Run.
package vmtest
