package latency

//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -tags linux -target bpfel latencybpf latency.bpf.c -- -mcpu=v3 -Wno-missing-declarations -I../bpf/include

// types.bpf.c exists for its constants: bpf2go generates the Go twins of
// the macros of bpf/include/scxkit/latency.h that this package shares with
// latency.bpf.h (lattypesSkLatConsts*), so that no value is copied by hand.
//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -tags linux -target bpfel lattypes types.bpf.c -- -mcpu=v3 -Wno-missing-declarations -I../bpf/include
