//go:build ignore

/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * fail - schedulers that fail on purpose, selected by the constant mode:
 *   MODE_ERROR  calls sk_error from the first ops.enqueue, and writes a
 *               marker line into the debug dump from ops.dump;
 *   MODE_STALL  queues every task on a DSQ that ops.dispatch never serves,
 *               so the watchdog must eject the scheduler;
 *   MODE_EXIT   calls sk_exit with code 7 from the first ops.enqueue.
 */
#include <scxkit/scx.bpf.h>

#define MODE_ERROR 1
#define MODE_STALL 2
#define MODE_EXIT 3
#define STALL_DSQ 7

const volatile u32 mode;

SK_OPS(void, fail_enqueue, struct task_struct *p, u64 enq_flags)
{
	if (mode == MODE_ERROR || mode == MODE_EXIT) {
		if (mode == MODE_ERROR)
			sk_error("boom %d from %s", 42, "enqueue");
		else
			sk_exit(7, "bye after %d", 1);
		sk_dsq_insert(p, SK_DSQ_GLOBAL, sk_slice(), enq_flags);
		return;
	}
	sk_dsq_insert(p, STALL_DSQ, sk_slice(), enq_flags);
}

SK_OPS(void, fail_dispatch, s32 cpu, struct task_struct *prev)
{
}

SK_OPS(void, fail_dump, struct scx_dump_ctx *dctx)
{
	sk_dump("scxkit-dump-marker mode=%u", mode);
}

SK_OPS_SLEEPABLE(s32, fail_init)
{
	return scx_bpf_create_dsq(STALL_DSQ, -1);
}

SK_OPS(void, fail_exit, struct scx_exit_info *ei)
{
	sk_exit_record(ei);
}

SK_SCHEDULER(fail_ops,
	.enqueue  = (void *)fail_enqueue,
	.dispatch = (void *)fail_dispatch,
	.dump     = (void *)fail_dump,
	.init     = (void *)fail_init,
	.exit     = (void *)fail_exit);
