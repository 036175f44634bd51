// Package cpuset reads and writes the sk_cpuset globals of a loaded
// scheduler.
//
// bpf/include/scxkit/cpuset.bpf.h gives BPF code a fixed-size CPU set,
// struct sk_cpuset, with atomic set/clear/test-and-set, iteration, and
// claiming an idle CPU within a set (sk_cpuset_claim_idle). A scheduler
// keeps its sets (say a primary and a reserve nest of cores) as globals
// in .bss or .data, which cilium/ebpf maps into the loader's memory; this
// package converts between such a global and a topology.Cpumask:
//
//	Go (loader)                      BPF (scheduler)
//	cpuset.Write(vars["primary"], m) ──►  struct sk_cpuset primary SEC(".bss");
//	cpuset.Read(vars["primary"])     ◄──  sk_cpuset_set(&primary, cpu)
//
// where vars is the loaded scheduler's Collection().Variables (or an
// ebpf.Collection's). Glossary:
//
//   - set: a struct sk_cpuset, SK_CPUSET_WORDS little-endian u64 words; bit
//     c%64 of word c/64 is kernel CPU c. Its capacity (Capacity) is taken
//     from the object's BTF, never assumed.
//   - claim: clearing an idle CPU's idle bit in the kernel
//     (scx_bpf_test_and_clear_cpu_idle), so that no other waker picks the
//     same CPU.
//
// Read and Write copy the whole set with one memory copy each, without
// locking: BPF sees a Write word by word, and a Read concurrent with BPF
// updates may see some and miss others. Sets change rarely (nests grow and
// shrink); to change one bit while BPF also changes the set, do it in BPF.
package cpuset
