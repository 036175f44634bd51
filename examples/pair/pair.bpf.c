//go:build ignore

/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * pair - SMT isolation: hardware threads of one core run tasks of one
 * class (an isolated cgroup, or the system class of all other tasks) at a
 * time, built on smt.bpf.h.
 *
 * Each class has a DSQ ordered by weighted virtual time (one vtime clock
 * per class); smt.bpf.h decides which class a CPU serves and when a core
 * changes hands. The scheduler adds the vtime bookkeeping of simple.
 */
#include <scxkit/scx.bpf.h>
#include <scxkit/runtime.bpf.h>
#include <scxkit/smt.bpf.h>

struct pair_stats {
	u64 enqueued;   /* tasks queued on a class DSQ */
	u64 dispatched; /* dispatch calls that found something to run */
	u64 idle;       /* dispatch calls that left the CPU idle */
};
SK_STATS_DEFINE(struct pair_stats);

/* Virtual time of the task that started running last, per class. */
static u64 vtime_now[SK_SMT_MAX_CLASSES];

static __always_inline bool vtime_before(u64 a, u64 b)
{
	return (s64)(a - b) < 0;
}

static __always_inline u64 *class_vtime(u32 cls)
{
	barrier_var(cls);
	if (cls >= SK_SMT_MAX_CLASSES)
		return NULL;
	return &vtime_now[cls];
}

SK_OPS(s32, pair_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	return sk_smt_select_cpu(p, prev_cpu, wake_flags);
}

SK_OPS(void, pair_enqueue, struct task_struct *p, u64 enq_flags)
{
	u64 *now = class_vtime(sk_smt_class_of(p));
	u64 vtime = p->scx.dsq_vtime;

	/* Credit at most one slice of sleep. */
	if (now && vtime_before(vtime, *now - sk_slice()))
		vtime = *now - sk_slice();
	sk_stat_inc(enqueued);
	sk_smt_enqueue(p, enq_flags, sk_slice(), vtime);
}

SK_OPS(void, pair_dispatch, s32 cpu, struct task_struct *prev)
{
	if (sk_smt_dispatch(cpu, prev))
		sk_stat_inc(dispatched);
	else
		sk_stat_inc(idle);
}

SK_OPS(void, pair_running, struct task_struct *p)
{
	u64 *now = class_vtime(sk_smt_class_of(p));

	sk_runtime_start(p);
	sk_smt_running(p);
	if (now && vtime_before(*now, p->scx.dsq_vtime))
		*now = p->scx.dsq_vtime;
}

SK_OPS(void, pair_stopping, struct task_struct *p, bool runnable)
{
	sk_smt_stopping(p, runnable);
	p->scx.dsq_vtime += sk_runtime_used(p) * 100 / p->scx.weight;
}

SK_OPS(void, pair_update_idle, s32 cpu, bool idle)
{
	sk_smt_update_idle(cpu, idle);
}

SK_OPS(void, pair_disable, struct task_struct *p)
{
	sk_smt_disable(p);
}

SK_OPS(void, pair_enable, struct task_struct *p)
{
	u64 *now = class_vtime(sk_smt_class_of(p));

	p->scx.dsq_vtime = now ? *now : 0;
}

SK_OPS_SLEEPABLE(s32, pair_init)
{
	return sk_smt_init();
}

SK_OPS(void, pair_exit, struct scx_exit_info *ei)
{
	sk_exit_record(ei);
}

SK_SCHEDULER(pair_ops,
	.select_cpu  = (void *)pair_select_cpu,
	.enqueue     = (void *)pair_enqueue,
	.dispatch    = (void *)pair_dispatch,
	.running     = (void *)pair_running,
	.stopping    = (void *)pair_stopping,
	.update_idle = (void *)pair_update_idle,
	.enable      = (void *)pair_enable,
	.disable     = (void *)pair_disable,
	.init        = (void *)pair_init,
	.exit        = (void *)pair_exit);
