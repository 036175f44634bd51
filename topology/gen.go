package topology

// topo.bpf.c exists for its types: bpf2go generates topoSkTopo, the Go
// layout of struct sk_topo, from it.
//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -tags linux -target bpfel topo topo.bpf.c -- -mcpu=v3 -Wno-missing-declarations -I../bpf/include
