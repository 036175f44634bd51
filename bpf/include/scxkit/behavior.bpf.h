/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * behavior.bpf.h - the BPF half of scxkit's behavior component (package
 * behavior): it watches how each task runs, tells latency-sensitive tasks
 * from CPU-bound ones without any configuration, and gives the first a
 * short wait after wakeup.
 *
 * What it keeps per task: the CPU time the task used since it last woke
 * up (its current burst) and a decaying average of its bursts. A task
 * whose bursts average under sk_behavior_conf.short_burst_ns is
 * latency-sensitive: it wakes, does a little work and sleeps again
 * (input handlers, audio, timers, request servers). A task that ran at
 * least victim_min_run_ns since it last woke, and whose average or
 * current burst is not short, may be preempted.
 *
 * What it decides, at a wakeup:
 *   - a latency-sensitive task woken by a timer, an interrupt or a task
 *     that goes on running preempts the longest-running preemptible task
 *     on a CPU it may use, its previous CPU first
 *     (sk_behavior_preempt_wakeup);
 *   - a task woken by a waker that said it is about to sleep
 *     (SCX_WAKE_SYNC: pipes, sockets, futex handoffs) never preempts:
 *     producer and consumer would take turns preempting each other and
 *     turn every message into a context switch. It may follow the waker
 *     to its CPU instead, to run there as soon as the waker sleeps
 *     (sk_behavior_affine_cpu), when the waker's bursts are short and
 *     nothing else waits on that CPU.
 *
 * Hooks (each callback the object implements must call its hook):
 *   ops.select_cpu  sk_behavior_select(p, wake_flags) first; then
 *                   sk_behavior_affine_cpu(p, wake_flags) on every path
 *                   that does not insert p (it notes a sync wakeup for
 *                   ops.enqueue)
 *   ops.enqueue     sk_behavior_preempt_wakeup(p, enq_flags, slice) first
 *   ops.running     sk_behavior_running(p)
 *   ops.stopping    u64 used = sk_behavior_stopping(p, runnable)
 *
 * sk_behavior_stopping returns the ns @p ran since ops.running, as
 * runtime.bpf.h's sk_runtime_used does, from the same per-task storage:
 * a scheduler that charges virtual time needs no second lookup.
 *
 * Cost: one task storage lookup in ops.running and one in ops.stopping;
 * ops.select_cpu reads per-CPU data, and looks up the wakee's storage
 * only for a sync wakeup it leaves to ops.enqueue. Each lookup is a
 * helper call, at every context switch.
 *
 * Prerequisites: vmlinux.h, <scxkit/scx.bpf.h>
 */
#ifndef __SCXKIT_BEHAVIOR_BPF_H
#define __SCXKIT_BEHAVIOR_BPF_H

#include "behavior.h"

#define SK_WAKE_SYNC bpf_core_enum_value(enum scx_wake_flags, SCX_WAKE_SYNC)

/* Settings, written by package behavior before attach. */
struct sk_behavior_conf sk_behavior_conf SEC(".bss");

/* Counters, summed over CPUs by package behavior. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct sk_behavior_counters);
} sk_behavior_stats SEC(".maps");

/* What the component keeps per task. */
struct sk_behavior_task {
	u64 burst_avg;  /* decaying average of the bursts, ns */
	u64 woke_sum;   /* p->se.sum_exec_runtime when the current burst began */
	u64 sync;       /* the wakeup under way is a sync one */
	u64 seen;       /* set once the fields above are initialized */
	u64 woken;      /* the current burst began at a wakeup */
	u64 run_sum;    /* p->se.sum_exec_runtime at the last ops.running */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sk_behavior_task);
} sk_behavior_tasks SEC(".maps");

/*
 * The task running on each CPU, as other CPUs see it when they look for a
 * task to preempt. Written by the CPU itself, read racily by the others:
 * a stale read preempts the next task or misses a chance, no worse.
 */
