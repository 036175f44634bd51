/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * timer.bpf.h - a periodic BPF timer: a callback that runs every period
 * for as long as the scheduler is loaded, for sweeps that would otherwise
 * be done lazily on hot paths (rebalancing nests, ageing idle CPUs).
 *
 *   SK_TIMER_DEFINE(sweep);
 *
 *   SK_TIMER_CALLBACK(sweep_fn, struct sk_timer *t)
 *   {
 *           // every period, until the scheduler is unloaded
 *           scx_bpf_kick_cpu(...);
 *   }
 *
 *   SK_OPS_SLEEPABLE(s32, x_init)
 *   {
 *           s32 err = sk_timer_start(&sweep, 10 * 1000 * 1000, sweep_fn);  // 10 ms
 *
 *           if (err)
 *                   return err;   // fails the load with bpf_timer_*'s errno
 *           ...
 *   }
 *
 * sk_timer_start_pinned runs the callback on the CPU that started the
 * timer (BPF_F_TIMER_CPU_PIN, Linux 6.7; every kernel scxkit supports
 * has it): for per-CPU work, or to keep a sweep off the CPUs being packed.
 * Without it the timer may fire on any CPU.
 *
 * Context of the callback. It runs from the hrtimer softirq, with
 * preemption off and in an RCU read-side section: it must not sleep, and
 * it runs outside every sched_ext callback and without a runqueue lock.
 * The verifier checks it as part of the program that armed the timer
 * (a struct_ops program), so every kfunc compat.bpf.h declares links, but
 * sched_ext refuses at run time (an error that ejects the scheduler)
 * those bound to a callback: sk_dsq_insert and sk_dsq_move_to_local
 * (ops.enqueue/select_cpu/dispatch only), sk_reenqueue_local. Callable:
 * scx_bpf_kick_cpu, scx_bpf_dsq_nr_queued (sk_dsq_nr_queued),
 * scx_bpf_test_and_clear_cpu_idle, scx_bpf_pick_idle_cpu,
 * scx_bpf_get_idle_cpumask/_smtmask and scx_bpf_put_idle_cpumask,
 * scx_bpf_now, scx_bpf_cpuperf_*, scx_bpf_nr_cpu_ids, sk_error/sk_exit,
 * the bpf_cpumask_* kfuncs and ordinary helpers and map updates.
 *
 * Lifetime. The timer lives in its own one-entry array map (a struct
 * bpf_timer may not live in .bss or .data, which cilium/ebpf maps into
 * user memory). It stops when the map is freed, that is when the
 * scheduler's object is closed; detaching alone leaves it firing until
 * then, so a callback that must not act on a detached scheduler checks a
 * flag its ops.exit sets. The callback of one timer never runs twice at
 * once.
 *
 * Prerequisites: vmlinux.h, <scxkit/scx.bpf.h>
 */
#ifndef __SCXKIT_TIMER_BPF_H
#define __SCXKIT_TIMER_BPF_H

#ifndef CLOCK_MONOTONIC
#define CLOCK_MONOTONIC 1 /* uapi <linux/time.h>; not in vmlinux.h */
#endif

/*
 * struct sk_timer - the value of a timer map. Only the callback writes
 * fires; period_ns and flags are read at each re-arm, so the callback may
 * change period_ns to slow down or speed up.
 */
struct sk_timer {
	struct bpf_timer timer;
	u64 period_ns; /* re-arm delay, ns */
	u64 flags;     /* bpf_timer_start flags of each re-arm */
	u64 fires;     /* callbacks run so far */
};

/* SK_TIMER_DEFINE - define a timer named @name (a one-entry array map). */
#define SK_TIMER_DEFINE(name)							\
	struct {								\
		__uint(type, BPF_MAP_TYPE_ARRAY);				\
		__uint(max_entries, 1);						\
		__type(key, u32);						\
		__type(value, struct sk_timer);					\
	} name SEC(".maps")

/*
 * SK_TIMER_CALLBACK - define timer callback @fn with body run every
 * period; the body gets the struct sk_timer as @targ (declare it as
 * "struct sk_timer *t"). @fn counts the firing, runs the body and re-arms
 * the timer with the then current period_ns and flags.
 */
#define SK_TIMER_CALLBACK(fn, targ)						\
	static __always_inline void ____##fn(targ);				\
	static int fn(void *map, u32 *key, struct sk_timer *___t)		\
	{									\
		___t->fires++;							\
		____##fn(___t);							\
		bpf_timer_start(&___t->timer, ___t->period_ns, ___t->flags);	\
		return 0;							\
	}									\
	static __always_inline void ____##fn(targ)

/* ___sk_timer_of - the struct sk_timer of timer map @map, or NULL. */
static __always_inline struct sk_timer *___sk_timer_of(void *map)
{
	u32 key = 0;

	return bpf_map_lookup_elem(map, &key);
}

/*
 * ___sk_timer_start - arm @map's timer with callback @fn, first firing
 * after @period_ns, then every @period_ns; @fl are bpf_timer_start flags.
 * A macro, so that @fn reaches bpf_timer_set_callback as the constant
 * function reference the verifier demands. 0 or a negative errno
 * (-EBUSY: already started).
 */
#define ___sk_timer_start(map, period, fl, fn)					\
	({									\
		struct sk_timer *___st = ___sk_timer_of(map);			\
		long ___err = -2; /* -ENOENT */					\
		if (___st) {							\
			___st->period_ns = (period);				\
			___st->flags = (fl);					\
			___err = bpf_timer_init(&___st->timer, (map), CLOCK_MONOTONIC); \
			if (!___err)						\
				___err = bpf_timer_set_callback(&___st->timer, fn); \
			if (!___err)						\
				___err = bpf_timer_start(&___st->timer, ___st->period_ns, ___st->flags); \
		}								\
		(s32)___err;							\
	})

/*
 * sk_timer_start - arm timer @map (&name of SK_TIMER_DEFINE) to run @fn
 * (an SK_TIMER_CALLBACK) every @period_ns on any CPU. Call once, e.g.
 * from ops.init; 0 or a negative errno.
 */
#define sk_timer_start(map, period_ns, fn) ___sk_timer_start((map), (period_ns), 0, fn)

/*
 * sk_timer_start_pinned - as sk_timer_start, but every firing runs on
 * the CPU that called it.
 */
#define sk_timer_start_pinned(map, period_ns, fn)				\
	___sk_timer_start((map), (period_ns), BPF_F_TIMER_CPU_PIN, fn)

/* sk_timer_fires - how often @map's callback ran, 0 before the first. */
static __always_inline u64 sk_timer_fires(void *map)
{
	struct sk_timer *t = ___sk_timer_of(map);

	return t ? SK_READ_ONCE(t->fires) : 0;
}

#endif /* __SCXKIT_TIMER_BPF_H */
