/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * cpuset.bpf.h - a fixed-size CPU set that lives in a BPF global or a map
 * value, with atomic bit operations, and claiming an idle CPU within a set.
 *
 * struct sk_cpuset is plain data (SK_CPUSET_WORDS u64 words, bit c of the
 * set is CPU c), so a scheduler keeps its CPU sets as globals that Go reads
 * and writes as variables (package cpuset: cpuset.Read, cpuset.Write), or
 * in map values; no kptr, no allocation, no release. It covers
 * SK_CPUSET_MAX_CPUS kernel CPU ids, the same bound as the topology
 * component (SK_TOPO_MAX_CPUS); CPUs at or above it are never members.
 *
 * A core-packing scheduler (a primary and a reserve "nest" of CPUs):
 *
 *   #include <scxkit/scx.bpf.h>
 *   #include <scxkit/cpuset.bpf.h>
 *
 *   struct sk_cpuset primary SEC(".bss"), reserve SEC(".bss");  // Go: cpuset.Write
 *
 *   SK_OPS(s32, pack_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
 *   {
 *           struct sk_cpuset idle;
 *           s32 cpu = -1;
 *
 *           // One look at the kernel's idle mask, for every set tried.
 *           if (sk_cpuset_idle_view(&idle, p, SK_IDLE_ANY)) {
 *                   cpu = sk_cpuset_claim(&idle, &primary, prev_cpu);
 *                   if (cpu < 0)
 *                           cpu = sk_cpuset_claim(&idle, &reserve, prev_cpu);
 *           }
 *           if (cpu >= 0) {         // claimed: its idle bit is cleared, run there
 *                   sk_dsq_insert(p, SK_DSQ_LOCAL, sk_slice(), 0);
 *                   return cpu;
 *           }
 *           return prev_cpu;        // or grow the nest, or scx_bpf_select_cpu_dfl
 *   }
 *
 *   // elsewhere, from any context: atomic membership changes
 *   sk_cpuset_set(&reserve, cpu);
 *   if (sk_cpuset_test_and_clear(&primary, cpu)) ...
 *
 *   // iterate: every CPU of a set, in ascending order
 *   s32 cpu = -1;
 *   u32 i;
 *   bpf_for(i, 0, SK_CPUSET_MAX_CPUS) {
 *           cpu = sk_cpuset_next(&primary, cpu + 1);
 *           if (cpu < 0)
 *                   break;
 *           ...
 *   }
 *
 * Memory ordering. sk_cpuset_set and sk_cpuset_clear are atomic but
 * unordered (BPF atomic or/and without fetch: relaxed on arm64): no update
 * is lost to a concurrent one, but they order nothing around them.
 * sk_cpuset_test_and_set and sk_cpuset_test_and_clear return the old bit
 * and are fully ordered (BPF_FETCH atomics, like the kernel's
 * test_and_set_bit): use them to hand a CPU from one owner to the next.
 * Reads (sk_cpuset_test, _weight, _empty, _next, _first_and) are single
 * 64-bit loads per word: each word is read whole, but a multi-word read
 * races with concurrent updates and may see some and miss others, as
 * Go's writes through the mmapped global (cpuset.Write) can be seen word
 * by word.
 *
 * Claiming needs the kernel's builtin idle tracking (no ops.update_idle,
 * or SCX_OPS_KEEP_BUILTIN_IDLE, which package idle's component sets) and
 * the system-wide idle masks (not SCX_OPS_BUILTIN_IDLE_PER_NODE).
 *
 * Prerequisites: vmlinux.h, <scxkit/scx.bpf.h>
 */
#ifndef __SCXKIT_CPUSET_BPF_H
#define __SCXKIT_CPUSET_BPF_H

#include "topology.h"

/* The CPU ids a set can hold, as many as the topology component describes. */
#define SK_CPUSET_MAX_CPUS SK_TOPO_MAX_CPUS
#define SK_CPUSET_WORDS (SK_CPUSET_MAX_CPUS / 64)

/*
 * struct sk_cpuset - bit c of words[c / 64], (c % 64), is CPU c. The zero
 * value is the empty set. Go takes the size from the object's BTF, so a
 * scheduler built against another SK_CPUSET_MAX_CPUS fails cpuset.Read
 * with an error, not garbage.
 */
struct sk_cpuset {
	u64 words[SK_CPUSET_WORDS];
};

/* Flags of sk_cpuset_idle_view and sk_cpuset_claim_idle. */
enum sk_cpuset_idle_flags {
	SK_IDLE_ANY = 0,	 /* any idle CPU */
	SK_IDLE_CORE = 1,	 /* only CPUs whose whole SMT core is idle */
	SK_IDLE_PREFER_CORE = 2, /* sk_cpuset_claim_idle: a whole idle core first, then any */
};

/*
 * ___sk_cpuset_word - the word holding @cpu and its bit, or NULL when @cpu
 * is out of range. The index is bounded behind barrier_var right where
 * it is used, so that clang cannot move the check to another copy of it.
 */
static __always_inline u64 *___sk_cpuset_word(const struct sk_cpuset *s, s32 cpu, u64 *bit)
{
	u32 c = cpu;

	barrier_var(c);
	if (cpu < 0 || c >= SK_CPUSET_MAX_CPUS)
		return NULL;
	*bit = 1ULL << (c % 64);
	return (u64 *)&s->words[c / 64];
}

/* sk_cpuset_set - add @cpu to @s (atomic, unordered); ignored if out of range. */
static __always_inline void sk_cpuset_set(struct sk_cpuset *s, s32 cpu)
{
	u64 bit, *w = ___sk_cpuset_word(s, cpu, &bit);

	if (w)
		__sync_fetch_and_or(w, bit);
}

/* sk_cpuset_clear - remove @cpu from @s (atomic, unordered). */
static __always_inline void sk_cpuset_clear(struct sk_cpuset *s, s32 cpu)
{
	u64 bit, *w = ___sk_cpuset_word(s, cpu, &bit);

	if (w)
		__sync_fetch_and_and(w, ~bit);
}

/* sk_cpuset_test - whether @cpu is in @s; false if out of range. */
static __always_inline bool sk_cpuset_test(const struct sk_cpuset *s, s32 cpu)
{
	u64 bit, *w = ___sk_cpuset_word(s, cpu, &bit);

	return w && (SK_READ_ONCE(*w) & bit);
}

/*
 * sk_cpuset_test_and_set - add @cpu to @s; returns whether it was already
 * in (fully ordered). Of several CPUs racing to set one bit, exactly one
 * sees false. Returns true, changing nothing, for @cpu out of range.
 */
static __always_inline bool sk_cpuset_test_and_set(struct sk_cpuset *s, s32 cpu)
{
	u64 bit, *w = ___sk_cpuset_word(s, cpu, &bit);

	if (!w)
		return true;
	return __sync_fetch_and_or(w, bit) & bit;
}

/*
 * sk_cpuset_test_and_clear - remove @cpu from @s; returns whether it was
 * in (fully ordered): of several racing, exactly one sees true.
 */
static __always_inline bool sk_cpuset_test_and_clear(struct sk_cpuset *s, s32 cpu)
{
	u64 bit, *w = ___sk_cpuset_word(s, cpu, &bit);

	if (!w)
		return false;
	return __sync_fetch_and_and(w, ~bit) & bit;
}

/* sk_cpuset_zero - empty @s (word by word, plain stores). */
static __always_inline void sk_cpuset_zero(struct sk_cpuset *s)
{
	u32 i;

	for (i = 0; i < SK_CPUSET_WORDS; i++)
		SK_WRITE_ONCE(s->words[i], 0);
}

/* sk_cpuset_weight - how many CPUs @s holds. */
static __always_inline u32 sk_cpuset_weight(const struct sk_cpuset *s)
{
	u32 i, n = 0;

	for (i = 0; i < SK_CPUSET_WORDS; i++)
		n += __builtin_popcountll(SK_READ_ONCE(s->words[i]));
	return n;
}

/* sk_cpuset_empty - whether @s holds no CPU. */
static __always_inline bool sk_cpuset_empty(const struct sk_cpuset *s)
{
	u64 any = 0;
	u32 i;

	for (i = 0; i < SK_CPUSET_WORDS; i++)
		any |= SK_READ_ONCE(s->words[i]);
	return !any;
}

/*
 * ___sk_ctz64 - the index of the lowest set bit of @x, which is not 0.
 * BPF has no count-trailing-zeros instruction; isolating the bit and
 * counting the ones below it is what clang would expand it to anyway.
 */
static __always_inline u32 ___sk_ctz64(u64 x)
{
	return __builtin_popcountll((x & -x) - 1);
}

/*
 * sk_cpuset_next - the lowest CPU of @s at or above @from, or -1 when
 * there is none. A negative @from starts at 0, so sk_cpuset_next(s, -1 + 1)
 * and sk_cpuset_next(s, 0) are sk_cpuset_first. Costs one load per word
 * from @from's on (at most SK_CPUSET_WORDS), whatever the set holds.
 */
static __always_inline s32 sk_cpuset_next(const struct sk_cpuset *s, s32 from)
{
	u32 f = from < 0 ? 0 : from, w;

	if (f >= SK_CPUSET_MAX_CPUS)
		return -1;
	bpf_for(w, f / 64, SK_CPUSET_WORDS) {
		u32 i = w;
		u64 word;

		barrier_var(i);
		if (i >= SK_CPUSET_WORDS)
			break;
		word = SK_READ_ONCE(s->words[i]);
		if (i == f / 64)
			word &= ~0ULL << (f % 64);
		if (word)
			return i * 64 + ___sk_ctz64(word);
	}
	return -1;
}

/* sk_cpuset_first - the lowest CPU of @s, or -1 when it is empty. */
static __always_inline s32 sk_cpuset_first(const struct sk_cpuset *s)
{
	return sk_cpuset_next(s, 0);
}

/* sk_cpuset_first_and - the lowest CPU in both @a and @b, or -1. */
static __always_inline s32 sk_cpuset_first_and(const struct sk_cpuset *a, const struct sk_cpuset *b)
{
	u32 i;

	for (i = 0; i < SK_CPUSET_WORDS; i++) {
		u64 word = SK_READ_ONCE(a->words[i]) & SK_READ_ONCE(b->words[i]);

		if (word)
			return i * 64 + ___sk_ctz64(word);
	}
	return -1;
}

/*
 * ___sk_cpumask_word - word @i of kernel cpumask @m, holding CPUs below
 * @nr only (the kernel's nr_cpu_ids); 0 from CPU @nr on.
 *
 * Two bounds. The verifier lets a program load from the kernel's struct
 * cpumask, a trusted BTF pointer, only at constant offsets within the
 * struct's BTF size (NR_CPUS bits): callers pass a constant @i (an
 * unrolled loop), and the CO-RE size check drops words beyond the
 * running kernel's struct. At run time, the words from @nr on are never
 * read: on a kernel with CONFIG_CPUMASK_OFFSTACK (Debian's, NR_CPUS=8192)
 * the idle masks and most other cpumasks are allocated for nr_cpu_ids
 * bits only, and a task's p->cpus_ptr may have bits set beyond it
 * (CPU_MASK_ALL), which no CPU stands for.
 */
#define ___sk_cpumask_word(m, i, nr)						\
	((i) * 8 < bpf_core_field_size((m)->bits) && (i) * 64 < (nr) ?		\
		 (u64)(m)->bits[(i)] & ((nr) - (i) * 64 >= 64 ? ~0ULL : (1ULL << ((nr) - (i) * 64)) - 1) : \
		 0ULL)

/*
 * sk_cpuset_from_cpumask - fill @dst with the CPUs of kernel cpumask @m
 * below @nr_cpus and SK_CPUSET_MAX_CPUS, e.g. a task's p->cpus_ptr or a
 * struct bpf_cpumask (cast to const struct cpumask *). Pass the kernel's
 * nr_cpu_ids (scx_bpf_nr_cpu_ids()) as @nr_cpus: see ___sk_cpumask_word
 * for why the mask must not be read beyond it. Plain stores: @dst is
 * usually on the stack.
 */
static __always_inline void sk_cpuset_from_cpumask(struct sk_cpuset *dst, const struct cpumask *m, u32 nr_cpus)
{
#pragma unroll
	for (int i = 0; i < SK_CPUSET_WORDS; i++)
		dst->words[i] = ___sk_cpumask_word(m, i, nr_cpus);
}

/* The kernel's nr_cpu_ids, read once: it does not change while loaded. */
static u32 ___sk_cpuset_nr_cpu_ids;

static __always_inline u32 ___sk_cpuset_nr_cpus(void)
{
	u32 nr = ___sk_cpuset_nr_cpu_ids;

	if (!nr) {
		nr = scx_bpf_nr_cpu_ids();
		___sk_cpuset_nr_cpu_ids = nr;
	}
	return nr;
}

/*
 * sk_cpuset_idle_view - fill @dst with the CPUs that are idle now and
 * that @p may run on (p->cpus_ptr; every CPU if @p is NULL): with
 * SK_IDLE_CORE, only those whose whole SMT core is idle. Returns whether
 * there is any. It takes and puts the kernel's idle mask once, so a
 * scheduler that tries several sets (sk_cpuset_claim) in order pays for
 * one look. The view is a snapshot: sk_cpuset_claim confirms each CPU.
 */
static __always_inline bool sk_cpuset_idle_view(struct sk_cpuset *dst, const struct task_struct *p, u64 flags)
{
	const struct cpumask *idle, *allowed = p ? p->cpus_ptr : NULL;
	u32 nr = ___sk_cpuset_nr_cpus();
	u64 any = 0;

	idle = (flags & SK_IDLE_CORE) ? scx_bpf_get_idle_smtmask() : scx_bpf_get_idle_cpumask();
#pragma unroll
	for (int i = 0; i < SK_CPUSET_WORDS; i++) {
		u64 w = ___sk_cpumask_word(idle, i, nr);

		if (allowed && w)
			w &= ___sk_cpumask_word(allowed, i, nr);
		dst->words[i] = w;
		any |= w;
	}
	scx_bpf_put_idle_cpumask(idle);
	return any;
}

/*
 * sk_cpuset_claim - claim an idle CPU of @set among the candidates of
 * @view (from sk_cpuset_idle_view, which holds only CPUs the kernel has:
 * a view built otherwise must, for sched_ext ejects a scheduler that
 * names a CPU at or above nr_cpu_ids): @prev_cpu if it is a candidate in
 * @set, else the lowest candidate in @set whose idle bit can still be
 * cleared (scx_bpf_test_and_clear_cpu_idle), so that no other waker takes
 * the same CPU. Returns the CPU, or -1 when every candidate in @set was
 * taken meanwhile or there was none. CPUs tried are removed from @view,
 * so trying the next set with the same view skips them.
 *
 * One kfunc call per CPU tried: on a machine where most idle CPUs stay
 * idle until claimed, the first try wins.
 */
static __always_inline s32 sk_cpuset_claim(struct sk_cpuset *view, const struct sk_cpuset *set, s32 prev_cpu)
{
	u32 w;

	if (sk_cpuset_test(view, prev_cpu) && sk_cpuset_test(set, prev_cpu)) {
		view->words[(u32)prev_cpu / 64 % SK_CPUSET_WORDS] &= ~(1ULL << (prev_cpu % 64));
		if (scx_bpf_test_and_clear_cpu_idle(prev_cpu))
			return prev_cpu;
	}
	bpf_for(w, 0, SK_CPUSET_WORDS) {
		u32 i = w, b;
		u64 cand;

		barrier_var(i);
		if (i >= SK_CPUSET_WORDS)
			break;
		cand = view->words[i] & SK_READ_ONCE(set->words[i]);
		/* At most 64 bits per word; bpf_for keeps the verifier's work to one pass. */
		bpf_for(b, 0, 64) {
			u64 bit;
			s32 cpu;

			if (!cand)
				break;
			bit = cand & -cand;
			cand &= ~bit;
			view->words[i] &= ~bit;
			cpu = i * 64 + ___sk_ctz64(bit);
			if (scx_bpf_test_and_clear_cpu_idle(cpu))
				return cpu;
		}
	}
	return -1;
}

/*
 * sk_cpuset_claim_idle - claim an idle CPU of @set that @p may run on
 * (any CPU of @set if @p is NULL), preferring @prev_cpu; -1 if none.
 * @flags: SK_IDLE_ANY, SK_IDLE_CORE (only a whole idle core), or
 * SK_IDLE_PREFER_CORE (a whole idle core first, then any idle CPU; two
 * looks at the idle masks when the first finds nothing).
 *
 * To try several sets in order, take one view (sk_cpuset_idle_view) and
 * call sk_cpuset_claim for each set.
 */
static __always_inline s32 sk_cpuset_claim_idle(const struct sk_cpuset *set, const struct task_struct *p,
						 s32 prev_cpu, u64 flags)
{
	struct sk_cpuset view;
	s32 cpu;

	if (flags & SK_IDLE_PREFER_CORE) {
		if (sk_cpuset_idle_view(&view, p, SK_IDLE_CORE) &&
		    (cpu = sk_cpuset_claim(&view, set, prev_cpu)) >= 0)
			return cpu;
		flags = SK_IDLE_ANY;
	}
	if (!sk_cpuset_idle_view(&view, p, flags))
		return -1;
	return sk_cpuset_claim(&view, set, prev_cpu);
}

#endif /* __SCXKIT_CPUSET_BPF_H */
