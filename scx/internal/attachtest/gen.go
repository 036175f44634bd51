// Package attachtest holds the VM tests of package scx and the test
// schedulers they attach. It has no API.
package attachtest

// Each test scheduler is compiled for both kfunc generations, like every
// scxkit scheduler (see scx.Objects).
//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -tags linux -target bpfel -no-global-types fifo fifo.bpf.c -- -mcpu=v3 -Wno-missing-declarations -I../../../bpf/include
//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -tags linux -target bpfel -no-global-types fifoV2 fifo.bpf.c -- -mcpu=v3 -Wno-missing-declarations -I../../../bpf/include -DSCXKIT_KFUNC_V2
//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -tags linux -target bpfel -no-global-types fail fail.bpf.c -- -mcpu=v3 -Wno-missing-declarations -I../../../bpf/include
//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -tags linux -target bpfel -no-global-types failV2 fail.bpf.c -- -mcpu=v3 -Wno-missing-declarations -I../../../bpf/include -DSCXKIT_KFUNC_V2
//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -tags linux -target bpfel -no-global-types bad bad.bpf.c -- -mcpu=v3 -Wno-missing-declarations -I../../../bpf/include
//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -tags linux -target bpfel -no-global-types badV2 bad.bpf.c -- -mcpu=v3 -Wno-missing-declarations -I../../../bpf/include -DSCXKIT_KFUNC_V2
//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -tags linux -target bpfel -no-global-types compose compose.bpf.c -- -mcpu=v3 -Wno-missing-declarations -I../../../bpf/include
//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -tags linux -target bpfel -no-global-types composeV2 compose.bpf.c -- -mcpu=v3 -Wno-missing-declarations -I../../../bpf/include -DSCXKIT_KFUNC_V2
//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -tags linux -target bpfel -no-global-types gauges gauges.bpf.c -- -mcpu=v3 -Wno-missing-declarations -I../../../bpf/include
//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -tags linux -target bpfel -no-global-types gaugesV2 gauges.bpf.c -- -mcpu=v3 -Wno-missing-declarations -I../../../bpf/include -DSCXKIT_KFUNC_V2
