package topology

import (
	"fmt"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/scxkit/scxkit/scx"
)

// Limits of the BPF-side layout (bpf/include/scxkit/topology.h). They
// equal the header's macros; TestConstantsMatchBPF checks them against the
// compiler's values.
const (
	// MaxBPFCPUs bounds kernel CPU ids, and the cores (SK_TOPO_MAX_CPUS).
	MaxBPFCPUs = 512
	// MaxBPFLLCs is the most LLCs (SK_TOPO_MAX_LLCS).
	MaxBPFLLCs = 128
	// MaxBPFNodes is the most NUMA nodes (SK_TOPO_MAX_NODES).
	MaxBPFNodes = 64
)

// A Topology is a component.
var _ scx.Component = (*Topology)(nil)

// bpfObjects are the globals topology.bpf.h defines.
type bpfObjects struct {
	Topology *ebpf.Variable `ebpf:"sk_topology"`
}

// bpfHeader is the header a scheduler includes for the topology component.
const bpfHeader = "scxkit/topology.bpf.h"

// Name implements scx.Component: a Topology is the component "topology",
// which hands the machine's layout to topology.bpf.h.
func (t *Topology) Name() string { return "topology" }

// Needs implements scx.Component. The topology component needs the
// sk_topology global of topology.bpf.h and nothing else: its helpers
// (sk_topo_cpu, sk_topo_pick_idle_cpu, ...) may be called from any
// callback, and it decides no callback alone.
func (t *Topology) Needs() scx.Needs {
	return scx.Needs{Objects: (*bpfObjects)(nil), Header: bpfHeader}
}

// Bind implements scx.Component: it fills the sk_topology global of the
// loaded scheduler with t, per-CPU core, LLC, node and capacity and the
// CPU masks of every core, LLC and node, for topology.bpf.h's helpers. A
// restart after CPU hotplug needs a fresh Topology (Discover again), as a
// Topology describes the CPUs online when it was discovered. Its error
// wraps ErrTooBig for a machine beyond the BPF layout's limits.
func (t *Topology) Bind(b *scx.Binding) error {
	var objs bpfObjects
	if err := b.Assign(&objs); err != nil {
		return err // names the component and every missing object
	}
	v := objs.Topology
	var st topoSkTopo
	if size := uint32(unsafe.Sizeof(st)); v.Size() != size {
		return fmt.Errorf("topology: bind: sk_topology is %d bytes, this package expects %d: rebuild the object against this version of scxkit/topology.h", v.Size(), size)
	}
	if err := t.encodeBPF(&st); err != nil {
		return fmt.Errorf("topology: bind: %w", err)
	}
	if err := v.Set(&st); err != nil {
		return fmt.Errorf("topology: bind: write sk_topology: %w", err)
	}
	return nil
}

// encodeBPF converts t into the BPF layout.
func (t *Topology) encodeBPF(st *topoSkTopo) error {
	switch {
	case t.Online.Max() >= len(st.Cpus):
		return fmt.Errorf("CPU %d: %w: the BPF layout holds kernel ids below %d; raise SK_TOPO_MAX_CPUS in scxkit/topology.h and rebuild", t.Online.Max(), ErrTooBig, len(st.Cpus))
	case len(t.Cores) > len(st.CoreCpus):
		return fmt.Errorf("%d cores: %w: the BPF layout holds %d; raise SK_TOPO_MAX_CPUS in scxkit/topology.h and rebuild", len(t.Cores), ErrTooBig, len(st.CoreCpus))
	case len(t.LLCs) > len(st.LlcCpus):
		return fmt.Errorf("%d LLCs: %w: the BPF layout holds %d; split fewer of them (a larger Options.LLCCores), or raise SK_TOPO_MAX_LLCS in scxkit/topology.h and rebuild", len(t.LLCs), ErrTooBig, len(st.LlcCpus))
	case len(t.Nodes) > len(st.NodeCpus):
		return fmt.Errorf("%d nodes: %w: the BPF layout holds %d; raise SK_TOPO_MAX_NODES in scxkit/topology.h and rebuild", len(t.Nodes), ErrTooBig, len(st.NodeCpus))
	}
	*st = topoSkTopo{
		NrCpuIds: uint32(t.Online.Max() + 1),
		NrCores:  uint32(len(t.Cores)),
		NrLlcs:   uint32(len(t.LLCs)),
		NrNodes:  uint32(len(t.Nodes)),
	}
	for _, c := range t.CPUs {
		e := &st.Cpus[c.KernelID]
		e.Flags = uint32(topoSkTopoConstsSK_CPU_ONLINE)
		e.Core = uint32(c.Core)
		e.Llc = uint32(c.LLC)
		e.Node = uint32(c.Node)
		e.Capacity = uint32(c.Capacity)
	}
	for i, c := range t.Cores {
		copy(st.CoreCpus[i].Bits[:], c.CPUs.Words())
	}
	for i, l := range t.LLCs {
		copy(st.LlcCpus[i].Bits[:], l.CPUs.Words())
	}
	for i, n := range t.Nodes {
		copy(st.NodeCpus[i].Bits[:], n.CPUs.Words())
	}
	return nil
}
