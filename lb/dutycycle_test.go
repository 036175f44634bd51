package lb

import (
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/google/go-cmp/cmp"
)

//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -tags linux -target bpfel dcselftest dutycycle_selftest.bpf.c -- -mcpu=v3 -Wno-missing-declarations -I../bpf/include

// bpf2go generates the Go layout of every struct that a global of
// dutycycle_selftest.bpf.c uses (sk_dcycle, sk_dcycle_dom, dc_event,
// dc_result), so the directive needs no -type flags.

// Operations of struct dc_event (enum dc_op in dutycycle_selftest.bpf.c).
const (
	dcOpUpdate    = 0
	dcOpDomUpdate = 1
	dcOpSetLevel  = 2
)

const dcMaxEvents = 512 // DC_MAX_EVENTS

func loadDutyCycleSelftest(t testing.TB) *ebpf.Collection {
	t.Helper()
	spec, err := loadDcselftest()
	if err != nil {
		t.Fatal(err)
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		t.Fatalf("load dutycycle_selftest.bpf.c: %v", err)
	}
	t.Cleanup(func() { coll.Close() })
	return coll
}

func setVar(t testing.TB, coll *ebpf.Collection, name string, v any) {
	t.Helper()
	if err := coll.Variables[name].Set(v); err != nil {
		t.Fatalf("set %s: %v", name, err)
	}
}

func getVar(t testing.TB, coll *ebpf.Collection, name string, v any) {
	t.Helper()
	if err := coll.Variables[name].Get(v); err != nil {
		t.Fatalf("get %s: %v", name, err)
	}
}

func runProg(t testing.TB, coll *ebpf.Collection, name string) uint32 {
	t.Helper()
	ret, err := coll.Programs[name].Run(&ebpf.RunOptions{})
	if err != nil {
		t.Fatalf("run %s: %v", name, err)
	}
	return ret
}

// fromBPF converts the generated layout of struct sk_dcycle to DutyCycle.
func fromBPF(s dcselftestSkDcycle) DutyCycle {
	return DutyCycle{LastNs: s.LastNs, Acc: s.Acc, Avg: s.Avg, Running: s.Running}
}

// TestDutyCycleLayout checks that DutyCycle and DutyCycleDom have the
// layout of the structs in dutycycle.h, as bpf2go generated them, so that
// they can be read straight out of BPF maps.
func TestDutyCycleLayout(t *testing.T) {
	same := func(ours, theirs reflect.Type) {
		t.Helper()
		if ours.Size() != theirs.Size() || ours.Align() != theirs.Align() {
			t.Errorf("%v: size %d align %d; BPF has %d, %d", ours, ours.Size(), ours.Align(), theirs.Size(), theirs.Align())
		}
		for i := range theirs.NumField() {
			bf := theirs.Field(i)
			if bf.Name == "_" || bf.Name == "Pad" {
				continue
			}
			of, ok := ours.FieldByName(bf.Name)
			if !ok {
				t.Errorf("%v has no field %s", ours, bf.Name)
				continue
			}
			if of.Offset != bf.Offset || of.Type.Kind() != bf.Type.Kind() || of.Type.Size() != bf.Type.Size() {
				t.Errorf("%v.%s: offset %d, %v; BPF has %d, %v", ours, bf.Name, of.Offset, of.Type, bf.Offset, bf.Type)
			}
		}
	}
	same(reflect.TypeFor[DutyCycle](), reflect.TypeFor[dcselftestSkDcycle]())
	same(reflect.TypeFor[DutyCycleDom](), reflect.TypeFor[dcselftestSkDcycleDom]())
	dom := reflect.TypeFor[dcselftestSkDcycleDom]().Field(1).Type
	if dom.Len() != DutyCycleBuckets {
		t.Errorf("BPF has %d buckets, DutyCycleBuckets = %d", dom.Len(), DutyCycleBuckets)
	}
	same(reflect.TypeFor[DutyCycle](), dom.Elem())
}

// dcEventGen makes random event sequences: times up to hours, gaps from
// nanoseconds to many half-lives, and now and then a clock going
// backwards, a half-life of 0 or above the maximum, a level above the
// maximum or a bucket out of range.
type dcEventGen struct {
	r   *rand.Rand
	now uint64
	hl  uint64
}

func (g *dcEventGen) gap() uint64 {
	switch g.r.IntN(10) {
	case 0:
		return 0
	case 1, 2, 3:
		return g.r.Uint64N(2000) // nanoseconds
	case 4, 5, 6:
		return g.r.Uint64N(g.hl / 4) // well within a half-life
	case 7, 8:
		return g.r.Uint64N(4 * g.hl)
	default:
		return g.r.Uint64N(3 * 3600e9) // up to hours
	}
}

