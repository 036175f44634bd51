package main

// Compiles nest.bpf.c once per kfunc generation (nest_bpfel.o and
// nestv2_bpfel.o with their loaders; see scx.Objects), with the flags the
// headers need. Regenerate with go generate ./... (needs clang-19, llvm-19
// and libbpf-dev, which scripts/setup installs; scxkit gen says what is
// missing).
//go:generate go run github.com/scxkit/scxkit/cmd/scxkit gen nest.bpf.c
