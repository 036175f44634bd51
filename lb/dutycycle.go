package lb

import (
	"math/bits"
	"structs"
)

// Fixed-point constants of duty-cycle tracking, as in
// bpf/include/scxkit/dutycycle.h. TestConstantsMatchBPF checks them
// against the compiler's values of the header's macros.
const (
	// DutyCycleShift is the scale of DutyCycle.Avg and of what Read
	// returns: DutyCycleOne is 100% (SK_DCYCLE_SHIFT, SK_DCYCLE_ONE).
	DutyCycleShift = 20
	DutyCycleOne   = 1 << DutyCycleShift

	// DutyCycleAccShift is the scale of the internal DutyCycle.Acc
	// (SK_DCYCLE_ACC_SHIFT).
	DutyCycleAccShift = 40

	// DutyCycleMaxLevel is the highest level; higher ones are clamped
	// (SK_DCYCLE_MAX_LEVEL).
	DutyCycleMaxLevel = 1<<23 - 1

	// DutyCycleMaxHalfLife is the longest half-life in ns; longer ones are
	// clamped to it, and 0 counts as 1 ns (SK_DCYCLE_MAX_HALF_LIFE_NS).
	DutyCycleMaxHalfLife = 1 << 48

	// DutyCycleBuckets is the number of weight buckets of a DutyCycleDom
	// (SK_DCYCLE_NR_BUCKETS).
	DutyCycleBuckets = 14
)

// DutyCycle is the Go twin of struct sk_dcycle: an exponentially decaying
// average of a piecewise-constant level (for a task, 1 while runnable and
// 0 otherwise, so the average is its duty cycle) with a half-life given on
// each call. The layout is that of the BPF struct, so a DutyCycle can be
// read straight out of a BPF map, and its methods compute bit for bit what
// dutycycle.bpf.h computes; see that header for the math and its error
// bound (an update accounts its interval to within halfLife * 2^-27).
//
// The zero value is level 0 since time 0.
type DutyCycle struct {
	_       structs.HostLayout
	LastNs  uint64 // time of the last update, ns
	Acc     uint64 // average level as of LastNs, 1<<DutyCycleAccShift = 1
	Avg     uint64 // Acc rounded to 1<<DutyCycleShift = 1
	Running uint32 // level since LastNs: 0 or 1 for a task, a count for a bucket
	_       [4]byte
}

// DutyCycleDom is the Go twin of struct sk_dcycle_dom: a domain's
// runnable tasks by weight bucket (see DutyCycleBucket). Bucket b's level
// is the number of runnable tasks of the bucket, so its average is the sum
// of their duty cycles.
type DutyCycleDom struct {
	Buckets [DutyCycleBuckets]DutyCycle
}

// dcycleLn2Q32 is round(ln(2) * 2^32), SK_DCYCLE_LN2_Q32 of
// dutycycle.bpf.h.
const dcycleLn2Q32 = uint64(lbtypesSkLbConstsSK_DC_LN2Q32)

// dcyclePow2[k][i] = round(2^32 * 2^(-i/16^(k+1))) for i = 1..15, as
// ___sk_dcycle_pow2 in dutycycle.bpf.h.
var dcyclePow2 = [4][16]uint32{
	{0, 4112874773, 3938502376, 3771522796, 3611622603, 3458501653, 3311872529, 3171459999,
		3037000500, 2908241642, 2784941738, 2666869345, 2553802834, 2445529972, 2341847524, 2242560872},
	{0, 4283353945, 4271771996, 4260221365, 4248701965, 4237213713, 4225756525, 4214330316,
		4202935003, 4191570503, 4180236731, 4168933606, 4157661043, 4146418961, 4135207276, 4124025908},
	{0, 4294240540, 4293513907, 4292787397, 4292061010, 4291334746, 4290608604, 4289882586,
		4289156690, 4288430917, 4287705267, 4286979740, 4286254336, 4285529054, 4284803895, 4284078859},
	{0, 4294921870, 4294876445, 4294831020, 4294785595, 4294740172, 4294694748, 4294649325,
		4294603903, 4294558481, 4294513059, 4294467638, 4294422217, 4294376797, 4294331378, 4294285959},
}

// dcycleFactor is 2^(-q/2^32) in 0.32 fixed point, as computed by
// sk_dcycle_decay.
func dcycleFactor(q uint64) uint64 {
	f := uint64(1) << 32
	for k := range 4 {
		if i := (q >> (28 - 4*k)) & 15; i != 0 {
			f = f * uint64(dcyclePow2[k][i]) >> 32
		}
	}
	g := (q & 0xffff) * dcycleLn2Q32 >> 16
	return f - f*g>>48
}

