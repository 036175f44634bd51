package vmcheck

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"

	"github.com/scxkit/scxkit/cpuset"
	"github.com/scxkit/scxkit/idle"
	"github.com/scxkit/scxkit/scx"
	"github.com/scxkit/scxkit/scxtest"
	"github.com/scxkit/scxkit/topology"
	"github.com/scxkit/scxkit/vmtest"
	"github.com/scxkit/scxkit/workload"
)

// Four CPUs: a nest of two, a CPU for a pinned spinner, and room for
// everything else outside the nest.
func TestMain(m *testing.M) {
	vmtest.Main(m, &vmtest.Config{Topology: vmtest.Topology{Cores: 4}})
}

// objects are pack.bpf.c's globals, map and program the tests use.
type objects struct {
	Nest          *ebpf.Variable `ebpf:"nest"`
	ClaimFlags    *ebpf.Variable `ebpf:"claim_flags"`
	Claimed       *ebpf.Variable `ebpf:"claimed"`
	Fell          *ebpf.Variable `ebpf:"fell"`
	Hold          *ebpf.Variable `ebpf:"hold"`
	Ticks         *ebpf.Variable `ebpf:"ticks"`
	TickQueuedMax *ebpf.Variable `ebpf:"tick_queued_max"`
	InIdx         *ebpf.Variable `ebpf:"in_idx"`
	QSk           *ebpf.Variable `ebpf:"q_sk"`
	QRaw          *ebpf.Variable `ebpf:"q_raw"`
	QBeyond       *ebpf.Variable `ebpf:"q_beyond"`
	IdleSince     *ebpf.Variable `ebpf:"idle_since"`
	BusySince     *ebpf.Variable `ebpf:"busy_since"`
	Park          *ebpf.Map      `ebpf:"park"`
	Probe         *ebpf.Program  `ebpf:"probe"`
}

// harness is a stand-in component that hands the test the scheduler's
// objects when Load binds it.
type harness struct{ objects }

func (h *harness) Name() string { return "harness" }
func (h *harness) Needs() scx.Needs {
	return scx.Needs{Objects: (*objects)(nil)}
}
func (h *harness) Bind(b *scx.Binding) error { return b.Assign(&h.objects) }

const opsName = "sk_pack"

// start loads pack.bpf.c with the idle tracker, attaches it and waits
// until the kernel reports it enabled; it detaches when the test ends.
func start(t *testing.T) (*objects, *idle.Tracker) {
	t.Helper()
	h, tr := &harness{}, idle.New()
	spec, err := scx.Open(scx.Objects{Base: loadPack, V2: loadPackV2}, scx.Config{
		Name:       opsName,
		Components: []scx.Component{tr, h},
	})
	if err != nil {
		t.Fatal(err)
	}
	run := scxtest.Start(t, spec)
	scxtest.WaitAttached(t, opsName, run.Done(), nil)
	t.Cleanup(func() {
		// A failed test may leave parked tasks: let them run before
		// the hogs are killed and the scheduler detaches.
		h.Hold.Set(uint32(0))
	})
	return &h.objects, tr
}

// waitFor polls cond every 10ms until it holds, failing the test with
// what() after limit. The limits are liveness bounds for a slow TCG
// guest, not timings: each condition holds within milliseconds natively.
func waitFor(t *testing.T, limit time.Duration, cond func() bool, what func() string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", limit, what())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func get[T any](t *testing.T, v *ebpf.Variable) T {
	t.Helper()
	var x T
	if err := v.Get(&x); err != nil {
		t.Fatal(err)
	}
	return x
}

func set[T any](t *testing.T, v *ebpf.Variable, x T) {
	t.Helper()
	if err := v.Set(x); err != nil {
		t.Fatal(err)
	}
}

// picks reads a per-CPU pick counter (claimed or fell) as CPU -> count.
func picks(t *testing.T, v *ebpf.Variable) map[int]uint64 {
	t.Helper()
	arr := get[[topology.MaxBPFCPUs]uint64](t, v)
	m := map[int]uint64{}
	for cpu, n := range arr {
		if n > 0 {
			m[cpu] = n
		}
	}
	return m
}

func total(m map[int]uint64) (n uint64) {
	for _, v := range m {
		n += v
	}
	return n
}

// wakeups runs a wakeup-heavy workload: every round trip is two wakeups,
// each through ops.select_cpu.
func wakeups(t *testing.T) {
	t.Helper()
	rep, err := workload.Run(context.Background(), workload.Config{Spinners: 1, SpinWork: 10, PingPongPairs: 2, RoundTrips: 300, Deadline: 60 * time.Second})
	if err != nil {
		t.Fatalf("workload: %v\n%s", err, rep)
	}
}

