package behavior

// types.bpf.c exists for its types: bpf2go generates the Go layouts of
// struct sk_behavior_conf and struct sk_behavior_counters from it.
//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -tags linux -target bpfel behaviortypes types.bpf.c -- -mcpu=v3 -Wno-missing-declarations -I../bpf/include
