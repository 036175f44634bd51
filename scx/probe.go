package scx

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"

	"github.com/cilium/ebpf/btf"
	"golang.org/x/sys/unix"
)

// KfuncGen identifies a generation of the sched_ext kfunc API: which names a
// BPF program must call for the core kfuncs on a given kernel.
type KfuncGen int

// The kfunc API generations, oldest first.
const (
	// KfuncBase: programs call the base names (scx_bpf_dsq_insert,
	// scx_bpf_dsq_move_to_local, scx_bpf_reenqueue_local). Debian 6.16
	// and 7.0.
	KfuncBase KfuncGen = iota + 1
	// KfuncV2: programs must call the ___v2 names, as the base names are
	// ambiguous to cilium/ebpf (see Kernel.Gen). Debian 7.3.
	KfuncV2
)

// String returns "base" or "v2", and "KfuncGen(N)" for other values.
func (g KfuncGen) String() string {
	switch g {
	case KfuncBase:
		return "base"
	case KfuncV2:
		return "v2"
	}
	return "KfuncGen(" + strconv.Itoa(int(g)) + ")"
}

// Kernel is what a kernel offers to sched_ext schedulers, read from its BTF:
// the kfunc generation, the members of struct sched_ext_ops and the SCX_
// enumerators. A scheduler loader uses it to pick the program variant and
// fill in constants before loading, and to report what the kernel lacks
// rather than fail in the verifier. It does not change during a boot; Status
// reads what does.
type Kernel struct {
	// Release is the kernel release, as uname -r prints it.
	Release string
	// Gen is the kfunc generation programs for this kernel must use.
	//
	// It is KfuncV2 when the BTF has a function named
	// scx_bpf_dsq_move_to_local___v2, else KfuncBase. The test is about
	// what cilium/ebpf v0.22.0 can resolve, not about when the kernel
	// renamed its kfuncs: Debian 7.3's BTF has scx_bpf_dsq_insert,
	// scx_bpf_dsq_insert___v2 and scx_bpf_dsq_insert___v2_impl (likewise
	// for move_to_local and reenqueue_local). cilium/ebpf looks a kfunc up
	// with btf.Spec.TypeByName, whose btf.Spec.AnyTypesByName gathers the
	// types sharing the name without its ___ suffix (all three) and then
	// drops those whose full name differs. It deletes from the slice while
	// iterating forward, so it skips the element after each deletion: one
	// flavour survives next to the base function, and the lookup of the
	// base name fails with "multiple matching types". Programs for such a
	// kernel must therefore call the ___v2 names, which resolve.
	// Debian 7.0 has scx_bpf_dsq_insert___v2 and
	// scx_bpf_reenqueue_local___v2 but no move_to_local___v2, and its base
	// names resolve, so it stays KfuncBase.
	Gen KfuncGen
	// Ops lists the members of struct sched_ext_ops in BTF order: the
	// callbacks and data fields (name, flags, timeout_ms, ...) a
	// scheduler may set on this kernel.
	Ops []string
	// Enums holds the kernel's SCX_ enumerators.
	Enums Enums

	spec  *btf.Spec // for kfunc lookups
	sysfs fs.FS     // rooted like /sys, for Status
}

// HasOp reports whether struct sched_ext_ops has a member called name, so a
// scheduler can leave out a callback or field the kernel does not know.
func (k *Kernel) HasOp(name string) bool {
	return slices.Contains(k.Ops, name)
}

// HasKfunc reports whether the kernel's BTF has a function called name, so
// a scheduler can avoid calling a kfunc the verifier would reject.
func (k *Kernel) HasKfunc(name string) bool {
	if k.spec == nil {
		return false
	}
	// AnyTypesByName may return near-namesakes (see Gen); compare exactly.
	types, err := k.spec.AnyTypesByName(name)
	if err != nil {
		return false
	}
	return slices.ContainsFunc(types, func(t btf.Type) bool {
		fn, ok := t.(*btf.Func)
		return ok && fn.Name == name
	})
}

// Status reads sched_ext's current state from the sysfs Probe was given.
// Unlike the rest of Kernel it changes over time, so each call reads anew.
func (k *Kernel) Status() (Status, error) {
	return ReadStatus(k.sysfs)
}

