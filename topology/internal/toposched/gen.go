// Package toposched holds test material for the topology component's BPF
// half: a scheduler that places wakeups with topology.bpf.h, a host-loadable
// query program, and Check, which compares the BPF helpers' answers with
// package topology's view. It has no API for users.
package toposched

//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -tags linux -target bpfel -type topo_question query query.bpf.c -- -mcpu=v3 -Wno-missing-declarations -I../../../bpf/include
//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -tags linux -target bpfel -no-global-types sched sched.bpf.c -- -mcpu=v3 -Wno-missing-declarations -I../../../bpf/include
//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -tags linux -target bpfel -no-global-types schedV2 sched.bpf.c -- -mcpu=v3 -Wno-missing-declarations -I../../../bpf/include -DSCXKIT_KFUNC_V2
