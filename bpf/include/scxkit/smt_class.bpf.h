/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * smt_class.bpf.h - the classification part of smt.bpf.h: the layout
 * package smt writes, and which class a task is in. A class is what may
 * share a core: the tasks of an isolated cgroup (with its descendants),
 * or the system class of every other task. The class of a task is cached
 * per task for as long as it stays in the same cgroup.
 *
 * Prerequisites: vmlinux.h, <scxkit/scx.bpf.h>
 */
#ifndef __SCXKIT_SMT_CLASS_BPF_H
#define __SCXKIT_SMT_CLASS_BPF_H

#include "smt.h"
#include "class.bpf.h"

/* Written by package smt (Layout.Bind) after load, before attach. */
struct sk_smt_layout sk_smt_layout SEC(".bss");

/* Isolated cgroups: cgroup id -> class (1..nr_classes-1). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SK_SMT_MAX_CLASSES);
	__type(key, u64);
	__type(value, u32);
} sk_smt_cgroups SEC(".maps");

/* Per task: the class of the cgroup it was last seen in. */
struct sk_smt_task {
	u64 cgid;   /* cgroup id the class was found for */
	u64 enq_at; /* when it was last queued (scx_bpf_now), for sk_smt_has_work's wait */
	u32 cls;
	u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sk_smt_task);
} sk_smt_tasks SEC(".maps");

/* sk_smt_nr_classes - classes in the layout, 0 until Go wrote it. */
static __always_inline u32 sk_smt_nr_classes(void)
{
	u32 nr = sk_smt_layout.nr_classes;

	return nr < SK_SMT_MAX_CLASSES ? nr : SK_SMT_MAX_CLASSES;
}

/*
 * sk_smt_class_of_cgroup - the class of the nearest isolated cgroup among
 * @cgrp and its ancestors, or SK_SMT_SYSTEM (class.bpf.h).
 */
static __always_inline u32 sk_smt_class_of_cgroup(struct cgroup *cgrp)
{
	u64 id = 0;

	return sk_class_of_cgroup(&sk_smt_cgroups, &id, &id, cgrp, SK_SMT_MAX_DEPTH, sk_smt_nr_classes(),
				  SK_SMT_SYSTEM);
}

/**
 * sk_smt_class_of - the class of task @p, cached per task for as long as
 * it stays in the same cgroup (cgroup ids are never reused).
 */
static __always_inline u32 sk_smt_class_of(struct task_struct *p)
{
	u64 id;
	struct cgroup *cgrp = sk_class_task_cgroup(p, &id);
	struct sk_smt_task *t;
	u32 cls;

	t = bpf_task_storage_get(&sk_smt_tasks, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (t && id && t->cgid == id)
		return t->cls;
	cls = sk_smt_class_of_cgroup(cgrp);
	if (t) {
		t->cgid = id;
		t->cls = cls;
	}
	return cls;
}

/*
 * sk_smt_task_queued - @p is being queued now: the start of the wait that
 * sk_smt_has_work measures.
 */
static __always_inline void sk_smt_task_queued(struct task_struct *p, u64 now)
{
	struct sk_smt_task *t = bpf_task_storage_get(&sk_smt_tasks, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);

	if (t)
		t->enq_at = now;
}

#endif /* __SCXKIT_SMT_CLASS_BPF_H */
