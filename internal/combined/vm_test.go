package combined

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/scxkit/scxkit/dsq"
	"github.com/scxkit/scxkit/lb"
	"github.com/scxkit/scxkit/preempt"
	"github.com/scxkit/scxkit/scx"
	"github.com/scxkit/scxkit/scxtest"
	"github.com/scxkit/scxkit/smt"
	"github.com/scxkit/scxkit/topology"
	"github.com/scxkit/scxkit/vmtest"
	"github.com/scxkit/scxkit/workload"
)

// Two sockets of two cores of two threads, one NUMA node per socket: two
// LLC domains of two cores each, 8 CPUs.
func TestMain(m *testing.M) {
	// Exclusive: the latency comparison is within the run, but a second
	// guest on the 2-core CI host halves what the classes' waits differ by.
	vmtest.Main(m, &vmtest.Config{Topology: vmtest.Topology{Sockets: 2, Cores: 2, Threads: 2, Nodes: 2}, Exclusive: true})
}

const (
	// latComm names the latency-sensitive request threads.
	latComm  = "sklat"
	latSlice = time.Millisecond
	hogSlice = 20 * time.Millisecond
	// tenantCgroup holds the isolated tenant's hogs.
	tenantCgroup = "/sktenant"
)

// The preempt classes, in priority order, and so the dsq classes.
const (
	classLat = iota
	classDefault
	classTenant
	nrClasses
)

func classes() []preempt.Class {
	return []preempt.Class{
		classLat:     {Name: "lat", Comms: []string{latComm}, Policy: preempt.Policy{Wakeup: preempt.WakeupLower, Slice: latSlice}},
		classDefault: {Name: preempt.DefaultClass, Policy: preempt.Policy{Slice: hogSlice}},
		classTenant:  {Name: "tenant", Cgroups: []string{tenantCgroup}, Policy: preempt.Policy{Slice: hogSlice}},
	}
}

// components are the scheduler's parts, in the order they compose.
type components struct {
	topo   *topology.Topology
	layout *dsq.Layout
	bal    *lb.Balancer
	ctl    *preempt.Controller
	iso    *smt.Layout
}

func (c *components) list() []scx.Component {
	return []scx.Component{c.topo, c.layout, c.bal, c.ctl, c.iso}
}

