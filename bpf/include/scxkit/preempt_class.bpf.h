/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * preempt_class.bpf.h - the classification part of preempt.bpf.h: the
 * configuration package preempt writes (two slots, sk_preempt_active
 * naming the one in force) with each class's policy, the maps of class
 * members by cgroup and by task name, and the per-task state that holds
 * the class of each task. A task's class is its name's, else that of the
 * nearest cgroup among its own and its ancestors, else the default class;
 * it is found again when the configuration or the task's cgroup changed,
 * and on wakeups when its name changed.
 *
 * Prerequisites: vmlinux.h, <scxkit/scx.bpf.h>
 */
#ifndef __SCXKIT_PREEMPT_CLASS_BPF_H
#define __SCXKIT_PREEMPT_CLASS_BPF_H

#include "preempt.h"
#include "class.bpf.h"

_Static_assert(SK_PREEMPT_COMM_LEN == SK_CLASS_COMM_LEN, "task names as class.bpf.h reads them");

/* The configuration slot in force, 0 or 1; written by package preempt. */
u32 sk_preempt_active SEC(".bss");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, u32);
	__type(value, struct sk_preempt_config);
} sk_preempt_configs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 2 * SK_PREEMPT_MAX_MEMBERS);
	__type(key, struct sk_preempt_cgroup_key);
	__type(value, u32);
} sk_preempt_cgroups SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 2 * SK_PREEMPT_MAX_MEMBERS);
	__type(key, struct sk_preempt_comm_key);
	__type(value, u32);
} sk_preempt_comms SEC(".maps");

/* Per task. Run times are p->se.sum_exec_runtime readings. */
struct sk_preempt_task {
	u64 gen;       /* configuration cls was found for */
	u64 cgid;      /* cgroup cls was found for */
	u64 woke_at;   /* when it woke (scx_bpf_now), 0 when not waiting after a wakeup */
	u64 stint_at;  /* run time at ops.running */
	u64 slice_at;  /* run time when its current slice was granted */
	u64 granted;   /* that slice, ns */
	u64 grant_gen; /* configuration its slice was granted or queued under */
	u64 comm[SK_PREEMPT_COMM_LEN / 8]; /* task name cls was found for */
	u32 cls;
	u32 yielded; /* it called sched_yield since ops.running */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sk_preempt_task);
} sk_preempt_tasks SEC(".maps");

/* sk_preempt_config - the configuration in force, NULL before Go wrote one. */
static __always_inline struct sk_preempt_config *sk_preempt_config(void)
{
	u32 slot = SK_READ_ONCE(sk_preempt_active) & 1;
	struct sk_preempt_config *cfg = bpf_map_lookup_elem(&sk_preempt_configs, &slot);

	return cfg && cfg->nr_classes ? cfg : NULL;
}

static __always_inline u32 sk_preempt_nr_classes(const struct sk_preempt_config *cfg)
{
	if (!cfg)
		return 1;
	return cfg->nr_classes < SK_PREEMPT_MAX_CLASSES ? cfg->nr_classes : SK_PREEMPT_MAX_CLASSES;
}

/*
 * sk_preempt_policy_of - copy class @cls's policy to @out. Without a
 * configuration every task is in class 0 with the loader's slice, yields
 * at its end and preempts nothing.
 */
static __always_inline void sk_preempt_policy_of(const struct sk_preempt_config *cfg, u32 cls,
						 struct sk_preempt_policy *out)
{
	barrier_var(cls);
	if (cfg && cls < SK_PREEMPT_MAX_CLASSES && cls < cfg->nr_classes) {
		*out = cfg->classes[cls];
		if (out->slice_ns)
			return;
	}
	__builtin_memset(out, 0, sizeof(*out));
	out->slice_ns = sk_slice();
}

/* sk_preempt_id - the counter slot of class @cls. */
static __always_inline u32 sk_preempt_id(const struct sk_preempt_config *cfg, u32 cls)
{
	struct sk_preempt_policy pol;

	sk_preempt_policy_of(cfg, cls, &pol);
	return pol.id;
}

/*
 * sk_preempt_classify - the class of a task named @ck->comm in cgroup
 * @cgrp under @cfg (slot @slot): its name's class, else the class of the
 * nearest cgroup among @cgrp and its ancestors, else the default class
 * (class.bpf.h).
 */
static __always_inline u32 sk_preempt_classify(struct sk_preempt_comm_key *ck, const struct sk_preempt_config *cfg,
					       u32 slot, struct cgroup *cgrp)
{
	struct sk_preempt_cgroup_key gk = {};
	u32 nr = sk_preempt_nr_classes(cfg), def, cls;

	if (!cfg)
		return 0;
	ck->slot = slot;
	cls = sk_class_of_comm(&sk_preempt_comms, ck, nr, nr);
	if (cls < nr)
		return cls;
	gk.slot = slot;
	def = cfg->default_class < nr ? cfg->default_class : 0;
	return sk_class_of_cgroup(&sk_preempt_cgroups, &gk, &gk.cgid, cgrp, SK_PREEMPT_MAX_DEPTH, nr, def);
}

/*
 * sk_preempt_task_of - @p's state with its class for @cfg. The class is
 * found again when the configuration or the task's cgroup changed, and,
 * when @check_name (a wakeup or a new task), when its name changed since
 * (exec, prctl(PR_SET_NAME)); otherwise it costs a task-storage lookup
 * and two loads. NULL if the task storage could not be allocated.
 */
static __always_inline struct sk_preempt_task *sk_preempt_task_of(struct task_struct *p,
								  const struct sk_preempt_config *cfg,
								  bool check_name)
{
	u64 cgid;
	struct cgroup *cgrp = sk_class_task_cgroup(p, &cgid);
	u64 gen = cfg ? cfg->gen : 0;
	/* 8-aligned: the name is compared as two u64 stack loads. */
	struct sk_preempt_comm_key ck __attribute__((aligned(8))) = {};
	struct sk_preempt_task *t;
	u64 *name = (u64 *)ck.comm;
	bool renamed = false;

	t = bpf_task_storage_get(&sk_preempt_tasks, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!t)
		return NULL;
	if (check_name) {
		sk_class_read_comm(p, ck.comm);
		renamed = !sk_class_comm_equal(name, t->comm);
	}
	if (renamed || t->gen != gen || t->cgid != cgid) {
		if (!check_name)
			sk_class_read_comm(p, ck.comm);
		t->cls = sk_preempt_classify(&ck, cfg, SK_READ_ONCE(sk_preempt_active) & 1, cgrp);
		t->gen = gen;
		t->cgid = cgid;
		t->comm[0] = name[0];
		t->comm[1] = name[1];
	}
	return t;
}

/**
 * sk_preempt_class_of - the class of @p now (0 without a configuration);
 * for the scheduler's own per-class state, such as vtime clocks.
 */
static __always_inline u32 sk_preempt_class_of(struct task_struct *p)
{
	struct sk_preempt_task *t = sk_preempt_task_of(p, sk_preempt_config(), false);

	return t ? t->cls : 0;
}

#endif /* __SCXKIT_PREEMPT_CLASS_BPF_H */
