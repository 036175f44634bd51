package main

// Compiled once per kfunc generation; see scx.Objects.
//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -tags linux -target bpfel -no-global-types responsive responsive.bpf.c -- -mcpu=v3 -Wno-missing-declarations -I../../bpf/include
//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -tags linux -target bpfel -no-global-types responsiveV2 responsive.bpf.c -- -mcpu=v3 -Wno-missing-declarations -I../../bpf/include -DSCXKIT_KFUNC_V2