func (g *dcEventGen) next() dcselftestDcEvent {
	ev := dcselftestDcEvent{HalfLife: g.hl}
	if g.r.IntN(50) == 0 && g.now > 1e6 {
		ev.Now = g.now - g.r.Uint64N(1e6) // another CPU's clock, a bit behind
	} else {
		g.now += g.gap()
		ev.Now = g.now
	}
	ev.ReadAt = ev.Now + g.gap()
	if g.r.IntN(60) == 0 {
		ev.ReadAt = ev.Now - min(ev.Now, g.r.Uint64N(1e6))
	}
	switch g.r.IntN(100) {
	case 0:
		ev.HalfLife = 0
	case 1:
		ev.HalfLife = DutyCycleMaxHalfLife + g.r.Uint64N(1<<60)
	case 2:
		ev.HalfLife = 1 + g.r.Uint64N(1000)
	}
	ev.Bucket = uint32(g.r.IntN(DutyCycleBuckets))
	switch op := g.r.IntN(10); {
	case op < 5:
		ev.Op, ev.Arg = dcOpUpdate, int32(g.r.IntN(2))
		if g.r.IntN(20) == 0 {
			ev.Arg = g.r.Int32() - math.MaxInt32/2 // any non-zero counts as runnable
		}
	case op < 9:
		ev.Op, ev.Arg = dcOpDomUpdate, int32(g.r.IntN(3))-1
		switch g.r.IntN(40) {
		case 0:
			ev.Arg = int32(g.r.IntN(2*DutyCycleMaxLevel)) - DutyCycleMaxLevel
		case 1:
			ev.Bucket = DutyCycleBuckets + uint32(g.r.IntN(100))
		}
	default:
		ev.Op, ev.Arg = dcOpSetLevel, int32(g.r.IntN(5))
		if g.r.IntN(10) == 0 {
			ev.Arg = g.r.Int32N(math.MaxInt32)
		}
	}
	return ev
}

// apply runs ev through the Go twin, as replay does through the BPF half.
func (ev *dcselftestDcEvent) apply(d *DutyCycle, dom *DutyCycleDom) (task, bucket DutyCycle, read, domRead uint64) {
	switch ev.Op {
	case dcOpUpdate:
		d.Update(ev.Now, ev.Arg != 0, ev.HalfLife)
	case dcOpDomUpdate:
		dom.Update(int(ev.Bucket), ev.Now, ev.Arg, ev.HalfLife)
	case dcOpSetLevel:
		d.SetLevel(ev.Now, uint32(ev.Arg), ev.HalfLife)
	}
	if ev.Bucket < DutyCycleBuckets {
		bucket = dom.Buckets[ev.Bucket]
	}
	return *d, bucket, d.Read(ev.ReadAt, ev.HalfLife), dom.Read(int(ev.Bucket), ev.ReadAt, ev.HalfLife)
}

// TestDutyCycleTwin drives random event sequences through dutycycle.bpf.h
// (the replay program) and through DutyCycle and DutyCycleDom, and
// requires the same state and reads after every event.
func TestDutyCycleTwin(t *testing.T) {
	coll := loadDutyCycleSelftest(t)
	r := rand.New(rand.NewPCG(1, 2))
	const sequences, batches = 24, 4
	events := make([]dcselftestDcEvent, dcMaxEvents)
	results := make([]dcselftestDcResult, dcMaxEvents)
	total := 0
	for seq := range sequences {
		// Half-lives from 1 ms to 10 s, log-uniform.
		hl := uint64(math.Exp(math.Log(1e6) + r.Float64()*math.Log(1e4)))
		g := &dcEventGen{r: r, now: r.Uint64N(3600e9), hl: hl}
		var d DutyCycle
		var dom DutyCycleDom
		setVar(t, coll, "dc_task", dcselftestSkDcycle{})
		setVar(t, coll, "dc_dom", dcselftestSkDcycleDom{})
		for range batches {
			n := dcMaxEvents - r.IntN(dcMaxEvents/4)
			for i := range n {
				events[i] = g.next()
			}
			setVar(t, coll, "dc_events", events)
			setVar(t, coll, "dc_nr", uint32(n))
			if got := runProg(t, coll, "replay"); got != uint32(n) {
				t.Fatalf("replay applied %d events of %d", got, n)
			}
			getVar(t, coll, "dc_results", results)
			for i, ev := range events[:n] {
				task, bucket, read, domRead := ev.apply(&d, &dom)
				res := results[i]
				if diff := cmp.Diff(task, fromBPF(res.Task)); diff != "" {
					t.Fatalf("sequence %d (half-life %d ns), event %d %+v: task state, Go -BPF +:\n%s", seq, hl, total+i, ev, diff)
				}
				if diff := cmp.Diff(bucket, fromBPF(res.Bucket)); diff != "" {
					t.Fatalf("sequence %d (half-life %d ns), event %d %+v: bucket state, Go -BPF +:\n%s", seq, hl, total+i, ev, diff)
				}
				if read != res.Read || domRead != res.DomRead {
					t.Fatalf("sequence %d (half-life %d ns), event %d %+v: reads Go %d, %d; BPF %d, %d", seq, hl, total+i, ev, read, domRead, res.Read, res.DomRead)
				}
			}
			total += n
		}
	}
	t.Logf("%d events, identical state after each", total)
}