// build makes the components: dsq per LLC with one class per preempt
// class and stealing off (only lb moves tasks between domains), lb
// balancing every 250ms, preempt ordering dsq's queues, and smt keeping
// the tenant's class off the siblings of every other class.
func build(t *testing.T) *components {
	t.Helper()
	var c components
	var err error
	if c.topo, err = topology.Discover(nil); err != nil {
		t.Fatal(err)
	}
	if len(c.topo.CPUs) != 8 || len(c.topo.Cores) != 4 {
		t.Fatalf("guest has %d CPUs in %d cores, want 8 in 4", len(c.topo.CPUs), len(c.topo.Cores))
	}
	if c.layout, err = dsq.New(c.topo, &dsq.Options{Kind: dsq.PerLLC, Classes: nrClasses, StealMinQueued: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	if len(c.layout.DSQs) != 2 {
		t.Fatalf("%d domains for 2 LLCs: %+v", len(c.layout.DSQs), c.layout.DSQs)
	}
	if c.bal, err = lb.New(lb.DomainsOf(c.layout), &lb.Options{Interval: 250 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if c.ctl, err = preempt.New(&preempt.Config{Classes: classes()}, &preempt.Options{OnDSQ: true}); err != nil {
		t.Fatal(err)
	}
	if c.iso, err = smt.New(c.topo, &smt.Options{OnDSQ: true, Groups: [][]int{{classTenant}}}); err != nil {
		t.Fatal(err)
	}
	return &c
}

// makeTenant creates the tenant's cgroup, removed at the end of the test.
func makeTenant(t *testing.T) {
	t.Helper()
	dir := filepath.Join("/sys/fs/cgroup", tenantCgroup)
	if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(dir) })
}

// attach loads, attaches and runs the scheduler of c; it detaches at the
// end of the test.
func attach(t *testing.T, c *components) *scxtest.Running {
	t.Helper()
	spec, err := scx.Open(Sched, scx.Config{Name: "sk_combined", Timeout: 10 * time.Second, Components: c.list()})
	if err != nil {
		t.Fatal(err)
	}
	return scxtest.Start(t, spec)
}

// sysfs reads a file of /sys/kernel/sched_ext.
func sysfs(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/sys/kernel/sched_ext", name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestAllComponents runs every component in one scheduler on 2 sockets x
// 2 cores x 2 threads and checks that each one's behaviour holds in the
// combination: CPU hogs all born in domain 0, the tenant's among them,
// are spread over both domains by lb (stealing is off); latency request
// threads wake, preempt hogs of their domain and wait far less than the
// hogs' class; and no tenant task ever runs beside a task of another
// class on the same core, while both groups get cores.
func TestAllComponents(t *testing.T) {
	makeTenant(t)
	c := build(t)
	r := attach(t, c)
	if got := sysfs(t, "state"); got != "enabled" {
		t.Fatalf("sched_ext state %q after attach, want enabled", got)
	}
	if got := sysfs(t, "root/ops"); got != "sk_combined" {
		t.Fatalf("sched_ext runs %q, want sk_combined", got)
	}

	// 6 hogs of the default class and 2 of the tenant, all born in
	// domain 0: one per CPU of the machine.
	dom0 := c.layout.DSQs[0].CPUs
	scxtest.Hogs(t, 6, scxtest.HogOptions{BornOn: dom0})
	scxtest.Hogs(t, 2, scxtest.HogOptions{BornOn: dom0, Cgroup: tenantCgroup})

	// Wait for lb to move tasks into domain 1: a condition, not a delay.
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		lbc, err := c.bal.ReadCounters(nil)
		if err != nil {
			t.Fatal(err)
		}
		if lbc[1].MigratedIn > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lb moved nothing into domain 1 within 60s: %+v", lbc)
		}
	}
	// A few more rounds to settle, then measure a window.
	time.Sleep(8 * 250 * time.Millisecond)
	before, err := c.bal.ReadCounters(nil)
	if err != nil {
		t.Fatal(err)
	}
	smtBefore, err := c.iso.Read(nil)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := workload.Requests(context.Background(), workload.RequestConfig{
		Threads:  4,
		Period:   5 * time.Millisecond,
		Work:     200 * time.Microsecond,
		Duration: 4 * time.Second,
		ThreadSetup: func(int) error {
			name, err := unix.BytePtrFromString(latComm)
			if err != nil {
				return err
			}
			return unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(name)), 0, 0, 0)
		},
	})
	if err != nil {
		t.Fatalf("requests under sk_combined: %v", err)
	}
	after, err := c.bal.ReadCounters(nil)
	if err != nil {
		t.Fatal(err)
	}
	smtAfter, err := c.iso.Read(nil)
	if err != nil {
		t.Fatal(err)
	}
	violations, err := c.iso.Violations()
	if err != nil {
		t.Fatal(err)
	}
	pre, err := c.ctl.Read(nil)
	if err != nil {
		t.Fatal(err)
	}
	dsqc, err := c.layout.ReadClassCounters(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := sysfs(t, "state"); got != "enabled" {
		t.Errorf("sched_ext state %q at the end of the load, want enabled", got)
	}
	r.Finish(t)

	t.Logf("requests: %d, p50 %v p99 %v (the requester's own measure)", rep.Requests, rep.Percentile(50), rep.Percentile(99))
	for i := range pre {
		t.Logf("preempt %s", &pre[i])
	}
	for i := range smtAfter {
		t.Logf("smt %s", smtAfter[i])
	}
	for i, d := range after {
		t.Logf("lb domain %d: ran %v in the window, %d migrated in, %d refused", i,
			time.Duration(d.RuntimeNs-before[i].RuntimeNs), d.MigratedIn, d.Refused)
	}

	// (a) lb: both domains ran about as long. Born in domain 0 with
	// stealing off, without lb domain 1 would run nothing but strays
	// (the request threads, kernel threads). Ideally equal (8 hogs on
	// 4+4 CPUs); at least half leaves room for smt's forced idle, which
	// lb does not see and which differs between the domains.
	run0 := after[0].RuntimeNs - before[0].RuntimeNs
	run1 := after[1].RuntimeNs - before[1].RuntimeNs
	if lo, hi := min(run0, run1), max(run0, run1); hi == 0 || float64(lo) < 0.5*float64(hi) {
		t.Errorf("lb: domains ran %v and %v in the window: want within a factor of 2", time.Duration(run0), time.Duration(run1))
	}
	for i, cnt := range dsqc {
		if cnt.Stolen != 0 {
			t.Errorf("dsq domain %d class %d: %d tasks stolen with stealing off", i/c.layout.Classes, i%c.layout.Classes, cnt.Stolen)
		}
	}

	// (b) preempt: latency wakeups preempt hogs and wait less than the
	// default class's wakeups, compared within this run: a host stall
	// stretches both. Under TCG with 8 vCPUs on a 2-core host the tail
	// is the host's scheduling of vCPU threads (the kernel's own
	// scheduler, in the same VM under the same hogs, measured a
	// requester p99 of 26ms), and the more the host is loaded the more
	// of every wait it is, for both classes alike: p90 and the mean
	// measured 0.08 to 0.18 of the default's with this guest alone on
	// the host (also with two busy loops there), 0.41 to 0.53 in a full
	// CI run (go test's other packages building and testing beside it).
	// Hence 0.75 for them, and p99 only lower (measured 0.35 to 0.42).
	// (With smt's Hold at 10ms instead of its default 40ms, cores changed
	// hands four times as often, the kicks of latency wakeups often
	// handed a core to the tenant instead, and the ratios reached 0.57
	// beside a second guest.)
	byName := map[string]*preempt.ClassStats{}
	for i := range pre {
		byName[pre[i].Class] = &pre[i]
	}
	lat, def := byName["lat"], byName[preempt.DefaultClass]
	if lat == nil || def == nil || lat.Wakeups == 0 || def.Wakeups == 0 {
		t.Fatalf("preempt classes %v: want lat and default with wakeups", pre)
	}
	latMean, defMean := lat.Wait.Sum/time.Duration(lat.Wakeups), def.Wait.Sum/time.Duration(def.Wakeups)
	t.Logf("wakeup wait: lat p50 %v p90 %v p99 %v mean %v; default p50 %v p90 %v p99 %v mean %v; lat p99 / hogs' slice %v = %.2f",
		lat.Wait.Percentile(50), lat.Wait.Percentile(90), lat.Wait.Percentile(99), latMean,
		def.Wait.Percentile(50), def.Wait.Percentile(90), def.Wait.Percentile(99), defMean,
		hogSlice, float64(lat.Wait.Percentile(99))/float64(hogSlice))
	for _, q := range []struct {
		what     string
		lat, def time.Duration
		factor   float64
	}{
		{"p90", lat.Wait.Percentile(90), def.Wait.Percentile(90), 0.75},
		{"mean", latMean, defMean, 0.75},
		{"p99", lat.Wait.Percentile(99), def.Wait.Percentile(99), 1},
	} {
		if float64(q.lat) >= q.factor*float64(q.def) {
			t.Errorf("lat: %s wakeup wait %v, want under %.2f x the default class's %v in the same run", q.what, q.lat, q.factor, q.def)
		}
	}
	if lat.Kicks == 0 || def.Preempted == 0 {
		t.Errorf("lat sent %d preemption kicks, default had %d tasks preempted: want both with every CPU busy", lat.Kicks, def.Preempted)
	}

	// (c) smt: no violation, and both groups held cores in the window.
	if violations != 0 {
		t.Errorf("smt: %d violations, want 0", violations)
	}
	for i, a := range smtAfter {
		b := smtBefore[i]
		ran := a.Runtime - b.Runtime
		if a.Violations != 0 {
			t.Errorf("smt %s: %d violations", a.Class.Name(), a.Violations)
		}
		if ran <= 0 {
			t.Errorf("smt %s: ran %v in the window, want both groups to run", a.Class.Name(), ran)
		}
		if a.Handovers == b.Handovers {
			t.Errorf("smt %s: took no core over in the window, want both groups to get cores", a.Class.Name())
		}
	}
	if r := rep.Requests; r == 0 {
		t.Errorf("no request served")
	}
}

