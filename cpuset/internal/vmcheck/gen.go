// Package vmcheck holds the VM tests of cpuset.bpf.h, idle.bpf.h,
// timer.bpf.h and sk_dsq_nr_queued, run by a tiny packing scheduler
// (pack.bpf.c) on every kernel of the test matrix. It has no API.
package vmcheck

// The test scheduler is compiled for both kfunc generations, like every
// scxkit scheduler (see scx.Objects).
//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -tags linux -target bpfel -no-global-types pack pack.bpf.c -- -mcpu=v3 -Wno-missing-declarations -I../../../bpf/include
//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -tags linux -target bpfel -no-global-types packV2 pack.bpf.c -- -mcpu=v3 -Wno-missing-declarations -I../../../bpf/include -DSCXKIT_KFUNC_V2
