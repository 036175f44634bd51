package smt

// types.bpf.c exists for its types: bpf2go generates the Go layouts of
// struct sk_smt_layout and struct sk_smt_counters from it.
//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -tags linux -target bpfel smttypes types.bpf.c -- -mcpu=v3 -Wno-missing-declarations -I../bpf/include
