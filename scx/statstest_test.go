package scx

//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -tags linux -target bpfel -no-global-types statstest statstest.bpf.c -- -mcpu=v3 -Wno-missing-declarations -I../bpf/include

import (
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"golang.org/x/sys/unix"
)

// loadStatsReader loads statstest.bpf.c on the host (it needs no sched_ext
// types) and returns the reader Scheduler.ReadStats would use.
func loadStatsReader(t *testing.T) (*ebpf.Collection, *statsReader) {
	t.Helper()
	spec, err := loadStatstest()
	if err != nil {
		t.Fatal(err)
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		t.Fatalf("load statstest.bpf.c: %v", err)
	}
	t.Cleanup(func() { coll.Close() })
	r, err := openStats(spec, coll)
	if err != nil {
		t.Fatal(err)
	}
	if r == nil {
		t.Fatal("openStats found neither sk_stats nor sk_gauges")
	}
	return coll, r
}

// setVar sets a global of the loaded statstest object.
func setVar(t *testing.T, coll *ebpf.Collection, name string, v any) {
	t.Helper()
	if err := coll.Variables[name].Set(v); err != nil {
		t.Fatalf("set %s: %v", name, err)
	}
}

// runOnCPU runs program p on CPU cpu: on a goroutine locked to a thread
// pinned there, which ends with the goroutine (it stays locked), so no
// other goroutine inherits its affinity.
func runOnCPU(t *testing.T, p *ebpf.Program, cpu int) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		var set unix.CPUSet
		set.Set(cpu)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			errc <- err
			return
		}
		_, err := p.Run(&ebpf.RunOptions{})
		errc <- err
	}()
	if err := <-errc; err != nil {
		t.Fatalf("run %v on CPU %d: %v", p, cpu, err)
	}
}

// onlineCPUs returns up to two CPUs this process may run on.
func onlineCPUs(t *testing.T) []int {
	t.Helper()
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		t.Fatal(err)
	}
	var cpus []int
	for cpu := 0; cpu < 1024 && len(cpus) < 2; cpu++ {
		if set.IsSet(cpu) {
			cpus = append(cpus, cpu)
		}
	}
	return cpus
}

// TestStatsGaugeKinds reads the kinds and help texts of statstest's stats
// from its BTF: SK_STAT_GAUGE fields and SK_GAUGES_DEFINE fields are
// gauges, the SK_STATS_DEFINE struct's others counters, in field order.
func TestStatsGaugeKinds(t *testing.T) {
	_, r := loadStatsReader(t)
	want := []StatDesc{
		{Name: "events", Help: "Events counted.", Kind: Counter},
		{Name: "queued", Help: "Tasks queued now, summed over CPUs.", Kind: Gauge},
		{Name: "cpu_level", Help: "the scheduler's BPF gauge cpu_level", Kind: Gauge},
		{Name: "nest_size", Help: "CPUs in the nest.", Kind: Gauge},
		{Name: "balance", Help: "the scheduler's BPF gauge balance", Kind: Gauge},
	}
	if !slices.Equal(r.descs, want) {
		t.Errorf("descs:\n got %+v\nwant %+v", r.descs, want)
	}
	var st Stats
	if err := r.read(&st); err != nil {
		t.Fatal(err)
	}
	wantKinds := []StatKind{Counter, Gauge, Gauge, Gauge, Gauge}
	if !slices.Equal(st.Kinds, wantKinds) || !slices.Equal(st.Names, []string{"events", "queued", "cpu_level", "nest_size", "balance"}) {
		t.Errorf("Stats names %v kinds %v; want kinds %v", st.Names, st.Kinds, wantKinds)
	}
}

