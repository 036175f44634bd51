package latency

//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -tags linux -target bpfel latencybpf latency.bpf.c -- -mcpu=v3 -Wno-missing-declarations -I../bpf/include
