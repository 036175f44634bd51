package scx

import (
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"

	"github.com/scxkit/scxkit/internal/percpu"
)

// Stats is a snapshot of a scheduler's counters (SK_STATS_DEFINE in
// stats.bpf.h), summed over CPUs: Values[i] is the counter named Names[i],
// in the order of the C struct's fields.
type Stats struct {
	Time   time.Time
	Names  []string
	Values []uint64
}

// Get returns the counter called name, and whether there is one.
func (s *Stats) Get(name string) (uint64, bool) {
	for i, n := range s.Names {
		if n == name {
			return s.Values[i], true
		}
	}
	return 0, false
}

// String formats the counters as "name=value" pairs.
func (s *Stats) String() string {
	var b strings.Builder
	for i, n := range s.Names {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%d", n, s.Values[i])
	}
	return b.String()
}

// statsReader sums the per-CPU copies of the sk_stats value struct.
type statsReader struct {
	raw   *percpu.Raw
	names []string
	descs []StatDesc
	mu    sync.Mutex // guards raw's buffer
}

// statHelpTag prefixes the BTF decl tag that gives a counter its help
// text: SK_STAT_HELP("...") in stats.bpf.h.
const statHelpTag = "sk_help:"

func newStatsReader(m *ebpf.Map, value btf.Type) (*statsReader, error) {
	if m.Type() != ebpf.PerCPUArray {
		return nil, fmt.Errorf("%s is a %s, want a per-CPU array: use SK_STATS_DEFINE", mapStats, m.Type())
	}
	descs, names, err := counterDescs(value)
	if err != nil {
		return nil, err
	}
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", mapStats, err)
	}
	raw, err := percpu.NewRaw(m, cpus)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", mapStats, err)
	}
	return &statsReader{raw: raw, names: names, descs: descs}, nil
}

// read fills dst, reusing its slices.
func (r *statsReader) read(dst *Stats) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	raw, err := r.raw.Lookup(0)
	if err != nil {
		return fmt.Errorf("read %s: %w", mapStats, err)
	}
	stride := r.raw.Stride()
	dst.Time = time.Now()
	dst.Names = r.names
	dst.Values = dst.Values[:0]
	for range r.names {
		dst.Values = append(dst.Values, 0)
	}
	for cpu := 0; (cpu+1)*stride <= len(raw); cpu++ {
		v := raw[cpu*stride:]
		for i := range dst.Values {
			dst.Values[i] += binary.NativeEndian.Uint64(v[8*i:])
		}
	}
	return nil
}

// counterDescs describes the counters of the sk_stats value struct: every
// field a u64 at its place, its help text from SK_STAT_HELP if given.
func counterDescs(value btf.Type) ([]StatDesc, []string, error) {
	st, ok := btf.As[*btf.Struct](value)
	if !ok {
		return nil, nil, fmt.Errorf("%s: value is %T, want a struct of u64 counters", mapStats, value)
	}
	var descs []StatDesc
	var names []string
	for i, mem := range st.Members {
		size, err := btf.Sizeof(mem.Type)
		if err != nil || size != 8 || mem.Offset.Bytes() != uint32(8*i) || mem.BitfieldSize != 0 {
			return nil, nil, fmt.Errorf("%s: field %s of struct %s is not a u64 counter: declare every field as u64", mapStats, mem.Name, st.Name)
		}
		names = append(names, mem.Name)
		help := "the scheduler's BPF counter " + mem.Name
		for _, tag := range mem.Tags {
			if h, ok := strings.CutPrefix(tag, statHelpTag); ok && h != "" {
				help = h
			}
		}
		descs = append(descs, StatDesc{Name: mem.Name, Help: help, Kind: Counter})
	}
	return descs, names, nil
}
