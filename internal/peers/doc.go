// Package peers builds the kernel's own sched_ext schedulers, the C
// programs of the kernel's tools/sched_ext (scx_simple, scx_flatcg, ...),
// so that scxkit bench can run them as peers beside the schedulers built
// with scxkit:
//
//	scxkit bench --peer scx_simple,scx_flatcg simple
//
// They are the reference every sched_ext scheduler is measured against,
// and they come with the kernel source, so the comparison needs nothing
// but Debian's linux-source-7.3 package (trixie-backports), which holds
// the exact source of the 7.3 kernel vmtest boots: scripts/setup installs
// it, with the toolchain the build needs (clang-19, lld-19, libelf-dev,
// zlib1g-dev, libzstd-dev, make).
//
// The peers are GPL code. scxkit carries none of it: Build compiles them
// on the user's machine, from the user's own copy of the package, when a
// peer is first asked for.
//
// # Glossary
//
//   - Peer: one of the kernel's example schedulers, named as its program
//     is (Names lists the ones that build and attach with default flags).
//   - Source: the kernel source tarball of a Debian linux-source package,
//     with the package version, which keys the cache.
//   - BTF image: the kernel image (bzImage, vmlinux ELF or raw BTF) whose
//     types the build compiles against (the Makefile's VMLINUX_BTF).
//
// # Data flow
//
//	/usr/src/linux-source-7.3.tar.xz ─► tar (tools, include, scripts, kernel/bpf only)
//	vmtest's pinned 7.3 vmlinuz ─► kbtf.Vmlinux ─► VMLINUX_BTF
//	     ─► make -C tools/sched_ext LLVM=-19 ─► build/bin/scx_* ─► <cache>/peers/<key>/
//
// # Cache
//
// Build keeps the programs in the peers folder of vmtest's cache
// directory ($SCXKIT_CACHE, else the user cache directory's scxkit
// folder), in one folder per key: the source package and version, a hash
// of the BTF image, and the version of this recipe. It builds every
// peer the Makefile knows at once (the shared part, libbpf and bpftool,
// is most of the work), then renames the finished folder into place, so
// a folder that exists is complete; a lock file per key makes a second
// process that asks for the same key wait for the first one's build
// rather than build again. Later calls find the folder and return at
// once. A peer that failed to build is recorded as such, with the build
// log beside it; delete the folder to try again.
//
// Extracting only the four directories the build reads, rather than the
// whole tarball, writes 177 MB instead of 1.8 GB and takes about half the
// time (10 s against 20 s on an idle two-core machine; xz must decompress
// the whole stream either way, so the rest is the writing).
package peers
