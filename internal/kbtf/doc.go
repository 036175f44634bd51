// Package kbtf reads the BTF type information of a kernel from its
// compressed boot image.
//
// scxkit pins the kernels it tests on (vmtest.Matrix) as Debian packages,
// of which only the bzImage (vmlinuz) is kept. That image holds the whole
// kernel ELF, .BTF section included, as one zstd frame (Debian builds with
// CONFIG_KERNEL_ZSTD). Reading BTF from there lets tests check which types
// and kfuncs each pinned kernel has, and lets scripts/vmlinux-h generate
// bpf/include/vmlinux.h, without downloading debug packages or booting the
// kernel.
//
// Vmlinux finds and decompresses the ELF; LoadSpec parses its BTF with
// github.com/cilium/ebpf/btf. Both are pure Go.
package kbtf
