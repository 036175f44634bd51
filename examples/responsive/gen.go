package main

// Compiles responsive.bpf.c once per kfunc generation (responsive_bpfel.o and
// responsivev2_bpfel.o with their loaders; see scx.Objects), with the flags the
// headers need. Regenerate with go generate ./... (needs clang-19, llvm-19
// and libbpf-dev, which scripts/setup installs; scxkit gen says what is
// missing).
//go:generate go run github.com/scxkit/scxkit/cmd/scxkit gen responsive.bpf.c