// TestDutyCycleDecayTwin compares sk_dcycle_decay with dcycleDecay on
// fractions that exercise every table entry, and on random inputs.
func TestDutyCycleDecayTwin(t *testing.T) {
	coll := loadDutyCycleSelftest(t)
	check := func(v, dt, hl uint64) {
		t.Helper()
		setVar(t, coll, "dc_in_v", v)
		setVar(t, coll, "dc_in_dt", dt)
		setVar(t, coll, "dc_in_hl", hl)
		runProg(t, coll, "decay")
		var got uint64
		getVar(t, coll, "dc_out", &got)
		if want := dcycleDecay(v, dt, dcycleHalfLife(hl)); got != want {
			t.Fatalf("decay(%d, %d, %d): BPF %d, Go %d", v, dt, hl, got, want)
		}
	}
	// hl = 2^32: dt = q, so each nibble value is hit exactly.
	for k := range 4 {
		for i := range uint64(16) {
			q := i << (28 - 4*k)
			check(1<<40, q, 1<<32)
			check(math.MaxUint64, q|0xffff, 1<<32)
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		v := r.Uint64() >> r.IntN(64)
		hl := r.Uint64() >> r.IntN(64)
		dt := r.Uint64() >> r.IntN(64)
		check(v, dt, hl)
	}
}

// TestDutyCycleBucketTwin compares sk_dcycle_bucket with DutyCycleBucket.
func TestDutyCycleBucketTwin(t *testing.T) {
	coll := loadDutyCycleSelftest(t)
	weights := []uint32{0, math.MaxUint32, 1 << 31, 16383, 16384, 65535, 65536}
	for w := range uint32(10050) {
		weights = append(weights, w)
	}
	for _, w := range weights {
		setVar(t, coll, "dc_in_weight", w)
		if got, want := runProg(t, coll, "bucket"), DutyCycleBucket(w); int(got) != want {
			t.Fatalf("bucket(%d): BPF %d, Go %d", w, got, want)
		}
	}
	for w, want := range map[uint32]int{0: 0, 1: 0, 2: 1, 3: 1, 100: 6, 127: 6, 128: 7, 8191: 12, 8192: 13, 10000: 13, 1 << 20: 13} {
		if got := DutyCycleBucket(w); got != want {
			t.Errorf("DutyCycleBucket(%d) = %d; want %d", w, got, want)
		}
	}
}

// TestDutyCycleTable recomputes the table of factors.
func TestDutyCycleTable(t *testing.T) {
	for k := range 4 {
		for i := 1; i < 16; i++ {
			want := math.Round(math.Exp2(32 - float64(i)/math.Pow(16, float64(k+1))))
			if got := float64(dcyclePow2[k][i]); got != want {
				t.Errorf("dcyclePow2[%d][%d] = %.0f; want %.0f", k, i, got, want)
			}
		}
	}
	if want := math.Round(math.Ln2 * (1 << 32)); float64(dcycleLn2Q32) != want {
		t.Errorf("dcycleLn2Q32 = %d; want %.0f", dcycleLn2Q32, want)
	}
}

// factorBound is the documented error of the 0.32 fixed-point factor:
// 8 units of 2^-32, including the truncation of q.
const factorBound = 8.0 / (1 << 32)

// TestDutyCycleFactor checks the factor 2^(-x) for x in [0, 1) against
// float64 math, on every nibble pattern and random fractions.
func TestDutyCycleFactor(t *testing.T) {
	worst := 0.0
	check := func(q uint64) {
		got := float64(dcycleFactor(q)) / (1 << 32)
		err := math.Abs(got - math.Exp2(-float64(q)/(1<<32)))
		worst = max(worst, err)
		if err > factorBound {
			t.Fatalf("factor(%#x) = %.12f, off by %.3g units of 2^-32", q, got, err*(1<<32))
		}
	}
	for q := uint64(0); q < 1<<16; q++ {
		check(q << 16)
		check(q<<16 | 0xffff)
	}
	r := rand.New(rand.NewPCG(5, 6))
	for range 1 << 18 {
		check(r.Uint64N(1 << 32))
	}
	t.Logf("worst factor error: %.2f units of 2^-32", worst*(1<<32))

	// Through dcycleDecay, with the truncation of q, relative to the exact
	// decay: within 2^-28 of the value plus 2 units.
	for range 1 << 16 {
		hl := 1 + r.Uint64N(DutyCycleMaxHalfLife)
		dt := r.Uint64N(3 * hl)
		v := r.Uint64N(1 << 50)
		exact := float64(v) * math.Exp2(-float64(dt)/float64(hl))
		if got := float64(dcycleDecay(v, dt, hl)); math.Abs(got-exact) > exact/(1<<28)+2+exact*1e-15 {
			t.Fatalf("decay(%d, %d, %d) = %.0f; exact %.3f", v, dt, hl, got, exact)
		}
	}
}

// TestDutyCycleAlwaysRunnable: a task runnable all along converges to
// exactly 100%, and on the way stays within the bound of the exact curve
// 1 - 2^(-t/H).
func TestDutyCycleAlwaysRunnable(t *testing.T) {
	for _, hl := range []uint64{1e6, 100e6, 10e9} {
		for _, step := range []uint64{hl / 1000, hl / 7, 3 * hl / 2} {
			var d DutyCycle
			d.Update(1000, true, hl)
			now := uint64(1000)
			for now < 1000+80*hl {
				now += step
				d.Update(now, true, hl)
				exact := 1 - math.Exp2(-float64(now-1000)/float64(hl))
				if got := float64(d.Acc) / (1 << DutyCycleAccShift); math.Abs(got-exact) > 1e-6 {
					t.Fatalf("half-life %d, step %d, t=%d: %.9f; exact %.9f", hl, step, now-1000, got, exact)
				}
			}
			if d.Acc != 1<<DutyCycleAccShift || d.Avg != DutyCycleOne || d.Fraction() != 1 {
				t.Errorf("half-life %d, step %d: after 80 half-lives Acc %d Avg %d; want exactly 100%%", hl, step, d.Acc, d.Avg)
			}
		}
	}
}

// TestDutyCycleNeverRunnable: a task never runnable stays at 0, and one
// that stops running decays to exactly 0.
func TestDutyCycleNeverRunnable(t *testing.T) {
	const hl uint64 = 50e6
	var d DutyCycle
	for now := uint64(0); now < 3600e9; now += 7e9 {
		d.Update(now, false, hl)
		if d.Acc != 0 || d.Read(now+1e9, hl) != 0 {
			t.Fatalf("never runnable: %+v", d)
		}
	}
	d = DutyCycle{Acc: 1 << DutyCycleAccShift, Avg: DutyCycleOne}
	for now := uint64(1); now < 100*hl; now += hl / 3 {
		d.Update(now, false, hl)
	}
	if d.Acc != 0 || d.Avg != 0 {
		t.Errorf("after 100 idle half-lives: %+v", d)
	}
}

// TestDutyCycleSquareWave: runnable half of every period much shorter
// than the half-life settles at 50%, with a ripple of about
// period*ln2/(4*H) either side.
func TestDutyCycleSquareWave(t *testing.T) {
	for _, tc := range []struct{ hl, period uint64 }{{100e6, 1e6}, {1e9, 10e6}, {10e9, 1e6}, {5e6, 100e3}} {
		var d DutyCycle
		now := uint64(12345)
		for now < 20*tc.hl {
			d.Update(now, true, tc.hl)
			now += tc.period / 2
			d.Update(now, false, tc.hl)
			now += tc.period / 2
		}
		ripple := float64(tc.period) * math.Ln2 / float64(4*tc.hl)
		for i, at := range []uint64{0, tc.period / 4} {
			got := float64(d.Read(now+at, tc.hl)) / DutyCycleOne
			if math.Abs(got-0.5) > ripple+1e-5 {
				t.Errorf("half-life %d, period %d, read %d: %.6f; want 0.5 ± %.6f", tc.hl, tc.period, i, got, ripple)
			}
		}
	}
}

// TestDutyCycleHalfLife: one half-life at a constant level halves the
// distance to that level exactly (rounded down, in units of Acc).
func TestDutyCycleHalfLife(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for range 1000 {
		hl := 1 + r.Uint64N(DutyCycleMaxHalfLife)
		acc := r.Uint64N(1<<DutyCycleAccShift + 1)
		last := r.Uint64N(1 << 60)
		idle := DutyCycle{LastNs: last, Acc: acc, Avg: dcycleRound(acc)}
		busy := idle
		busy.Running = 1
		idle.Update(last+hl, false, hl)
		busy.Update(last+hl, true, hl)
		if want := acc >> 1; idle.Acc != want {
			t.Fatalf("idle for a half-life %d from %d: %d; want %d", hl, acc, idle.Acc, want)
		}
		if want := 1<<DutyCycleAccShift - (1<<DutyCycleAccShift-acc)>>1; busy.Acc != want {
			t.Fatalf("runnable for a half-life %d from %d: %d; want %d", hl, acc, busy.Acc, want)
		}
		if half := float64(idle.Read(last+2*hl, hl)) / DutyCycleOne; math.Abs(half-float64(acc)/(1<<DutyCycleAccShift)/4) > 1.0/DutyCycleOne {
			t.Fatalf("Read two half-lives on from %d: %.7f", acc, half)
		}
	}
}

// TestDutyCycleReference follows random sequences with a float64 model of
// the exact average and checks that the error stays small.
func TestDutyCycleReference(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	worst := 0.0
	for range 50 {
		hl := uint64(math.Exp(math.Log(1e6) + r.Float64()*math.Log(1e4)))
		var d DutyCycle
		exact, now, running := 0.0, uint64(0), false
		for range 20000 {
			dt := r.Uint64N(hl / 10)
			if r.IntN(100) == 0 {
				dt = r.Uint64N(5 * hl)
			}
			now += dt
			x := 0.0
			if running {
				x = 1
			}
			exact = x + (exact-x)*math.Exp2(-float64(dt)/float64(hl))
			running = r.IntN(3) != 0
			d.Update(now, running, hl)
			err := math.Abs(float64(d.Acc)/(1<<DutyCycleAccShift) - exact)
			worst = max(worst, err)
			if err > 1e-7 {
				t.Fatalf("half-life %d at %d: %.10f; exact %.10f", hl, now, float64(d.Acc)/(1<<DutyCycleAccShift), exact)
			}
		}
	}
	t.Logf("worst difference from the exact average: %.3g", worst)
}

// TestDutyCycleDom: a bucket's average is the sum of its tasks' duty cycles.
func TestDutyCycleDom(t *testing.T) {
	const hl uint64 = 10e6
	var dom DutyCycleDom
	var tasks [3]DutyCycle
	b := DutyCycleBucket(100)
	r := rand.New(rand.NewPCG(11, 12))
	now := uint64(0)
	for range 5000 {
		now += r.Uint64N(hl / 5)
		i := r.IntN(len(tasks))
		runnable := r.IntN(2) == 0
		if runnable != (tasks[i].Running == 1) {
			dom.Update(b, now, map[bool]int32{true: 1, false: -1}[runnable], hl)
		}
		tasks[i].Update(now, runnable, hl)
		var sum uint64
		for _, tk := range tasks {
			sum += tk.Read(now, hl)
		}
		if got := dom.Read(b, now, hl); math.Abs(float64(got)-float64(sum)) > 3 {
			t.Fatalf("bucket average %d; tasks sum to %d", got, sum)
		}
	}
	dom.Update(b, now, -100, hl)
	if dom.Buckets[b].Running != 0 {
		t.Errorf("count below zero: %d", dom.Buckets[b].Running)
	}
	dom.Update(-1, now, 1, hl)
	dom.Update(DutyCycleBuckets, now, 1, hl)
	if dom.Read(-1, now, hl) != 0 || dom.Read(DutyCycleBuckets, now, hl) != 0 {
		t.Error("bucket out of range read as non-zero")
	}
}

func TestDutyCycleUpdateAllocates(t *testing.T) {
	var d DutyCycle
	now := uint64(0)
	if n := testing.AllocsPerRun(100, func() {
		now += 12345
		d.Update(now, now&1 == 0, 100e6)
		_ = d.Read(now+1000, 100e6)
	}); n != 0 {
		t.Errorf("Update and Read allocate %.1f times", n)
	}
}

func BenchmarkDutyCycleUpdate(b *testing.B) {
	var d DutyCycle
	now := uint64(0)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		now += 1000 + uint64(i&1023)
		d.Update(now, i&1 == 0, 100e6)
	}
}
