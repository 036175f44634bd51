/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * compat.bpf.h - sched_ext kfuncs across the kernel API generations that
 * scxkit supports.
 *
 * The kernel renamed three kfuncs when it changed their signatures, and
 * kept the old names for a while:
 *
 *   generation  kernels (Debian)  names
 *   base        6.12 .. 7.2       scx_bpf_dsq_insert, scx_bpf_dsq_move_to_local,
 *                                 scx_bpf_reenqueue_local
 *   v2          7.3 ..            the same with a ___v2 suffix (insert returns
 *                                 bool, move_to_local takes enq_flags)
 *
 * libbpf would pick one at load time with flavoured weak externs. cilium/ebpf
 * resolves kfuncs by exact name and, on 7.3 (which exports foo, foo___v2 and
 * foo___v2_impl), fails the load with "multiple matching types" whenever a
 * program even mentions the base name. So the choice happens at compile
 * time: every scheduler is compiled twice, once with SCXKIT_KFUNC_V2
 * defined, and package scx loads the object that matches the running
 * kernel. Code uses the sk_* wrappers below and never names a
 * generation-specific kfunc itself.
 *
 * Every other kfunc is declared with the prototype common to all supported
 * kernels. All are __weak: a kfunc the running kernel lacks resolves to
 * zero, and callers of optional ones check bpf_ksym_exists() first.
 */
#ifndef __SCXKIT_COMPAT_BPF_H
#define __SCXKIT_COMPAT_BPF_H

#ifdef SCXKIT_KFUNC_V2
#define SK_KFUNC_GEN 2
#else
#define SK_KFUNC_GEN 1
#endif

/*
 * scxkit_kfunc_gen tells the loader which generation this object was
 * compiled for, so that swapping the two objects is an error, not a
 * verifier failure on one kernel.
 */
const volatile u32 scxkit_kfunc_gen = SK_KFUNC_GEN;

/* Present and identical in every supported generation. */
void scx_bpf_dsq_insert_vtime(struct task_struct *p, u64 dsq_id, u64 slice, u64 vtime, u64 enq_flags) __weak __ksym;
s32 scx_bpf_create_dsq(u64 dsq_id, s32 node) __weak __ksym;
void scx_bpf_destroy_dsq(u64 dsq_id) __weak __ksym;
s32 scx_bpf_dsq_nr_queued(u64 dsq_id) __weak __ksym;
void scx_bpf_kick_cpu(s32 cpu, u64 flags) __weak __ksym;
s32 scx_bpf_select_cpu_dfl(struct task_struct *p, s32 prev_cpu, u64 wake_flags, bool *is_idle) __weak __ksym;
s32 scx_bpf_pick_idle_cpu(const struct cpumask *cpus_allowed, u64 flags) __weak __ksym;
s32 scx_bpf_pick_any_cpu(const struct cpumask *cpus_allowed, u64 flags) __weak __ksym;
bool scx_bpf_test_and_clear_cpu_idle(s32 cpu) __weak __ksym;
const struct cpumask *scx_bpf_get_idle_cpumask(void) __weak __ksym;
const struct cpumask *scx_bpf_get_idle_smtmask(void) __weak __ksym;
const struct cpumask *scx_bpf_get_online_cpumask(void) __weak __ksym;
const struct cpumask *scx_bpf_get_possible_cpumask(void) __weak __ksym;
void scx_bpf_put_idle_cpumask(const struct cpumask *idle_mask) __weak __ksym;
void scx_bpf_put_cpumask(const struct cpumask *cpumask) __weak __ksym;
u32 scx_bpf_nr_cpu_ids(void) __weak __ksym;
u32 scx_bpf_nr_node_ids(void) __weak __ksym;
s32 scx_bpf_task_cpu(const struct task_struct *p) __weak __ksym;
bool scx_bpf_task_running(const struct task_struct *p) __weak __ksym;
u32 scx_bpf_dispatch_nr_slots(void) __weak __ksym;
void scx_bpf_dispatch_cancel(void) __weak __ksym;
u64 scx_bpf_now(void) __weak __ksym;
u32 scx_bpf_cpuperf_cap(s32 cpu) __weak __ksym;
u32 scx_bpf_cpuperf_cur(s32 cpu) __weak __ksym;
void scx_bpf_cpuperf_set(s32 cpu, u32 perf) __weak __ksym;
void scx_bpf_error_bstr(char *fmt, unsigned long long *data, u32 data__sz) __weak __ksym;
void scx_bpf_exit_bstr(s64 exit_code, char *fmt, unsigned long long *data, u32 data__sz) __weak __ksym;
void scx_bpf_dump_bstr(char *fmt, unsigned long long *data, u32 data__sz) __weak __ksym;

/* Generic cpumask kfuncs (kernel/bpf/cpumask.c), unchanged since 6.3. */
bool bpf_cpumask_test_cpu(u32 cpu, const struct cpumask *cpumask) __weak __ksym;
u32 bpf_cpumask_weight(const struct cpumask *cpumask) __weak __ksym;