// waitBusy waits until the tracker reports cpu busy (a pinned spinner
// took it) and returns the state of every CPU then.
func waitBusy(t *testing.T, tr *idle.Tracker, cpu int) []idle.CPU {
	t.Helper()
	var cpus []idle.CPU
	waitFor(t, 30*time.Second, func() bool {
		var err error
		if cpus, err = tr.Read(cpus); err != nil {
			t.Fatal(err)
		}
		return cpus[cpu].Busy() && !cpus[cpu].Idle()
	}, func() string { return fmt.Sprintf("CPU %d with a spinner never read as busy: %+v", cpu, cpus) })
	return cpus
}

// TestClaimIdle checks sk_cpuset_claim_idle: while the nest has idle CPUs
// every claimed CPU is in it, and when its only CPU is kept busy no claim
// succeeds and select_cpu falls through to idle CPUs outside it.
func TestClaimIdle(t *testing.T) {
	o, tr := start(t)
	zero := [topology.MaxBPFCPUs]uint64{}

	// CPUs 100 and 511 do not exist here: claiming must never try them
	// (scx_bpf_test_and_clear_cpu_idle would eject the scheduler), nor
	// read the kernel's masks that far.
	nest := topology.MaskOf(2, 3, 100, 511)
	if err := cpuset.Write(o.Nest, nest); err != nil {
		t.Fatal(err)
	}
	if got, err := cpuset.Read(o.Nest); err != nil || !got.Equal(nest) {
		t.Fatalf("nest reads back as %v, %v; want %v", got, err, nest)
	}
	// Every flag of sk_cpuset_claim_idle: without SMT (this VM has none)
	// a whole idle core is an idle CPU, so all claim in the nest.
	for _, flag := range []string{"SK_IDLE_ANY", "SK_IDLE_CORE", "SK_IDLE_PREFER_CORE"} {
		set(t, o.ClaimFlags, idleFlag(t, flag))
		set(t, o.Claimed, zero)
		set(t, o.Fell, zero)
		wakeups(t)
		claimed := picks(t, o.Claimed)
		t.Logf("%s, nest %v, idle: claimed %v, fell through %v", flag, nest, claimed, picks(t, o.Fell))
		if total(claimed) == 0 {
			t.Errorf("%s: no claim in nest %v while its CPUs were idle", flag, nest)
		}
		for cpu := range claimed {
			if !nest.Has(cpu) {
				t.Errorf("%s: claimed CPU %d, outside nest %v", flag, cpu, nest)
			}
		}
	}
	set(t, o.ClaimFlags, idleFlag(t, "SK_IDLE_ANY"))

	// The nest's one CPU runs a spinner: it is never idle, so every
	// wakeup falls through, to idle CPUs outside the nest.
	nest = topology.MaskOf(3)
	if err := cpuset.Write(o.Nest, nest); err != nil {
		t.Fatal(err)
	}
	scxtest.Hogs(t, 1, scxtest.HogOptions{CPUs: nest})
	waitBusy(t, tr, 3)
	set(t, o.Claimed, zero)
	set(t, o.Fell, zero)
	wakeups(t)
	claimed, fell := picks(t, o.Claimed), picks(t, o.Fell)
	t.Logf("nest %v, busy: claimed %v, fell through %v", nest, claimed, fell)
	if total(claimed) != 0 {
		t.Errorf("claimed %v from nest %v, whose CPU was busy all along", claimed, nest)
	}
	if total(fell) == 0 {
		t.Error("no wakeup fell through to an idle CPU outside the nest")
	}
	for cpu := range fell {
		if nest.Has(cpu) {
			t.Errorf("fell through to CPU %d, in the busy nest %v", cpu, nest)
		}
	}
}

// idleFlag returns the value of the enum sk_cpuset_idle_flags constant
// name, from the object's BTF: the compiler's, never a copy.
func idleFlag(t *testing.T, name string) uint32 {
	t.Helper()
	spec, err := loadPack()
	if err != nil {
		t.Fatal(err)
	}
	var e *btf.Enum
	if err := spec.Types.TypeByName("sk_cpuset_idle_flags", &e); err != nil {
		t.Fatal(err)
	}
	for _, v := range e.Values {
		if v.Name == name {
			return uint32(v.Value)
		}
	}
	t.Fatalf("enum sk_cpuset_idle_flags has no %s", name)
	return 0
}

