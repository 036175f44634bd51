package vmtest_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/scxkit/scxkit/vmtest"
)

// Boot the newest pinned kernel in a 4-vCPU machine and run a shell
// command in it. It needs qemu and a kernel download, and its output
// holds a boot time, so it has no Output and only compiles; the VM tests
// of this package (TestRunDynamicPayloadExitStatus and others) run the
// same calls.
func ExampleVM_Run() {
	vm := &vmtest.VM{
		Kernel:   vmtest.Matrix[len(vmtest.Matrix)-1],
		Topology: vmtest.Topology{Sockets: 1, Cores: 4, Threads: 1},
	}
	res, err := vm.Run(context.Background(), &vmtest.Command{
		Argv:   []string{"sh", "-c", "uname -r; cat /sys/kernel/sched_ext/state"},
		Stdout: os.Stdout,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("booted in %v with %s\n", res.Boot, res.Accel)
}

func ExampleTopology_CPUs() {
	t := vmtest.Topology{Sockets: 2, Cores: 2, Threads: 2, Nodes: 2}
	fmt.Println(t.CPUs())
	fmt.Println(t)
	// Output:
	// 8
	// 8 vCPUs (2 sockets x 2 cores x 2 threads), 2 NUMA nodes
}
