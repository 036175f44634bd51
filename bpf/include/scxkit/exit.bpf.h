/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * exit.bpf.h - ending a scheduler on purpose, and telling userspace why it
 * ended.
 *
 * When the kernel disables a BPF scheduler (an error, the watchdog, sysrq,
 * the loader detaching) it passes a struct scx_exit_info to ops.exit. That
 * memory is gone once ops.exit returns, so sk_exit_record() copies it into
 * the global sk_exit_info, which package scx reads through the object's
 * mmapped .bss after the scheduler is detached:
 *
 *   kernel --scx_exit_info--> ops.exit --sk_exit_record--> .bss sk_exit_info
 *          --mmap--> scx.Scheduler.Run --> *scx.ExitInfo (kind, code, msg, dump)
 *
 * kind is stored last: package scx takes a non-zero kind as the sign that
 * the scheduler is gone. Package scx finds the fields by name in the
 * object's BTF, so fields may be added here without touching Go code.
 */
#ifndef __SCXKIT_EXIT_BPF_H
#define __SCXKIT_EXIT_BPF_H

#define SK_EXIT_REASON_LEN 128
#define SK_EXIT_MSG_LEN 1024
/* Room for the kernel's debug dump; scx.Config.ExitDumpLen may not exceed it. */
#define SK_EXIT_DUMP_LEN 32768

struct sk_exit_info {
	s32 kind;      /* enum scx_exit_kind; 0 until ops.exit ran */
	s32 exit_cpu;  /* CPU that triggered the exit; -1 if the kernel does not say */
	s64 exit_code; /* SCX_ECODE_* bits, or the code given to sk_exit() */
	u64 flags;     /* scx_exit_info.flags where the kernel has it, else 0 */
	char reason[SK_EXIT_REASON_LEN];
	char msg[SK_EXIT_MSG_LEN];
	char dump[SK_EXIT_DUMP_LEN];
};

struct sk_exit_info sk_exit_info SEC(".bss");

/**
 * sk_exit_record - copy @ei into sk_exit_info; call it from ops.exit
 *
 * The layout of struct scx_exit_info differs between kernels (6.16 has
 * neither flags nor exit_cpu, 7.0 adds flags, 7.3 exit_cpu), so every
 * field is read through CO-RE.
 */
static __always_inline void sk_exit_record(struct scx_exit_info *ei)
{
	const char *reason = BPF_CORE_READ(ei, reason);
	char *msg = BPF_CORE_READ(ei, msg);
	char *dump = BPF_CORE_READ(ei, dump);

	sk_exit_info.exit_cpu = -1;
	if (bpf_core_field_exists(ei->exit_cpu))
		sk_exit_info.exit_cpu = BPF_CORE_READ(ei, exit_cpu);
	if (bpf_core_field_exists(ei->flags))
		sk_exit_info.flags = BPF_CORE_READ(ei, flags);
	sk_exit_info.exit_code = BPF_CORE_READ(ei, exit_code);
	if (reason)
		bpf_probe_read_kernel_str(sk_exit_info.reason, sizeof(sk_exit_info.reason), reason);
	if (msg)
		bpf_probe_read_kernel_str(sk_exit_info.msg, sizeof(sk_exit_info.msg), msg);
	if (dump)
		bpf_probe_read_kernel_str(sk_exit_info.dump, sizeof(sk_exit_info.dump), dump);
	/*
	 * Publish kind last. BPF has no fence instruction, so this is only a
	 * compiler barrier: enough because the loader re-reads the whole record
	 * after the kernel has finished disabling the scheduler, which happens
	 * after ops.exit returned; kind != 0 is only its early hint.
	 */
	asm volatile("" ::: "memory");
	sk_exit_info.kind = BPF_CORE_READ(ei, kind);
}

/*
 * ___sk_bstr_args - declare ___sk_fmt and ___sk_param, the format string and
 * the u64 argument array that the *_bstr kfuncs take instead of varargs.
 * The format is a static array because the kfuncs want a plain pointer to
 * map memory, not a string literal.
 */
#define ___sk_bstr_args(fmt, args...)							static char ___sk_fmt[] = fmt;							unsigned long long ___sk_param[___bpf_narg(args)];				_Pragma("GCC diagnostic push")							_Pragma("GCC diagnostic ignored \"-Wint-conversion\"")			___bpf_fill(___sk_param, args);							_Pragma("GCC diagnostic pop")

/**
 * sk_error - disable the scheduler with SCX_EXIT_ERROR_BPF and a message,
 * e.g. sk_error("task %d has no context", p->pid). The kernel adds a debug
 * dump; userspace sees both in scx.ExitInfo.
 */
#define sk_error(fmt, args...)							\
	({									\
		___sk_bstr_args(fmt, ##args);					\
		scx_bpf_error_bstr(___sk_fmt, ___sk_param, sizeof(___sk_param));	\
	})

/**
 * sk_exit - disable the scheduler with SCX_EXIT_UNREG_BPF, exit code @code
 * and a message; for orderly exits decided by BPF code.
 */
#define sk_exit(code, fmt, args...)						\
	({									\
		___sk_bstr_args(fmt, ##args);					\
		scx_bpf_exit_bstr((code), ___sk_fmt, ___sk_param, sizeof(___sk_param)); \
	})

/**
 * sk_dump - append a line to the debug dump; only valid in ops.dump,
 * ops.dump_cpu and ops.dump_task.
 */
#define sk_dump(fmt, args...)							\
	({									\
		___sk_bstr_args(fmt, ##args);					\
		scx_bpf_dump_bstr(___sk_fmt, ___sk_param, sizeof(___sk_param));	\
	})

#endif /* __SCXKIT_EXIT_BPF_H */
