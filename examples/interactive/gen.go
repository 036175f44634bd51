package main

// The scheduler is compiled twice, once per kfunc generation; scx.Open
// takes both and Load picks the one for the running kernel. Regenerate with
// `go generate ./...` (needs clang-19 and libbpf-dev from scripts/setup).
//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -tags linux -target bpfel -no-global-types interactive interactive.bpf.c -- -mcpu=v3 -Wno-missing-declarations -I../../bpf/include
//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -tags linux -target bpfel -no-global-types interactiveV2 interactive.bpf.c -- -mcpu=v3 -Wno-missing-declarations -I../../bpf/include -DSCXKIT_KFUNC_V2