// TestStatsGaugeValues changes the stats from BPF on two CPUs and checks
// what the reader sums: per-CPU gauge parts below zero sum to a level
// below zero, sk_stat_set replaces a CPU's part, sk_gauge_set replaces
// the global level and sk_gauge_add/sub change it.
func TestStatsGaugeValues(t *testing.T) {
	coll, r := loadStatsReader(t)
	cpus := onlineCPUs(t)
	if len(cpus) < 2 {
		t.Skip("needs two CPUs to spread a gauge's parts")
	}
	perCPU := coll.Programs["per_cpu"]
	// CPU a: 5 events, 3 queued, its level 7; CPU b: 2 events, 5 taken
	// off the queue, its level 4.
	setVar(t, coll, "in_events", uint64(5))
	setVar(t, coll, "in_queued", int64(3))
	setVar(t, coll, "in_cpu_level", uint64(7))
	runOnCPU(t, perCPU, cpus[0])
	setVar(t, coll, "in_events", uint64(2))
	setVar(t, coll, "in_queued", int64(-5))
	setVar(t, coll, "in_cpu_level", uint64(4))
	runOnCPU(t, perCPU, cpus[1])
	// CPU b again: set replaces its part (4 -> 1), add adds (5 more events).
	setVar(t, coll, "in_events", uint64(5))
	setVar(t, coll, "in_queued", int64(0))
	setVar(t, coll, "in_cpu_level", uint64(1))
	runOnCPU(t, perCPU, cpus[1])

	global := coll.Programs["global"]
	setVar(t, coll, "in_nest_size", uint64(4))
	setVar(t, coll, "in_balance_add", int64(10))
	setVar(t, coll, "in_balance_sub", int64(3))
	runOnCPU(t, global, cpus[0])
	runOnCPU(t, global, cpus[1]) // nest_size stays 4, balance 14
	setVar(t, coll, "in_balance_add", int64(0))
	setVar(t, coll, "in_balance_sub", int64(20))
	runOnCPU(t, global, cpus[0]) // balance -6

	var st Stats
	if err := r.read(&st); err != nil {
		t.Fatal(err)
	}
	if got, ok := st.Get("events"); !ok || got != 12 {
		t.Errorf("events = %d, %t; want 12", got, ok)
	}
	if _, ok := st.Level("events"); ok {
		t.Error("Level(events): a counter has a level")
	}
	for name, want := range map[string]int64{"queued": -2, "cpu_level": 8, "nest_size": 4, "balance": -6} {
		if got, ok := st.Level(name); !ok || got != want {
			t.Errorf("Level(%s) = %d, %t; want %d", name, got, ok, want)
		}
	}
	if got, want := st.String(), "events=12 queued=-2 cpu_level=8 nest_size=4 balance=-6"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}

	// The Snapshot carries the kinds, and a gauge's level below zero.
	s := &Scheduler{name: "statstest", coll: coll, stats: r}
	var snap Snapshot
	if err := s.ReadSnapshot(&snap); err != nil {
		t.Fatal(err)
	}
	if len(snap.Sets) != 1 || snap.Sets[0].Component != "" {
		t.Fatalf("snapshot sets: %+v; want the scheduler's own", snap.Sets)
	}
	for name, want := range map[string]float64{"events": 12, "queued": -2, "balance": -6} {
		if got, ok := snap.Value("", name, ""); !ok || got != want {
			t.Errorf("snapshot %s = %v, %t; want %v", name, got, ok, want)
		}
	}
	for _, d := range snap.Sets[0].Descs {
		if want := map[bool]StatKind{true: Counter, false: Gauge}[d.Name == "events"]; d.Kind != want {
			t.Errorf("snapshot stat %s: kind %v, want %v", d.Name, d.Kind, want)
		}
	}
}

