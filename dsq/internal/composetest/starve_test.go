package composetest

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/scxkit/scxkit/dsq"
	"github.com/scxkit/scxkit/preempt"
	"github.com/scxkit/scxkit/scx"
	"github.com/scxkit/scxkit/topology"
)

// hiComm names the threads of the high class in TestStarvationOnDSQ.
const hiComm = "skhi"

// namedSpinner spins on an OS thread named comm and bound to mask until
// ctx ends.
func namedSpinner(ctx context.Context, wg *sync.WaitGroup, mask topology.Cpumask, comm string, errs chan<- error) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		runtime.LockOSThread() // the thread dies with the goroutine: its name and affinity go with it
		if err := unix.SchedSetaffinity(0, cpuSet(mask)); err != nil {
			errs <- err
			return
		}
		name, _ := unix.BytePtrFromString(comm)
		if err := unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(name)), 0, 0, 0); err != nil {
			errs <- err
			return
		}
		for ctx.Err() == nil {
			for i := 0; i < 1e5; i++ {
			}
		}
	}()
}

// TestStarvationOnDSQ: preempt's priorities are strict save for the
// starvation bound, also when it orders dsq's queues. CPU-bound threads
// of a high class fill every CPU of one domain; a hog of the default
// class bound to the same domain runs only when its (domain, class) queue
// is boosted, and the scheduler survives the kernel's watchdog.
func TestStarvationOnDSQ(t *testing.T) {
	topo, err := topology.Discover(nil)
	if err != nil {
		t.Fatal(err)
	}
	layout, err := dsq.New(topo, &dsq.Options{Kind: dsq.PerLLC, Classes: 2, StealMinQueued: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	ctl, err := preempt.New(&preempt.Config{Classes: []preempt.Class{
		{Name: "hi", Comms: []string{hiComm}, Policy: preempt.Policy{Slice: 10 * time.Millisecond}},
		{Name: preempt.DefaultClass, Policy: preempt.Policy{Slice: hogSlice}},
	}}, &preempt.Options{OnDSQ: true})
	if err != nil {
		t.Fatal(err)
	}
	// The watchdog ejects a scheduler whose runnable task waits 5s: the
	// starvation bound must serve the default class well before.
	spec, err := scx.Open(Sched, scx.Config{Name: "sk_starve", Timeout: 5 * time.Second, Components: []scx.Component{topo, layout, ctl}})
	if err != nil {
		t.Fatal(err)
	}
	sched, err := spec.Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sched.Close()
	if err := sched.Attach(); err != nil {
		t.Fatal(err)
	}
	runCtx, stopRun := context.WithCancel(context.Background())
	defer stopRun()
	done := make(chan error, 1)
	go func() {
		_, err := sched.Run(runCtx, nil)
		done <- err
	}()

	dom := layout.DSQs[0].CPUs
	spinCtx, stopSpin := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan error, 2*dom.Weight())
	for range 2 * dom.Weight() {
		namedSpinner(spinCtx, &wg, dom, hiComm, errs)
	}
	hog(t, dom) // the default class, in the same domain
	// 8s: 16 starvation periods of 500ms, and longer than the watchdog's 5s.
	select {
	case err := <-done:
		stopSpin()
		wg.Wait()
		t.Fatalf("Run ended while the high class filled the domain: %v", err)
	case err := <-errs:
		stopSpin()
		wg.Wait()
		t.Fatal(err)
	case <-time.After(8 * time.Second):
	}
	stopSpin()
	wg.Wait()
	classes, err := ctl.Read(nil)
	if err != nil {
		t.Fatal(err)
	}
	stopRun()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v (the watchdog ejected the scheduler?)", err)
	}
	var hi, def *preempt.ClassStats
	for i := range classes {
		t.Logf("%s", &classes[i])
		switch classes[i].Class {
		case "hi":
			hi = &classes[i]
		case preempt.DefaultClass:
			def = &classes[i]
		}
	}
	if hi == nil || def == nil {
		t.Fatalf("classes %v: want hi and default", classes)
	}
	if hi.Runtime == 0 {
		t.Fatalf("the high class never ran: its threads were not classified (comm %q)", hiComm)
	}
	if def.Starved == 0 {
		t.Errorf("the default class was never boosted by the starvation bound (ran %v beside hi's %v)", def.Runtime, hi.Runtime)
	}
	if def.Runtime == 0 {
		t.Errorf("the default class never ran in 8s: the starvation bound failed")
	}
}