struct sk_behavior_cpu {
	u64 burst_since; /* when the running task's burst began, as scx_bpf_now; 0: not tracked */
	u64 burst_avg;   /* the running task's burst average, at least its current burst at running */
};
struct sk_behavior_cpu sk_behavior_cpus[SK_BEHAVIOR_MAX_CPUS] SEC(".bss");

#define sk_behavior_count(field)						\
	do {									\
		u32 ___zero = 0;						\
		struct sk_behavior_counters *___c =				\
			bpf_map_lookup_elem(&sk_behavior_stats, &___zero);	\
		if (___c)							\
			___c->field++;						\
	} while (0)

/*
 * sk_behavior_task_of - what the component keeps of @p, created with
 * @create. A task first seen (new, or running when the scheduler
 * attached) starts with an average of 0, latency-sensitive until it shows
 * otherwise, as the fair class places a new task level with the others:
 * its first run, which did not begin at a wakeup (a new thread's setup,
 * the life of a task before the scheduler attached), only counts if it
 * never sleeps.
 */
static __always_inline struct sk_behavior_task *sk_behavior_task_of(struct task_struct *p, bool create)
{
	struct sk_behavior_task *t;

	t = bpf_task_storage_get(&sk_behavior_tasks, p, 0, create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
	if (t && !t->seen) {
		t->seen = 1;
		t->woke_sum = p->se.sum_exec_runtime;
	}
	return t;
}

static __always_inline struct sk_behavior_cpu *sk_behavior_cpu_of(s32 cpu)
{
	u32 c = cpu;

	barrier_var(c);
	if (cpu < 0 || c >= SK_BEHAVIOR_MAX_CPUS)
		return NULL;
	return &sk_behavior_cpus[c];
}

/*
 * sk_behavior_average - the burst average after a burst of @burst ns:
 * each burst weighs a quarter, so the average follows a change of
 * behavior within a few bursts. A burst counts as at most twice
 * short_burst_ns: one long burst among short ones (a page fault storm, or
 * a virtual CPU that its host stopped while the task ran) leaves a
 * latency-sensitive task below the bound, while three long bursts in a
 * row lift any average above it.
 */
static __always_inline u64 sk_behavior_average(u64 avg, u64 burst)
{
	u64 cap = sk_behavior_conf.short_burst_ns * 2;

	if (burst > cap)
		burst = cap;
	return avg - (avg >> 2) + (burst >> 2);
}

/*
 * sk_behavior_is_short - whether a burst average of @avg ns makes a task
 * latency-sensitive.
 */
static __always_inline bool sk_behavior_is_short(u64 avg)
{
	return avg < sk_behavior_conf.short_burst_ns;
}

/*
 * sk_behavior_may_preempt - whether a CPU whose task has the burst
 * average @avg and has run since @since (0: not known) may be preempted
 * at @now by a latency-sensitive wakeup: the task ran victim_min_run_ns
 * since it woke, and its average or its current burst is not short. A new
 * CPU hog, whose average is still 0, qualifies by its current burst.
 */
static __always_inline bool sk_behavior_may_preempt(u64 since, u64 avg, u64 now)
{
	u64 ran;

	if (!since || now <= since)
		return false;
	ran = now - since;
	return ran >= sk_behavior_conf.victim_min_run_ns && (!sk_behavior_is_short(avg) || !sk_behavior_is_short(ran));
}

/* sk_behavior_sensitive - whether @p is latency-sensitive now. */
static __always_inline bool sk_behavior_sensitive(struct task_struct *p)
{
	struct sk_behavior_task *t = sk_behavior_task_of(p, false);

	return t && sk_behavior_is_short(t->burst_avg);
}

/*
 * sk_behavior_select - ops.select_cpu hook: count the wakeup. It reads no
 * task storage: most wakeups end in ops.select_cpu (on an idle CPU, or
 * the waker's), and the wakee's storage matters only to one that goes on
 * to ops.enqueue (sk_behavior_affine_cpu notes that one).
 */
static __always_inline void sk_behavior_select(struct task_struct *p, u64 wake_flags)
{
	struct sk_behavior_counters *c;
	u32 zero = 0;

	c = bpf_map_lookup_elem(&sk_behavior_stats, &zero);
	if (c) {
		c->wakeups++;
		if (wake_flags & SK_WAKE_SYNC)
			c->sync_wakeups++;
	}
}

/*
 * sk_behavior_note_sync - tell sk_behavior_preempt_wakeup that @p's
 * wakeup is a sync one, which must not preempt. The flag lives until @p
 * runs.
 */
static __always_inline void sk_behavior_note_sync(struct task_struct *p)
{
	struct sk_behavior_task *t = sk_behavior_task_of(p, true);

	if (t)
		t->sync = 1;
}

/*
 * sk_behavior_affine_cpu - for a sync wakeup, the waker's CPU if @p
 * should wait for the waker to sleep and run there, else -1. It should
 * when the waker's bursts are short (it will sleep soon), @p may run
 * there, and no task waits in that CPU's local DSQ yet. The caller inserts
 * @p into SCX_DSQ_LOCAL and returns the CPU from ops.select_cpu.
 *
 * Call it on every path of ops.select_cpu that does not insert @p: when
 * it returns -1 for a sync wakeup it notes the wakeup as sync, so that
 * ops.enqueue does not let it preempt. The waker is the task running on
 * this CPU; its burst average is read from what sk_behavior_running
 * published for the CPU, not from its storage.
 */
static __always_inline s32 sk_behavior_affine_cpu(struct task_struct *p, u64 wake_flags)
{
	s32 cpu = bpf_get_smp_processor_id();
	struct sk_behavior_cpu *c = sk_behavior_cpu_of(cpu);

	if (!(wake_flags & SK_WAKE_SYNC))
		return -1;
	if ((sk_behavior_conf.flags & SK_BEHAVIOR_NO_AFFINE) || !c || !SK_READ_ONCE(c->burst_since) ||
	    !sk_behavior_is_short(SK_READ_ONCE(c->burst_avg)) || p->migration_disabled ||
	    !bpf_cpumask_test_cpu(cpu, p->cpus_ptr) || scx_bpf_dsq_nr_queued(SK_DSQ_LOCAL_ON | cpu)) {
		sk_behavior_note_sync(p);
		return -1;
	}
	sk_behavior_count(affine);
	return cpu;
}

/*
 * sk_behavior_victim - the CPU whose task a latency-sensitive wakeup of @p
 * should preempt, or -1: among the CPUs @p may use whose task may be
 * preempted, @p's previous CPU if it is one, else the one whose task has
 * run longest since it woke.
 */
static __always_inline s32 sk_behavior_victim(struct task_struct *p)
{
	u32 nr = scx_bpf_nr_cpu_ids(), i;
	s32 prev = scx_bpf_task_cpu(p), best = -1;
	u64 now = scx_bpf_now(), oldest = 0;
	struct sk_behavior_cpu *c;

	/*
	 * Every CPU is checked against @p's mask, prev too: its affinity may
	 * have changed while it slept, and inserting it into the local DSQ of
	 * a CPU it may not use is an error that ejects the scheduler.
	 */
	c = sk_behavior_cpu_of(prev);
	if (c && bpf_cpumask_test_cpu(prev, p->cpus_ptr) &&
	    sk_behavior_may_preempt(SK_READ_ONCE(c->burst_since), SK_READ_ONCE(c->burst_avg), now))
		return prev;
	if (p->migration_disabled || p->nr_cpus_allowed == 1)
		return -1;
	if (nr > SK_BEHAVIOR_MAX_CPUS)
		nr = SK_BEHAVIOR_MAX_CPUS;
	bpf_for(i, 0, nr) {
		u64 since;

		c = sk_behavior_cpu_of(i);
		if (!c)
			break;
		since = SK_READ_ONCE(c->burst_since);
		if (!sk_behavior_may_preempt(since, SK_READ_ONCE(c->burst_avg), now))
			continue;
		if (best >= 0 && since >= oldest)
			continue;
		if (!bpf_cpumask_test_cpu(i, p->cpus_ptr))
			continue;
		best = i;
		oldest = since;
	}
	return best;
}

/*
 * sk_behavior_preempt_wakeup - ops.enqueue hook: if @p is a
 * latency-sensitive task waking up, not from a sync wakeup, and a CPU it
 * may use runs a task it may preempt, insert @p into that CPU's local DSQ
 * with SCX_ENQ_PREEMPT and a @slice ns slice, and return true: the caller
 * is done with @p. Else return false: the caller queues @p as usual.
 */
static __always_inline bool sk_behavior_preempt_wakeup(struct task_struct *p, u64 enq_flags, u64 slice)
{
	struct sk_behavior_task *t;
	s32 cpu;

	if (!(enq_flags & SK_ENQ_WAKEUP))
		return false;
	t = sk_behavior_task_of(p, false);
	if (!t || t->sync || !sk_behavior_is_short(t->burst_avg))
		return false;
	sk_behavior_count(sensitive);
	if (sk_behavior_conf.flags & SK_BEHAVIOR_NO_PREEMPT)
		return false;
	cpu = sk_behavior_victim(p);
	if (cpu < 0) {
		sk_behavior_count(no_victim);
		return false;
	}
	sk_behavior_count(preempted);
	sk_dsq_insert(p, SK_DSQ_LOCAL_ON | cpu, slice, enq_flags | SK_ENQ_PREEMPT);
	return true;
}

/*
 * sk_behavior_running - ops.running hook: note when @p started running,
 * and publish its burst to other CPUs.
 */
static __always_inline void sk_behavior_running(struct task_struct *p)
{
	struct sk_behavior_task *t = sk_behavior_task_of(p, true);
	struct sk_behavior_cpu *c = sk_behavior_cpu_of(bpf_get_smp_processor_id());
	u64 burst, avg;

	if (!t)
		return;
	t->sync = 0;
	t->run_sum = p->se.sum_exec_runtime;
	if (!c)
		return;
	burst = p->se.sum_exec_runtime - t->woke_sum;
	avg = t->burst_avg > burst ? t->burst_avg : burst;
	SK_WRITE_ONCE(c->burst_avg, avg);
	SK_WRITE_ONCE(c->burst_since, (scx_bpf_now() - burst) | 1);
}

/*
 * sk_behavior_stopping - ops.stopping hook: a task that sleeps ends its
 * burst (one that began at a wakeup), and its next burst begins when it
 * wakes up, with the run time it has now: a sleeping task runs no more.
 * One that goes on running counts its burst so far when it is longer than
 * its average, so that a CPU-bound task's average climbs without its ever
 * sleeping.
 *
 * Returns the ns @p ran since ops.running, from its run time
 * (p->se.sum_exec_runtime), which also counts the slice refills the
 * kernel gives a task that has a CPU to itself (see runtime.bpf.h). Should
 * the storage be missing (its allocation failed), it falls back to the
 * slice used, a lower bound.
 */
static __always_inline u64 sk_behavior_stopping(struct task_struct *p, bool runnable)
{
	struct sk_behavior_task *t = sk_behavior_task_of(p, false);
	struct sk_behavior_cpu *c = sk_behavior_cpu_of(bpf_get_smp_processor_id());
	u64 now = p->se.sum_exec_runtime, burst, used;

	if (c)
		SK_WRITE_ONCE(c->burst_since, 0);
	if (!t || now < t->run_sum) {
		u64 slice = sk_slice();

		return p->scx.slice < slice ? slice - p->scx.slice : 0;
	}
	used = now - t->run_sum;
	burst = now - t->woke_sum;
	if (runnable) {
		if (burst > t->burst_avg)
			t->burst_avg = sk_behavior_average(t->burst_avg, burst);
		return used;
	}
	if (t->woken)
		t->burst_avg = sk_behavior_average(t->burst_avg, burst);
	t->woke_sum = now;
	t->woken = 1;
	return used;
}

#endif /* __SCXKIT_BEHAVIOR_BPF_H */
