package preempt

// types.bpf.c exists for its types: bpf2go generates the Go layouts of the
// structs in bpf/include/scxkit/preempt.h from it.
//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -tags linux -target bpfel preempttypes types.bpf.c -- -mcpu=v3 -Wno-missing-declarations -I../bpf/include