#ifdef SCXKIT_KFUNC_V2
bool scx_bpf_dsq_insert___v2(struct task_struct *p, u64 dsq_id, u64 slice, u64 enq_flags) __weak __ksym;
bool scx_bpf_dsq_move_to_local___v2(u64 dsq_id, u64 enq_flags) __weak __ksym;
void scx_bpf_reenqueue_local___v2(void) __weak __ksym;
#else
void scx_bpf_dsq_insert(struct task_struct *p, u64 dsq_id, u64 slice, u64 enq_flags) __weak __ksym;
bool scx_bpf_dsq_move_to_local(u64 dsq_id) __weak __ksym;
u32 scx_bpf_reenqueue_local(void) __weak __ksym;
#endif

/**
 * sk_dsq_insert - queue @p on DSQ @dsq_id in FIFO order with @slice ns
 * @enq_flags: SCX_ENQ_* flags passed through to the kernel
 *
 * Returns false when the v2 kernel rejected the insert (the base generation
 * cannot tell and always returns true).
 */
static __always_inline bool sk_dsq_insert(struct task_struct *p, u64 dsq_id, u64 slice, u64 enq_flags)
{
#ifdef SCXKIT_KFUNC_V2
	return scx_bpf_dsq_insert___v2(p, dsq_id, slice, enq_flags);
#else
	scx_bpf_dsq_insert(p, dsq_id, slice, enq_flags);
	return true;
#endif
}

/**
 * sk_dsq_move_to_local - move the first task of @dsq_id to the local DSQ of
 * the CPU that is dispatching; only valid in ops.dispatch
 *
 * Returns true when a task was moved.
 */
static __always_inline bool sk_dsq_move_to_local(u64 dsq_id)
{
#ifdef SCXKIT_KFUNC_V2
	return scx_bpf_dsq_move_to_local___v2(dsq_id, 0);
#else
	return scx_bpf_dsq_move_to_local(dsq_id);
#endif
}

/**
 * sk_reenqueue_local - send every task on this CPU's local DSQ back through
 * ops.enqueue (e.g. after a higher class took the CPU)
 */
static __always_inline void sk_reenqueue_local(void)
{
#ifdef SCXKIT_KFUNC_V2
	scx_bpf_reenqueue_local___v2();
#else
	scx_bpf_reenqueue_local();
#endif
}

/*
 * The rest of the generic cpumask kfuncs (kernel/bpf/cpumask.c): scx.bpf.h
 * defines BPF_NO_KFUNC_PROTOTYPES, which hides vmlinux.h's declarations,
 * so they are declared here, checked against the BTF of every pinned
 * kernel (scx's TestCpumaskKfuncsMatchKernels). A struct bpf_cpumask is
 * a kptr: create it in ops.init, keep it in a map value marked __kptr
 * (bpf_kptr_xchg), and release it. bpf_cpumask_populate exists from 6.14.
 * Declared last in the file so that earlier lines keep their numbers.
 */
struct bpf_cpumask *bpf_cpumask_create(void) __weak __ksym;
void bpf_cpumask_release(struct bpf_cpumask *cpumask) __weak __ksym;
struct bpf_cpumask *bpf_cpumask_acquire(struct bpf_cpumask *cpumask) __weak __ksym;
u32 bpf_cpumask_first(const struct cpumask *cpumask) __weak __ksym;
u32 bpf_cpumask_first_zero(const struct cpumask *cpumask) __weak __ksym;
u32 bpf_cpumask_first_and(const struct cpumask *src1, const struct cpumask *src2) __weak __ksym;
void bpf_cpumask_set_cpu(u32 cpu, struct bpf_cpumask *cpumask) __weak __ksym;
void bpf_cpumask_clear_cpu(u32 cpu, struct bpf_cpumask *cpumask) __weak __ksym;
bool bpf_cpumask_test_and_set_cpu(u32 cpu, struct bpf_cpumask *cpumask) __weak __ksym;
bool bpf_cpumask_test_and_clear_cpu(u32 cpu, struct bpf_cpumask *cpumask) __weak __ksym;
void bpf_cpumask_setall(struct bpf_cpumask *cpumask) __weak __ksym;
void bpf_cpumask_clear(struct bpf_cpumask *cpumask) __weak __ksym;
bool bpf_cpumask_and(struct bpf_cpumask *dst, const struct cpumask *src1, const struct cpumask *src2) __weak __ksym;
void bpf_cpumask_or(struct bpf_cpumask *dst, const struct cpumask *src1, const struct cpumask *src2) __weak __ksym;
void bpf_cpumask_xor(struct bpf_cpumask *dst, const struct cpumask *src1, const struct cpumask *src2) __weak __ksym;
bool bpf_cpumask_equal(const struct cpumask *src1, const struct cpumask *src2) __weak __ksym;
bool bpf_cpumask_intersects(const struct cpumask *src1, const struct cpumask *src2) __weak __ksym;
bool bpf_cpumask_subset(const struct cpumask *src1, const struct cpumask *src2) __weak __ksym;
bool bpf_cpumask_empty(const struct cpumask *cpumask) __weak __ksym;
bool bpf_cpumask_full(const struct cpumask *cpumask) __weak __ksym;
void bpf_cpumask_copy(struct bpf_cpumask *dst, const struct cpumask *src) __weak __ksym;
u32 bpf_cpumask_any_distribute(const struct cpumask *cpumask) __weak __ksym;
u32 bpf_cpumask_any_and_distribute(const struct cpumask *src1, const struct cpumask *src2) __weak __ksym;

#endif /* __SCXKIT_COMPAT_BPF_H */
