package composetest

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/scxkit/scxkit/preempt"
	"github.com/scxkit/scxkit/scxtest"
)

// hiCgroup holds the high class's hogs in TestStarvationOnDSQ.
const hiCgroup = "/skhi"

// TestStarvationOnDSQ: preempt's priorities are strict save for the
// starvation bound, also when it orders dsq's queues. CPU-bound hogs
// of a high class fill every CPU of one domain; a hog of the default
// class bound to the same domain runs only when its (domain, class) queue
// is boosted, and the scheduler survives the kernel's watchdog.
func TestStarvationOnDSQ(t *testing.T) {
	cgDir := filepath.Join("/sys/fs/cgroup", hiCgroup)
	if err := os.Mkdir(cgDir, 0o755); err != nil && !os.IsExist(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(cgDir) })
	// The watchdog ejects a scheduler whose runnable task waits 5s: the
	// starvation bound must serve the default class well before.
	c := compose(t, "sk_starve", 5*time.Second, []preempt.Class{
		{Name: "hi", Cgroups: []string{hiCgroup}, Policy: preempt.Policy{Slice: 10 * time.Millisecond}},
		{Name: preempt.DefaultClass, Policy: preempt.Policy{Slice: hogSlice}},
	})
	layout, ctl := c.layout, c.ctl

	dom := layout.DSQs[0].CPUs
	scxtest.Hogs(t, 2*dom.Weight(), scxtest.HogOptions{CPUs: dom, Cgroup: hiCgroup})
	hog(t, dom) // the default class, in the same domain
	// 8s: 16 starvation periods of 500ms, and longer than the watchdog's 5s.
	select {
	case err := <-c.Done():
		t.Fatalf("Run ended while the high class filled the domain: %v", err)
	case <-time.After(8 * time.Second):
	}
	classes, err := ctl.Read(nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Finish(t)
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
		t.Fatalf("the high class never ran: its hogs were not classified (cgroup %s)", hiCgroup)
	}
	if def.Starved == 0 {
		t.Errorf("the default class was never boosted by the starvation bound (ran %v beside hi's %v)", def.Runtime, hi.Runtime)
	}
	if def.Runtime == 0 {
		t.Errorf("the default class never ran in 8s: the starvation bound failed")
	}
}
