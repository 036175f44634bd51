/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * dutycycle.bpf.h - duty cycles: the fraction of time a task (or the tasks
 * of a domain) is runnable, as an exponentially decaying average with a
 * half-life chosen by the caller. Package lb has the bit-exact Go twin
 * (lb.DutyCycle, lb.DutyCycleDom); the layout is in dutycycle.h.
 *
 *   struct sk_dcycle *dc = ...task storage...;
 *   ops.runnable: sk_dcycle_update(dc, now, true, SK_DCYCLE_HL);
 *   ops.quiescent: sk_dcycle_update(dc, now, false, SK_DCYCLE_HL);
 *   anywhere:     sk_dcycle_read(dc, now, SK_DCYCLE_HL)  (1 << 20 = 100%)
 *
 * The math. The level x(t) is piecewise constant, so over an interval dt
 * at level x the exact average moves toward x by
 *
 *   acc' = x + (acc - x) * 2^(-dt/H)
 *
 * which is what an update computes, in integers only. dt/H is split into
 * whole half-lives n (a right shift) and a fraction q/2^32, q taken from
 * r = dt mod H by a two-step long division (no 128-bit numerator needed).
 * 2^(-q/2^32) is the product of four table entries, one per 4-bit nibble of
 * q's top 16 bits, and of 1 - e*ln2/2^32 for the low 16 bits e (its
 * quadratic error is below 0.25 units of 2^-32). Every factor is 0.32 fixed
 * point and each product rounds down.
 *
 * Error bound. The computed factor is within 8 * 2^-32 = 2^-29 of
 * 2^(-q/2^32), and q is within 2^-32 of (dt mod H)/H; since the fraction
 * part is at least 1/2, the decayed difference |acc - x| is off by at most
 * 2^-28 of itself plus two units of acc (2^-40 of a level each) from
 * rounding. In time: an update accounts its interval as dt + e with
 * |e| < H * 2^-27 (7.5 ps for H = 1 ms, 75 ns for H = 10 s). A run of
 * updates toward the same level is monotonic and, as long as they are at
 * least H * 2^-31 apart (4.7 ns for H = 10 s), reaches the level exactly:
 * always runnable converges to exactly 100%, never runnable to 0. One
 * half-life at a constant level halves |acc - x| exactly (rounded down).
 * Against the exact average, long random sequences stay within 3e-9.
 *
 * Cost: three 64-bit divisions by the half-life and about ten
 * multiplications per update; no loops, no floats.
 *
 * Nothing here is atomic: a struct sk_dcycle that several CPUs update (a
 * domain's buckets, typically) needs the caller's serialization, e.g. a
 * bpf_spin_lock next to it in the same map value.
 *
 * Prerequisites: vmlinux.h, <bpf/bpf_helpers.h>
 */
#ifndef __SCXKIT_DUTYCYCLE_BPF_H
#define __SCXKIT_DUTYCYCLE_BPF_H

#include "dutycycle.h"

/* round(ln(2) * 2^32) */
#define SK_DCYCLE_LN2_Q32 2977044472ULL

/*
 * ___sk_dcycle_pow2 - ___sk_dcycle_pow2[k][i] = round(2^32 * 2^(-i / 16^(k+1)))
 * for i = 1..15: the factor of nibble k of q (k = 0 the most significant).
 * Entry 0 would be 2^32, which does not fit; a zero nibble multiplies by
 * nothing instead. Package lb has the same table (dutycycle.go) and its
 * tests recompute it.
 */
static const u32 ___sk_dcycle_pow2[4][16] = {
	{ 0, 4112874773, 3938502376, 3771522796, 3611622603, 3458501653, 3311872529, 3171459999,
	  3037000500, 2908241642, 2784941738, 2666869345, 2553802834, 2445529972, 2341847524, 2242560872 },
	{ 0, 4283353945, 4271771996, 4260221365, 4248701965, 4237213713, 4225756525, 4214330316,
	  4202935003, 4191570503, 4180236731, 4168933606, 4157661043, 4146418961, 4135207276, 4124025908 },
	{ 0, 4294240540, 4293513907, 4292787397, 4292061010, 4291334746, 4290608604, 4289882586,
	  4289156690, 4288430917, 4287705267, 4286979740, 4286254336, 4285529054, 4284803895, 4284078859 },
	{ 0, 4294921870, 4294876445, 4294831020, 4294785595, 4294740172, 4294694748, 4294649325,
	  4294603903, 4294558481, 4294513059, 4294467638, 4294422217, 4294376797, 4294331378, 4294285959 },
};

/* ___sk_dcycle_nibble - f * (factor of nibble @k of @q) in 0.32 fixed point. */
static __always_inline u64 ___sk_dcycle_nibble(u64 f, u64 q, int k)
{
	u32 i = (q >> (28 - 4 * k)) & 15;

	/* f <= 2^32 and the entry < 2^32: the product fits in 64 bits. */
	if (i)
		f = (f * ___sk_dcycle_pow2[k][i]) >> 32;
	return f;
}

/**
 * sk_dcycle_decay - @v * 2^(-@dt/@hl), rounded down, for any u64 @v; @hl
 * must be in [1, SK_DCYCLE_MAX_HALF_LIFE_NS] (see sk_dcycle_half_life).
 */
static __always_inline u64 sk_dcycle_decay(u64 v, u64 dt, u64 hl)
{
	u64 n, r, qh, ql, q, f, g;

	n = dt / hl;
	if (n >= 64)
		return 0;
	r = dt - n * hl;
	/*
	 * q = floor(r * 2^32 / hl) < 2^32 in two 16-bit steps: r < hl <= 2^48,
	 * so r << 16 and the remainder << 16 fit in 64 bits.
	 */
	qh = (r << 16) / hl;
	ql = ((r << 16) - qh * hl) << 16;
	q = (qh << 16) | (ql / hl);

	f = 1ULL << 32;
	f = ___sk_dcycle_nibble(f, q, 0);
	f = ___sk_dcycle_nibble(f, q, 1);
	f = ___sk_dcycle_nibble(f, q, 2);
	f = ___sk_dcycle_nibble(f, q, 3);
	/* 1 - e*ln2/2^32 for the low bits e: g = e*ln2 in 0.48 fixed point, < 2^32. */
	g = ((q & 0xffff) * SK_DCYCLE_LN2_Q32) >> 16;
	f -= (f * g) >> 48;

	/* floor(v * f / 2^32) without a 128-bit product: v's two 32-bit halves. */
	v = (v >> 32) * f + (((v & 0xffffffff) * f) >> 32);
	return v >> n;
}

/* sk_dcycle_half_life - @hl clamped to [1, SK_DCYCLE_MAX_HALF_LIFE_NS]. */
static __always_inline u64 sk_dcycle_half_life(u64 hl)
{
	if (hl == 0)
		return 1;
	if (hl > SK_DCYCLE_MAX_HALF_LIFE_NS)
		return SK_DCYCLE_MAX_HALF_LIFE_NS;
	return hl;
}

/*
 * ___sk_dcycle_advance - @d's acc after @d->running held until @now. Time
 * never runs backwards here: a @now before last_ns accounts nothing.
 */
static __always_inline u64 ___sk_dcycle_advance(const struct sk_dcycle *d, u64 now, u64 hl)
{
	u64 acc = d->acc, target = (u64)d->running << SK_DCYCLE_ACC_SHIFT, dt;

	if (now <= d->last_ns)
		return acc;
	dt = now - d->last_ns;
	hl = sk_dcycle_half_life(hl);
	if (acc >= target)
		return target + sk_dcycle_decay(acc - target, dt, hl);
	return target - sk_dcycle_decay(target - acc, dt, hl);
}

/* ___sk_dcycle_round - @acc at the public scale, rounded to nearest. */
static __always_inline u64 ___sk_dcycle_round(u64 acc)
{
	const int shift = SK_DCYCLE_ACC_SHIFT - SK_DCYCLE_SHIFT;

	return (acc + (1ULL << (shift - 1))) >> shift;
}

/**
 * sk_dcycle_set_level - account the time since @d->last_ns at the previous
 * level, then make @level (clamped to SK_DCYCLE_MAX_LEVEL) the level from
 * @now on. A @now before @d->last_ns (another CPU's clock) accounts
 * nothing and leaves last_ns alone; the level still changes.
 */
static __always_inline void sk_dcycle_set_level(struct sk_dcycle *d, u64 now, u32 level, u64 hl)
{
	if (now > d->last_ns) {
		d->acc = ___sk_dcycle_advance(d, now, hl);
		d->avg = ___sk_dcycle_round(d->acc);
		d->last_ns = now;
	}
	d->running = level > SK_DCYCLE_MAX_LEVEL ? SK_DCYCLE_MAX_LEVEL : level;
}

/**
 * sk_dcycle_update - account the time since @d->last_ns at the previous
 * state, then record whether the task is @runnable from @now on.
 * @hl is the half-life in ns; use the same one for every call on @d.
 */
static __always_inline void sk_dcycle_update(struct sk_dcycle *d, u64 now, bool runnable, u64 hl)
{
	sk_dcycle_set_level(d, now, runnable ? 1 : 0, hl);
}

/**
 * sk_dcycle_read - @d's average as of @now, without changing @d:
 * SK_DCYCLE_ONE (1 << 20) is 100%, or for a bucket one runnable task on
 * average.
 */
static __always_inline u64 sk_dcycle_read(const struct sk_dcycle *d, u64 now, u64 hl)
{
	return ___sk_dcycle_round(___sk_dcycle_advance(d, now, hl));
}

/**
 * sk_dcycle_bucket - the bucket of a task of weight @weight:
 * floor(log2(@weight)) capped at SK_DCYCLE_NR_BUCKETS - 1; weight 0
 * counts as 1. BPF has no count-leading-zeros, so it is a binary search.
 */
static __always_inline u32 sk_dcycle_bucket(u32 weight)
{
	u32 b = 0;

	if (weight >= 1U << 16) {
		weight >>= 16;
		b += 16;
	}
	if (weight >= 1U << 8) {
		weight >>= 8;
		b += 8;
	}
	if (weight >= 1U << 4) {
		weight >>= 4;
		b += 4;
	}
	if (weight >= 1U << 2) {
		weight >>= 2;
		b += 2;
	}
	if (weight >= 1U << 1)
		b += 1;
	return b < SK_DCYCLE_NR_BUCKETS ? b : SK_DCYCLE_NR_BUCKETS - 1;
}

/**
 * sk_dcycle_dom_update - add @delta (+1 when a task of the bucket becomes
 * runnable, -1 when it stops) to the number of runnable tasks in @bucket of
 * @dom from @now on, after accounting the time since that bucket's last
 * update. The count is clamped to [0, SK_DCYCLE_MAX_LEVEL], so an
 * unbalanced -1 cannot wrap it. A @bucket out of range does nothing.
 */
static __always_inline void sk_dcycle_dom_update(struct sk_dcycle_dom *dom, u32 bucket, u64 now, s32 delta, u64 hl)
{
	struct sk_dcycle *d;
	s64 level;

	if (bucket >= SK_DCYCLE_NR_BUCKETS)
		return;
	d = &dom->buckets[bucket];
	level = (s64)d->running + delta;
	if (level < 0)
		level = 0;
	sk_dcycle_set_level(d, now, level > SK_DCYCLE_MAX_LEVEL ? SK_DCYCLE_MAX_LEVEL : (u32)level, hl);
}

/**
 * sk_dcycle_dom_read - the average number of runnable tasks in @bucket of
 * @dom as of @now (SK_DCYCLE_ONE = one task), i.e. the sum of their duty
 * cycles; 0 for a @bucket out of range.
 */
static __always_inline u64 sk_dcycle_dom_read(const struct sk_dcycle_dom *dom, u32 bucket, u64 now, u64 hl)
{
	if (bucket >= SK_DCYCLE_NR_BUCKETS)
		return 0;
	return sk_dcycle_read(&dom->buckets[bucket], now, hl);
}

#endif /* __SCXKIT_DUTYCYCLE_BPF_H */