// TestIdleSince checks idle tracking: a CPU kept busy by a spinner reads
// busy, with the same busy-since, for as long as other CPUs go idle and
// wake up; an idle CPU reads idle since a time before now; BPF
// (sk_idle_since) sees what Go (Tracker.Read) sees.
func TestIdleSince(t *testing.T) {
	o, tr := start(t)
	// Wakeups go to CPU 0 when it is idle, so CPUs 1 and 2 idle most.
	if err := cpuset.Write(o.Nest, topology.MaskOf(0)); err != nil {
		t.Fatal(err)
	}
	const busy = 3
	scxtest.Hogs(t, 1, scxtest.HogOptions{CPUs: topology.MaskOf(busy)})
	cpus := waitBusy(t, tr, busy)
	since := cpus[busy].BusySince

	// Watch until some other CPU went idle after the spinner's CPU went
	// busy (so both were observed over the same stretch), and is idle at
	// a sample, checking the spinner's CPU at every sample.
	var idleCPU = -1
	var now uint64
	waitFor(t, 30*time.Second, func() bool {
		var err error
		if cpus, err = tr.Read(cpus); err != nil {
			t.Fatal(err)
		}
		if now, err = idle.Now(); err != nil {
			t.Fatal(err)
		}
		if c := cpus[busy]; c.Idle() || c.BusySince != since {
			t.Fatalf("CPU %d with a spinner: %+v; want busy since %d all along", busy, c, since)
		}
		for cpu, c := range cpus {
			if cpu != busy && c.Idle() && c.IdleSince > since {
				idleCPU = cpu
				return true
			}
		}
		return false
	}, func() string {
		return fmt.Sprintf("no CPU went idle after CPU %d went busy at %d: %+v", busy, since, cpus)
	})
	c := cpus[idleCPU]
	if c.IdleSince > now || c.IdleFor(now) == 0 || cpus[busy].IdleFor(now) != 0 {
		t.Errorf("at %d: CPU %d %+v idle for %v, CPU %d %+v idle for %v; want the first idle since before now, the second not idle",
			now, idleCPU, c, c.IdleFor(now), busy, cpus[busy], cpus[busy].IdleFor(now))
	}

	// BPF's view: the spinner's CPU has been busy since the same time.
	if _, err := o.Probe.Run(&ebpf.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	is, bs := get[[8]uint64](t, o.IdleSince), get[[8]uint64](t, o.BusySince)
	if is[busy] != 0 || bs[busy] != since {
		t.Errorf("sk_idle_since(%d) = %d, sk_idle_busy_since = %d; want 0 and %d as Go read", busy, is[busy], bs[busy], since)
	}
}

// TestTimer checks that the periodic timer keeps firing while the
// scheduler runs: its callback counts in ticks.
func TestTimer(t *testing.T) {
	o, _ := start(t)
	first := get[uint64](t, o.Ticks)
	var n uint64
	// A 5ms timer fires 10 more times in 50ms; 30s bounds a slow guest.
	waitFor(t, 30*time.Second, func() bool {
		n = get[uint64](t, o.Ticks)
		return n >= first+10
	}, func() string { return fmt.Sprintf("ticks went from %d to %d", first, n) })
}

// TestNrQueued parks two spinning processes on the DSQ at index 0 of
// sk_dsq_layout (dispatch holds it) and compares sk_dsq_nr_queued, in
// a syscall program and in the timer's callback, with the kernel's count.
func TestNrQueued(t *testing.T) {
	o, _ := start(t)
	set(t, o.Hold, uint32(1))
	const n = 2
	var gates []io.WriteCloser
	for range n {
		// Each waits on its stdin until parked, then spins.
		cmd := exec.Command("/bin/sh", "-c", "read x; while :; do :; done")
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		if err := o.Park.Put(uint32(cmd.Process.Pid), uint32(1)); err != nil {
			t.Fatal(err)
		}
		gates = append(gates, in)
	}
	for _, g := range gates {
		fmt.Fprintln(g)
		g.Close()
	}

	probe := func(idx uint32) (sk, raw, beyond int32) {
		t.Helper()
		set(t, o.InIdx, idx)
		if _, err := o.Probe.Run(&ebpf.RunOptions{}); err != nil {
			t.Fatal(err)
		}
		return get[int32](t, o.QSk), get[int32](t, o.QRaw), get[int32](t, o.QBeyond)
	}
	var sk, raw, beyond int32
	waitFor(t, 30*time.Second, func() bool {
		sk, raw, beyond = probe(0)
		return raw == n
	}, func() string { return fmt.Sprintf("%d tasks parked, want %d", raw, n) })
	// Parked and held, the count is stable: both reads must agree.
	if sk != n || beyond != 0 {
		t.Errorf("sk_dsq_nr_queued(0) = %d, of an index beyond the layout %d; want %d (scx_bpf_dsq_nr_queued) and 0", sk, beyond, n)
	}
	if sk, _, _ := probe(1); sk != 0 {
		t.Errorf("sk_dsq_nr_queued(1) = %d with a one-DSQ layout, want 0", sk)
	}
	var tick uint32
	waitFor(t, 30*time.Second, func() bool {
		tick = get[uint32](t, o.TickQueuedMax)
		return tick == n
	}, func() string { return fmt.Sprintf("the timer's callback saw at most %d queued, want %d", tick, n) })

	set(t, o.Hold, uint32(0))
	waitFor(t, 30*time.Second, func() bool {
		_, raw, _ = probe(0)
		return raw == 0
	}, func() string { return fmt.Sprintf("%d tasks still parked after release", raw) })
}
