//go:build ignore

/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * domains - one DSQ per domain (an LLC, or a CPU mask from the command
 * line), ordered by weighted virtual time. Every task belongs to a domain
 * and waits in its DSQ; the domain's CPUs serve it, and steal from the
 * nearest other domain only when that one is deeply queued. Userspace
 * balances load between domains from the tasks' duty cycles (package lb)
 * and hands migrations over through lb.bpf.h.
 */
#include <scxkit/scx.bpf.h>
#include <scxkit/runtime.bpf.h>
#include <scxkit/dsq.bpf.h>
#include <scxkit/lb.bpf.h>

struct domains_stats {
	u64 direct;     /* woke on an idle CPU of its domain */
	u64 enqueued;   /* queued on its domain's DSQ */
	u64 dispatched; /* a CPU took a task from a DSQ */
	u64 kicked;     /* woke an idle CPU of the task's domain */
};
SK_STATS_DEFINE(struct domains_stats);

static __always_inline u32 task_domain(struct task_struct *p)
{
	struct sk_lb_task *t = sk_lb_task_of(p);

	return t ? t->domain : sk_dsq_of_cpu(scx_bpf_task_cpu(p));
}

SK_OPS(s32, domains_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	bool is_idle = false;
	s32 cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);

	if (!is_idle)
		return prev_cpu;
	/* Stay in the domain: an idle CPU elsewhere is for the balancer. */
	if (sk_dsq_of_cpu(cpu) == task_domain(p)) {
		sk_stat_inc(direct);
		sk_dsq_insert(p, SK_DSQ_LOCAL, sk_slice(), 0);
		return cpu;
	}
	/*
	 * scx_bpf_select_cpu_dfl claimed @cpu: it cleared its idle bit, so
	 * sk_dsq_kick_idle would never find it again while it sleeps, with tasks
	 * of its own domain left waiting in its DSQ (stealing may be off).
	 * Kick it: it serves its DSQ and, finding it empty, goes idle again,
	 * visible as idle.
	 */
	scx_bpf_kick_cpu(cpu, SK_KICK_IDLE);
	return prev_cpu;
}

SK_OPS(void, domains_enqueue, struct task_struct *p, u64 enq_flags)
{
	u32 dom = sk_lb_domain(p, sk_dsq_of_cpu(scx_bpf_task_cpu(p)));

	sk_stat_inc(enqueued);
	if (!sk_dsq_enqueue_vtime(p, dom, sk_slice(), enq_flags)) {
		sk_dsq_insert(p, SK_DSQ_GLOBAL, sk_slice(), enq_flags);
		return;
	}
	if (sk_dsq_kick_idle(p, dom))
		sk_stat_inc(kicked);
}

SK_OPS(void, domains_dispatch, s32 cpu, struct task_struct *prev)
{
	if (sk_dsq_dispatch(cpu))
		sk_stat_inc(dispatched);
}

SK_OPS(void, domains_runnable, struct task_struct *p, u64 enq_flags)
{
	sk_lb_runnable(p);
}

SK_OPS(void, domains_quiescent, struct task_struct *p, u64 deq_flags)
{
	sk_lb_quiescent(p);
}

SK_OPS(void, domains_running, struct task_struct *p)
{
	sk_runtime_start(p);
	sk_dsq_started(p, task_domain(p));
}

SK_OPS(void, domains_stopping, struct task_struct *p, bool runnable)
{
	u64 used = sk_runtime_used(p);

	sk_dsq_charge(p, used);
	sk_lb_charge(p, used);
}

SK_OPS(void, domains_enable, struct task_struct *p)
{
	u32 dom = sk_dsq_of_cpu(scx_bpf_task_cpu(p));

	p->scx.dsq_vtime = 0;
	if (dom != SK_DSQ_NONE)
		sk_lb_task_enable(p, dom);
}

SK_OPS(void, domains_set_cpumask, struct task_struct *p, const struct cpumask *cpumask)
{
	sk_lb_set_cpumask(p, cpumask);
}

SK_OPS(void, domains_disable, struct task_struct *p)
{
	sk_lb_task_disable(p);
}

SK_OPS_SLEEPABLE(s32, domains_init)
{
	return sk_dsq_create_all();
}

SK_OPS(void, domains_exit, struct scx_exit_info *ei)
{
	sk_exit_record(ei);
}

SK_SCHEDULER(domains_ops,
	.select_cpu  = (void *)domains_select_cpu,
	.enqueue     = (void *)domains_enqueue,
	.dispatch    = (void *)domains_dispatch,
	.runnable    = (void *)domains_runnable,
	.quiescent   = (void *)domains_quiescent,
	.running     = (void *)domains_running,
	.stopping    = (void *)domains_stopping,
	.set_cpumask = (void *)domains_set_cpumask,
	.enable      = (void *)domains_enable,
	.disable     = (void *)domains_disable,
	.init        = (void *)domains_init,
	.exit        = (void *)domains_exit);
