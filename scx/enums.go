package scx

import (
	"fmt"
	"slices"
	"strings"

	"github.com/cilium/ebpf/btf"
)

// enumPrefix selects the enumerators Probe records: sched_ext's constants
// (DSQ ids, enqueue and kick flags, exit kinds, ops flags, slice defaults)
// all start with it.
const enumPrefix = "SCX_"

// Enums holds the values of the kernel's sched_ext enumerators, read from its
// BTF: every enumerator whose name starts with "SCX_", from the sched_ext
// enum types (enumTypes).
//
// A scheduler needs these values at load time rather than as Go constants
// because they are the running kernel's, not the ones some header had when
// the scheduler was built: flags move between kernel releases and new ones
// appear. The zero value holds no enumerators.
type Enums struct {
	m map[string]enumEntry
}

// enumEntry is one enumerator: its value as the 64 bits BTF stores (negative
// values of signed enums are sign-extended) and the name of its enum type
// ("" for an anonymous enum).
type enumEntry struct {
	value uint64
	typ   string
}

// Value returns the value of the enumerator called name. When the kernel has
// no such enumerator it returns an error wrapping ErrNotSupported, so that a
// scheduler that needs a constant can report which one the kernel lacks.
func (e Enums) Value(name string) (uint64, error) {
	v, ok := e.Lookup(name)
	if !ok {
		return 0, fmt.Errorf("scx: kernel has no enumerator %s: %w", name, ErrNotSupported)
	}
	return v, nil
}

// Lookup returns the value of the enumerator called name and whether the
// kernel has it, for constants a scheduler can do without.
func (e Enums) Lookup(name string) (uint64, bool) {
	ent, ok := e.m[name]
	return ent.value, ok
}

// Names returns the names of the enumerators that start with prefix, sorted,
// to list a family of flags (e.g. "SCX_ENQ_") or compare kernels.
func (e Enums) Names(prefix string) []string {
	var names []string
	for name := range e.m {
		if strings.HasPrefix(name, prefix) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// Len returns the number of enumerators recorded.
func (e Enums) Len() int {
	return len(e.m)
}

// typeOf returns the name of the enum type that declares name.
func (e Enums) typeOf(name string) (string, bool) {
	ent, ok := e.m[name]
	return ent.typ, ok
}

// add records the SCX_ enumerators of enum. An enumerator already recorded
// keeps its first value: within one kernel, duplicated enum types (BTF from
// several compilation units that dedup could not merge) carry the same
// values.
func (e *Enums) add(enum *btf.Enum) {
	for _, v := range enum.Values {
		if !strings.HasPrefix(v.Name, enumPrefix) {
			continue
		}
		if _, dup := e.m[v.Name]; dup {
			continue
		}
		if e.m == nil {
			e.m = make(map[string]enumEntry)
		}
		e.m[v.Name] = enumEntry{value: v.Value, typ: enum.Name}
	}
}

// enumTypes are the kernel enums that declare SCX_ enumerators, in any
// kernel from 6.16 to 7.3. A newer kernel's new enum types are missed until
// added here; TestEnumTypesComplete fails on such a kernel.
var enumTypes = []string{
	"scx_arena_consts", "scx_cap_flags", "scx_cid_consts", "scx_consts",
	"scx_cpu_preempt_reason", "scx_deq_flags", "scx_dsp_verdict",
	"scx_dsq_id_flags", "scx_dsq_iter_flags", "scx_dsq_lnode_flags",
	"scx_enable_state", "scx_enq_flags", "scx_ent_dsq_flags", "scx_ent_flags",
	"scx_exit_code", "scx_exit_flags", "scx_exit_kind", "scx_kf_allow_flags",
	"scx_kf_mask", "scx_kick_flags", "scx_opi", "scx_ops_enable_state",
	"scx_ops_flags", "scx_ops_state", "scx_pick_idle_cpu_flags",
	"scx_public_consts", "scx_reenq_flags", "scx_rq_flags",
	"scx_sched_pcpu_flags", "scx_slice_oob_consts", "scx_task_state",
	"scx_tg_flags", "scx_wake_flags",
}