// dcycleDecay is sk_dcycle_decay: v * 2^(-dt/hl) rounded down, hl in
// [1, DutyCycleMaxHalfLife].
func dcycleDecay(v, dt, hl uint64) uint64 {
	n := dt / hl
	if n >= 64 {
		return 0
	}
	r := dt - n*hl
	qh := (r << 16) / hl
	ql := ((r << 16) - qh*hl) << 16
	q := qh<<16 | ql/hl
	f := dcycleFactor(q)
	v = (v>>32)*f + (v&0xffffffff)*f>>32
	return v >> n
}

// dcycleHalfLife is sk_dcycle_half_life: hl clamped to
// [1, DutyCycleMaxHalfLife].
func dcycleHalfLife(hl uint64) uint64 {
	return max(1, min(hl, DutyCycleMaxHalfLife))
}

// advance is ___sk_dcycle_advance: Acc after Running held until now.
func (d *DutyCycle) advance(now, hl uint64) uint64 {
	if now <= d.LastNs {
		return d.Acc
	}
	dt := now - d.LastNs
	hl = dcycleHalfLife(hl)
	target := uint64(d.Running) << DutyCycleAccShift
	if d.Acc >= target {
		return target + dcycleDecay(d.Acc-target, dt, hl)
	}
	return target - dcycleDecay(target-d.Acc, dt, hl)
}

// dcycleRound is ___sk_dcycle_round: acc at the public scale, rounded to
// nearest.
func dcycleRound(acc uint64) uint64 {
	const shift = DutyCycleAccShift - DutyCycleShift
	return (acc + 1<<(shift-1)) >> shift
}

// SetLevel is sk_dcycle_set_level: it accounts the time since LastNs at
// the previous level, then makes level (clamped to DutyCycleMaxLevel) the
// level from now on. A now before LastNs accounts nothing and leaves
// LastNs alone; the level still changes.
func (d *DutyCycle) SetLevel(now uint64, level uint32, halfLife uint64) {
	if now > d.LastNs {
		d.Acc = d.advance(now, halfLife)
		d.Avg = dcycleRound(d.Acc)
		d.LastNs = now
	}
	d.Running = min(level, DutyCycleMaxLevel)
}

// Update is sk_dcycle_update: it accounts the time since LastNs at the
// previous state, then records whether the task is runnable from now on.
// halfLife is in ns; use the same one for every call on d.
func (d *DutyCycle) Update(now uint64, runnable bool, halfLife uint64) {
	var level uint32
	if runnable {
		level = 1
	}
	d.SetLevel(now, level, halfLife)
}

// Read is sk_dcycle_read: the average as of now, without changing d;
// DutyCycleOne is 100% (for a bucket, one runnable task on average).
func (d DutyCycle) Read(now, halfLife uint64) uint64 {
	return dcycleRound(d.advance(now, halfLife))
}

// Fraction is Avg, the average as of LastNs, as a fraction: 1 is 100%.
func (d DutyCycle) Fraction() float64 {
	return float64(d.Avg) / DutyCycleOne
}

// DutyCycleBucket is sk_dcycle_bucket: the bucket of a task of weight w,
// floor(log2(w)) capped at DutyCycleBuckets-1; weight 0 counts as 1.
func DutyCycleBucket(w uint32) int {
	return min(bits.Len32(max(w, 1))-1, DutyCycleBuckets-1)
}

// Update is sk_dcycle_dom_update: it adds delta (+1 when a task of the
// bucket becomes runnable, -1 when it stops) to the number of runnable
// tasks in bucket from now on, after accounting the time since that
// bucket's last update. The count is clamped to [0, DutyCycleMaxLevel]; a
// bucket out of range does nothing.
func (dom *DutyCycleDom) Update(bucket int, now uint64, delta int32, halfLife uint64) {
	if bucket < 0 || bucket >= DutyCycleBuckets {
		return
	}
	d := &dom.Buckets[bucket]
	level := max(int64(d.Running)+int64(delta), 0)
	d.SetLevel(now, uint32(min(level, DutyCycleMaxLevel)), halfLife)
}

// Read is sk_dcycle_dom_read: the average number of runnable tasks in
// bucket as of now (DutyCycleOne = one task), the sum of their duty
// cycles; 0 for a bucket out of range.
func (dom *DutyCycleDom) Read(bucket int, now, halfLife uint64) uint64 {
	if bucket < 0 || bucket >= DutyCycleBuckets {
		return 0
	}
	return dom.Buckets[bucket].Read(now, halfLife)
}
