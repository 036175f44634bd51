// Package selftest holds vmtest's own end-to-end tests: its test binary runs
// through vmtest.Main on every kernel of the matrix, in a VM shaped as
// 2 sockets x 2 cores x 2 threads with 2 NUMA nodes, and checks from inside
// the guest that the kernel, the mounts, the testdata and the requested
// topology are what the host asked for. It has no API.
package selftest
