package vmtest

// This file pins the kernels of scxkit's test matrix: Debian's builds with
// CONFIG_SCHED_CLASS_EXT=y, one per sched_ext kfunc API generation.
//
// Debian's archive drops old versions. When a pinned package is gone, apt
// reports it missing and vmtest says so; bump the pin here to the version the
// suite now carries (apt-cache search 'linux-(image|binary)-.*deb13-amd64'),
// or point SCXKIT_VMLINUZ at a kernel image you already have.

// Matrix lists the pinned kernels, oldest first. Tests run on each of them
// unless SCXKIT_KERNELS or SCXKIT_VMLINUZ selects otherwise.
var Matrix = []Kernel{
	{
		Name:    "6.16",
		Release: "6.16.3+deb13-amd64",
		Package: "linux-image-6.16.3+deb13-amd64",
		Suite:   "trixie-backports",
		Member:  "boot/vmlinuz-6.16.3+deb13-amd64",
	},
	{
		Name:    "7.0",
		Release: "7.0.13+deb13-amd64",
		Package: "linux-binary-7.0.13+deb13-amd64",
		Suite:   "trixie-backports",
		Member:  "boot/vmlinuz-7.0.13+deb13-amd64",
	},
	{
		Name:    "7.3",
		Release: "7.3.4+deb13-amd64",
		Package: "linux-binary-7.3.4+deb13-amd64",
		Suite:   "trixie-backports",
		Member:  "usr/lib/modules/7.3.4+deb13-amd64/vmlinuz",
	},
}