// ProbeOptions overrides where Probe looks. The zero value, like a nil
// *ProbeOptions, probes the running kernel; tests and tools that examine
// another kernel set the fields.
type ProbeOptions struct {
	// SysFS is rooted like /sys and used by Kernel.Status; nil means
	// os.DirFS("/sys").
	SysFS fs.FS
	// KernelBTF is the kernel's BTF; nil means btf.LoadKernelSpec().
	KernelBTF *btf.Spec
	// Release is the kernel release; "" means uname -r.
	Release string
}

// v2Marker is the kfunc whose presence makes a kernel KfuncV2 (see
// Kernel.Gen).
const v2Marker = "scx_bpf_dsq_move_to_local___v2"

// Probe reads what the kernel offers to sched_ext schedulers from its BTF.
// opts may be nil.
//
// BTF is authoritative for the API: when it has no struct sched_ext_ops, the
// kernel was built without sched_ext and Probe returns an error wrapping
// ErrNotSupported. Probe does not look at /sys/kernel/sched_ext; Status does.
func Probe(opts *ProbeOptions) (*Kernel, error) {
	var o ProbeOptions
	if opts != nil {
		o = *opts
	}
	if o.SysFS == nil {
		o.SysFS = os.DirFS("/sys")
	}
	if o.Release == "" {
		rel, err := unameRelease()
		if err != nil {
			return nil, err
		}
		o.Release = rel
	}
	spec := o.KernelBTF
	if spec == nil {
		var err error
		spec, err = btf.LoadKernelSpec()
		if errors.Is(err, btf.ErrNotSupported) {
			return nil, fmt.Errorf("scx: kernel %s has no BTF (CONFIG_DEBUG_INFO_BTF is not set): %w: %w", o.Release, ErrNotSupported, err)
		}
		if err != nil {
			return nil, fmt.Errorf("scx: kernel %s: load BTF: %w", o.Release, err)
		}
	}

	var ops *btf.Struct
	err := spec.TypeByName("sched_ext_ops", &ops)
	if errors.Is(err, btf.ErrNotFound) {
		return nil, fmt.Errorf("scx: kernel %s has no sched_ext (CONFIG_SCHED_CLASS_EXT is not set): %w; run the scheduler on a kernel built with it (Linux 6.12 or newer), or in a VM: package vmtest boots Debian's sched_ext kernels under qemu and runs a test binary there (go doc github.com/scxkit/scxkit/vmtest)", o.Release, ErrNotSupported)
	}
	if err != nil {
		return nil, fmt.Errorf("scx: kernel %s: BTF: struct sched_ext_ops: %w", o.Release, err)
	}

	k := &Kernel{
		Release: o.Release,
		Gen:     KfuncBase,
		Ops:     make([]string, 0, len(ops.Members)),
		spec:    spec,
		sysfs:   o.SysFS,
	}
	for _, m := range ops.Members {
		k.Ops = append(k.Ops, m.Name)
	}
	// Look up the enum types by name rather than walk spec.All(): BTF is
	// decoded lazily, and decoding all ~130k types takes 0.3s natively and
	// over 20s in a TCG VM. TestEnumTypesComplete checks on every kernel
	// of the matrix that enumTypes misses no SCX_ enumerator.
	for _, name := range enumTypes {
		types, err := spec.AnyTypesByName(name)
		if err != nil && !errors.Is(err, btf.ErrNotFound) {
			return nil, fmt.Errorf("scx: kernel %s: BTF: enum %s: %w", o.Release, name, err)
		}
		for _, t := range types {
			if e, ok := t.(*btf.Enum); ok && e.Name == name {
				k.Enums.add(e)
			}
		}
	}
	// Only move_to_local___v2 marks a kernel whose base kfunc names
	// cilium/ebpf cannot resolve; see Kernel.Gen.
	if k.HasKfunc(v2Marker) {
		k.Gen = KfuncV2
	}
	return k, nil
}

// unameRelease returns the running kernel's release, as uname -r prints it.
func unameRelease() (string, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", fmt.Errorf("scx: uname: %w", err)
	}
	return unix.ByteSliceToString(u.Release[:]), nil
}