// TestOpenRefuses: smt on dsq's queues needs dsq before it, owns nothing
// and composes with preempt and lb; smt owning its queues cannot be
// combined with dsq; a group naming a class dsq does not have fails at
// Load, naming the fix.
func TestOpenRefuses(t *testing.T) {
	makeTenant(t) // preempt's tenant class names it
	c := build(t)
	owner, err := smt.New(c.topo, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		comps []scx.Component
		ok    bool
	}{
		{"all on dsq", c.list(), true},
		{"smt on dsq alone", []scx.Component{c.topo, c.iso}, false},
		{"smt on dsq before dsq", []scx.Component{c.topo, c.iso, c.layout}, false},
		{"dsq and smt owning", []scx.Component{c.topo, c.layout, owner}, false},
	} {
		_, err := scx.Open(Sched, scx.Config{Name: "sk_combined", Components: tt.comps})
		if (err == nil) != tt.ok {
			t.Errorf("%s: Open: %v, want ok=%v", tt.name, err, tt.ok)
		} else if err != nil {
			t.Logf("%s: %v", tt.name, err)
		}
	}
	far, err := smt.New(c.topo, &smt.Options{OnDSQ: true, Groups: [][]int{{nrClasses}}})
	if err != nil {
		t.Fatal(err)
	}
	spec, err := scx.Open(Sched, scx.Config{Name: "sk_combined", Components: []scx.Component{c.topo, c.layout, c.bal, c.ctl, far}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := spec.Load(nil)
	if err == nil {
		s.Close()
	}
	if !errors.Is(err, smt.ErrInvalid) || !strings.Contains(err.Error(), fmt.Sprintf("dsq class %d", nrClasses)) {
		t.Errorf("Load with a group naming dsq class %d of %d: %v, want smt.ErrInvalid naming the class", nrClasses, nrClasses, err)
	} else {
		t.Logf("group beyond dsq's classes: %v", err)
	}
}
