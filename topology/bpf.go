package topology

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/cilium/ebpf"
)

// Limits of the BPF-side layout (bpf/include/scxkit/topology.h).
const (
	MaxBPFCPUs  = 512 // SK_TOPO_MAX_CPUS: kernel CPU ids must be below it
	MaxBPFLLCs  = 128 // SK_TOPO_MAX_LLCS
	MaxBPFNodes = 64  // SK_TOPO_MAX_NODES
)

// bpfVariable is the global that topology.bpf.h defines.
const bpfVariable = "sk_topology"

// ErrTooBig is wrapped by WriteBPF's error for a machine that does not fit
// the BPF-side layout.
var ErrTooBig = errors.New("topology too big for the BPF layout")

// WriteBPF fills the sk_topology global of a loaded scheduler that
// includes scxkit/topology.bpf.h: per-CPU core, LLC, node and capacity,
// and the CPU masks of every core, LLC and node. Call it after
// scx.Spec.Load and before Attach, and again with a fresh Topology after a
// hotplug restart.
func (t *Topology) WriteBPF(coll *ebpf.Collection) error {
	v := coll.Variables[bpfVariable]
	if v == nil {
		return fmt.Errorf("topology: write BPF: the object has no %s global: include scxkit/topology.bpf.h", bpfVariable)
	}
	var st topoSkTopo
	if size := uint32(unsafe.Sizeof(st)); v.Size() != size {
		return fmt.Errorf("topology: write BPF: %s is %d bytes, this package expects %d: rebuild the object against this version of scxkit/topology.h", bpfVariable, v.Size(), size)
	}
	if err := t.encodeBPF(&st); err != nil {
		return fmt.Errorf("topology: write BPF: %w", err)
	}
	if err := v.Set(&st); err != nil {
		return fmt.Errorf("topology: write BPF: %w", err)
	}
	return nil
}

// encodeBPF converts t into the BPF layout.
func (t *Topology) encodeBPF(st *topoSkTopo) error {
	switch {
	case t.Online.Max() >= MaxBPFCPUs:
		return fmt.Errorf("%w: CPU %d, the layout holds kernel ids below %d", ErrTooBig, t.Online.Max(), MaxBPFCPUs)
	case len(t.Cores) > MaxBPFCPUs:
		return fmt.Errorf("%w: %d cores, the layout holds %d", ErrTooBig, len(t.Cores), MaxBPFCPUs)
	case len(t.LLCs) > MaxBPFLLCs:
		return fmt.Errorf("%w: %d LLCs, the layout holds %d", ErrTooBig, len(t.LLCs), MaxBPFLLCs)
	case len(t.Nodes) > MaxBPFNodes:
		return fmt.Errorf("%w: %d nodes, the layout holds %d", ErrTooBig, len(t.Nodes), MaxBPFNodes)
	}
	*st = topoSkTopo{
		NrCpuIds: uint32(t.Online.Max() + 1),
		NrCores:  uint32(len(t.Cores)),
		NrLlcs:   uint32(len(t.LLCs)),
		NrNodes:  uint32(len(t.Nodes)),
	}
	for _, c := range t.CPUs {
		e := &st.Cpus[c.KernelID]
		e.Flags = 1 // SK_TOPO_CPU_ONLINE
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
