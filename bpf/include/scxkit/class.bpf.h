/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/*
 * class.bpf.h - which class of work a task is in, for the components that
 * treat tasks by class (smt.bpf.h, preempt.bpf.h). A component lists its
 * classes' members in hash maps that Go fills, cgroup id -> class and task
 * name -> class, and asks here:
 *
 *   cgrp = sk_class_task_cgroup(p, &cgid);         the task's cgroup v2
 *   cls = sk_class_of_cgroup(&cgroups_map, &key, &key.cgid, cgrp,
 *                            depth, nr, none);     nearest listed cgroup
 *   sk_class_read_comm(p, key.comm);               the task's name, as a key
 *   cls = sk_class_of_comm(&comms_map, &key, nr, none);
 *
 * A map's key may hold more than the cgroup id or the name (a
 * configuration slot, say): the caller fills the rest of the key, and
 * sk_class_of_cgroup sets the cgroup id field it is given. Values are
 * classes below @nr; an entry with a class of @nr or more (left over from
 * a larger configuration) gives @none, as if it were the class of no task.
 *
 * A cgroup's id is its kernfs id, the inode number of its directory under
 * the cgroup2 mount: what packages smt and preempt resolve cgroup paths
 * to. Cgroup ids are never reused, so a class found for (task, cgroup id)
 * may be cached until the task's cgroup id changes.
 *
 * Prerequisites: vmlinux.h, <scxkit/scx.bpf.h>
 */
#ifndef __SCXKIT_CLASS_BPF_H
#define __SCXKIT_CLASS_BPF_H

/* Task names (comm) are at most 15 bytes and a NUL. */
#define SK_CLASS_COMM_LEN 16

/*
 * sk_class_task_cgroup - @p's cgroup v2 (that of the default hierarchy),
 * with its id in *@cgid. Reads through CO-RE probe reads: p->cgroups is
 * RCU-protected and not a trusted pointer in every callback.
 */
static __always_inline struct cgroup *sk_class_task_cgroup(struct task_struct *p, u64 *cgid)
{
	struct cgroup *cgrp = BPF_CORE_READ(p, cgroups, dfl_cgrp);

	*cgid = BPF_CORE_READ(cgrp, kn, id);
	return cgrp;
}

/**
 * sk_class_of_cgroup - the class that @map gives the nearest of @cgrp and
 * its ancestors it lists, looking at most @depth levels up; @none when it
 * lists none of them. @key is @map's key and @cgid its cgroup id field (or
 * @key itself, for a map keyed by the id alone), set to each cgroup's id
 * in turn. Walks up through cgroup.self.parent, which every supported
 * kernel has (kernfs_node.parent was renamed in 6.15, cgroup.ancestors
 * moved).
 */
static __always_inline u32 sk_class_of_cgroup(void *map, void *key, u64 *cgid, struct cgroup *cgrp,
					      u32 depth, u32 nr, u32 none)
{
	int i;

	bpf_for(i, 0, depth) {
		u32 *cls;

		if (!cgrp)
			break;
		*cgid = BPF_CORE_READ(cgrp, kn, id);
		cls = bpf_map_lookup_elem(map, key);
		if (cls)
			return *cls < nr ? *cls : none;
		cgrp = BPF_CORE_READ(cgrp, self.parent, cgroup);
	}
	return none;
}

/*
 * sk_class_read_comm - copy @p's name into @comm, SK_CLASS_COMM_LEN bytes
 * that the caller zeroed: the bytes after the name's NUL stay zero, so
 * the copy works as a map key and compares as two u64 words.
 */
static __always_inline void sk_class_read_comm(struct task_struct *p, char *comm)
{
	bpf_probe_read_kernel_str(comm, SK_CLASS_COMM_LEN, p->comm);
}

/*
 * sk_class_comm_equal - whether the names @a and @b (read by
 * sk_class_read_comm, 8-aligned) are the same: two u64 loads.
 */
static __always_inline bool sk_class_comm_equal(const u64 *a, const u64 *b)
{
	return a[0] == b[0] && a[1] == b[1];
}

/**
 * sk_class_of_comm - the class that @map gives the task name in @key
 * (read by sk_class_read_comm into its name field), or @none.
 */
static __always_inline u32 sk_class_of_comm(void *map, void *key, u32 nr, u32 none)
{
	u32 *cls = bpf_map_lookup_elem(map, key);

	return cls && *cls < nr ? *cls : none;
}

#endif /* __SCXKIT_CLASS_BPF_H */