// TestStatsDelta reads twice into one Stats and checks that the second
// read keeps the first as PrevTime/PrevValues, that Delta is the
// difference of the two totals of a counter and that it allocates
// nothing; a read of another reader into the same Stats drops Prev.
func TestStatsDelta(t *testing.T) {
	coll, r := loadStatsReader(t)
	perCPU := coll.Programs["per_cpu"]
	run := func(events uint64) {
		t.Helper()
		setVar(t, coll, "in_events", events)
		if _, err := perCPU.Run(&ebpf.RunOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	run(4)
	var st Stats
	if err := r.read(&st); err != nil {
		t.Fatal(err)
	}
	if _, ok := st.Delta("events"); ok || st.Interval() != 0 || !st.PrevTime.IsZero() {
		t.Errorf("after a first read: Delta ok %t, Interval %v, PrevTime %v; want none", ok, st.Interval(), st.PrevTime)
	}
	first := st.Time
	run(6)
	if err := r.read(&st); err != nil {
		t.Fatal(err)
	}
	total, _ := st.Get("events")
	prev := st.PrevValues[0]
	if d, ok := st.Delta("events"); !ok || d != 6 || total-prev != 6 || total != 10 {
		t.Errorf("Delta(events) = %d, %t; totals %d then %d; want 6, 4 then 10", d, ok, prev, total)
	}
	if !st.PrevTime.Equal(first) || st.Interval() != st.Time.Sub(first) || st.Interval() < 0 {
		t.Errorf("PrevTime %v, Interval %v; want the first read's time %v", st.PrevTime, st.Interval(), first)
	}
	if _, ok := st.Delta("queued"); ok {
		t.Error("Delta(queued): a gauge has a delta")
	}
	if _, ok := st.Delta("nope"); ok {
		t.Error("Delta(nope) found a stat")
	}
	if n := testing.AllocsPerRun(20, func() {
		if err := r.read(&st); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("read: %v allocations, want 0", n)
	}
	if d, ok := st.Delta("events"); !ok || d != 0 {
		t.Errorf("Delta(events) with no event between reads = %d, %t; want 0", d, ok)
	}

	// Another scheduler's reader: Prev would compare unrelated values.
	_, other := loadStatsReader(t)
	if err := other.read(&st); err != nil {
		t.Fatal(err)
	}
	if _, ok := st.Delta("events"); ok || len(st.PrevValues) != 0 {
		t.Errorf("after a read of another scheduler: Delta ok %t, PrevValues %v; want none", ok, st.PrevValues)
	}
}

// TestStatsFieldErrors checks the errors for stats structs the reader
// cannot read, each naming the field and the fix.
func TestStatsFieldErrors(t *testing.T) {
	u64 := &btf.Typedef{Name: "u64", Type: &btf.Int{Name: "unsigned long long", Size: 8}}
	u32 := &btf.Int{Name: "unsigned int", Size: 4}
	st := func(members ...btf.Member) *btf.Struct {
		for i := range members {
			members[i].Offset = btf.Bits(64 * i)
		}
		return &btf.Struct{Name: "s", Size: uint32(8 * len(members)), Members: members}
	}
	for _, tc := range []struct {
		name   string
		gauges bool
		value  btf.Type
		want   string
	}{
		{"unknown kind", false, st(btf.Member{Name: "x", Type: u64, Tags: []string{"sk_kind:level"}}), `field x of struct s: kind tag "sk_kind:level": use SK_STAT_GAUGE`},
		{"short field", false, st(btf.Member{Name: "x", Type: u32}), "field x of struct s is not a 64-bit integer"},
		{"array field", true, st(btf.Member{Name: "x", Type: &btf.Array{Type: u32, Nelems: 2}}), "field x of struct s is not a 64-bit integer"},
		{"counter gauge", true, st(btf.Member{Name: "x", Type: u64, Tags: []string{"sk_kind:counter"}}), "sk_gauges: field x: every field of SK_GAUGES_DEFINE is a gauge"},
		{"not a struct", true, u64, "want a struct of u64 fields"},
	} {
		var err error
		if tc.gauges {
			_, err = gaugeDescs(tc.value)
		} else {
			_, _, err = counterDescs(tc.value)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want an error containing %q", tc.name, err, tc.want)
		}
	}

	// A gauge named like a field of sk_stats.
	coll, _ := loadStatsReader(t)
	r := &statsReader{names: []string{"nest_size"}}
	err := r.addGauges(coll.Variables[varGauges])
	if err == nil || !strings.Contains(err.Error(), "gauge nest_size has the name of a field of sk_stats") {
		t.Errorf("gauge named like a counter: %v", err)
	}
}
