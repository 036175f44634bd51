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

// Stats is a reading of a scheduler's own stats (stats.bpf.h): the
// fields of its SK_STATS_DEFINE struct, summed over CPUs, then those of
// its SK_GAUGES_DEFINE struct, in the order of the C structs' fields.
// Values[i] is the value of the stat named Names[i], of kind Kinds[i]:
//
//   - a Counter's total since the scheduler was loaded;
//   - a Gauge's level now (a field tagged SK_STAT_GAUGE, or a field of
//     SK_GAUGES_DEFINE): a signed number, stored as its two's complement,
//     which Level reads.
//
// A read into a Stats that holds an earlier read of the same scheduler
// keeps that one in PrevTime and PrevValues, so that Delta, Interval and
// Rate give each counter's change over the interval between the two
// without the reader keeping state; the read reuses both slices, so a
// reader that reads into one Stats allocates nothing in steady state.
// Names and Kinds are shared by every read of the scheduler: do not
// modify them.
type Stats struct {
	Time   time.Time
	Names  []string
	Kinds  []StatKind
	Values []uint64

	// PrevTime and PrevValues are Time and Values of the previous read
	// into this Stats; PrevTime is zero and PrevValues empty after a
	// first read, or one of another scheduler.
	PrevTime   time.Time
	PrevValues []uint64
}

// index returns the index of the stat called name, or -1.
func (s *Stats) index(name string) int {
	for i, n := range s.Names {
		if n == name && i < len(s.Values) {
			return i
		}
	}
	return -1
}

// Get returns the value of the stat called name, and whether there is
// one: a counter's total, or a gauge's level as stored (see Level).
func (s *Stats) Get(name string) (uint64, bool) {
	if i := s.index(name); i >= 0 {
		return s.Values[i], true
	}
	return 0, false
}

// Level returns the level of the gauge called name, and whether there is
// a gauge of that name.
func (s *Stats) Level(name string) (int64, bool) {
	if i := s.index(name); i >= 0 && s.kind(i) == Gauge {
		return int64(s.Values[i]), true
	}
	return 0, false
}

// Delta returns how much the counter called name grew between the
// previous read into s and this one. It is false when there is no
// counter of that name (a gauge has no delta: read its Level) or no
// previous read.
func (s *Stats) Delta(name string) (uint64, bool) {
	i := s.index(name)
	if i < 0 || s.kind(i) != Counter || s.PrevTime.IsZero() || i >= len(s.PrevValues) {
		return 0, false
	}
	return s.Values[i] - s.PrevValues[i], true
}

// Interval returns the time between the previous read into s and this
// one, or zero after a first read.
func (s *Stats) Interval() time.Duration {
	if s.PrevTime.IsZero() {
		return 0
	}
	return s.Time.Sub(s.PrevTime)
}

// Rate returns Delta(name) per second of Interval, and false when Delta
// is or the interval is not positive.
func (s *Stats) Rate(name string) (float64, bool) {
	d, ok := s.Delta(name)
	iv := s.Interval()
	if !ok || iv <= 0 {
		return 0, false
	}
	return float64(d) / iv.Seconds(), true
}

// kind returns the kind of stat i; a Stats filled by hand without Kinds
// holds counters.
func (s *Stats) kind(i int) StatKind {
	if i < len(s.Kinds) {
		return s.Kinds[i]
	}
	return Counter
}

// String formats the stats as "name=value" pairs: counters' totals and
// gauges' (signed) levels.
func (s *Stats) String() string {
	var b strings.Builder
	for i, n := range s.Names {
		if i >= len(s.Values) {
			break
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		if s.kind(i) == Gauge {
			fmt.Fprintf(&b, "%s=%d", n, int64(s.Values[i]))
		} else {
			fmt.Fprintf(&b, "%s=%d", n, s.Values[i])
		}
	}
	return b.String()
}

// varGauges is the global of SK_GAUGES_DEFINE in stats.bpf.h.
const varGauges = "sk_gauges"

// statsReader reads a scheduler's own stats: it sums the per-CPU copies
// of the sk_stats value struct and appends the sk_gauges fields.
type statsReader struct {
	raw      *percpu.Raw // nil without sk_stats
	nPerCPU  int         // stats from sk_stats, first in names
	gauges   *ebpf.Variable
	gaugeBuf []byte
	gaugeOut any // gaugeBuf, boxed once so that reads do not allocate
	names    []string
	kinds    []StatKind
	descs    []StatDesc
	mu       sync.Mutex // guards raw's buffer and gaugeBuf
}

// Tags of the BTF decl tags stats.bpf.h puts on stats fields: the help
// text (SK_STAT_HELP) and the kind (SK_STAT_GAUGE).
const (
	statHelpTag = "sk_help:"
	statKindTag = "sk_kind:"
)

// openStats returns the reader of the object's sk_stats map and
// sk_gauges global, or nil if it has neither.
func openStats(spec *ebpf.CollectionSpec, coll *ebpf.Collection) (*statsReader, error) {
	var r *statsReader
	if m := coll.Maps[mapStats]; m != nil && spec.Maps[mapStats] != nil {
		var err error
		if r, err = newStatsReader(m, spec.Maps[mapStats].Value); err != nil {
			return nil, err
		}
	}
	if v := coll.Variables[varGauges]; v != nil {
		if r == nil {
			r = &statsReader{}
		}
		if err := r.addGauges(v); err != nil {
			return nil, err
		}
	}
	return r, nil
}

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
	r := &statsReader{raw: raw, nPerCPU: len(names), names: names, descs: descs}
	for _, d := range descs {
		r.kinds = append(r.kinds, d.Kind)
	}
	return r, nil
}

// addGauges adds the fields of the sk_gauges global to what r reads.
func (r *statsReader) addGauges(v *ebpf.Variable) error {
	if v.ReadOnly() {
		return fmt.Errorf("%s is read-only: declare it with SK_GAUGES_DEFINE, not const", varGauges)
	}
	descs, err := gaugeDescs(v.Type().Type)
	if err != nil {
		return err
	}
	for _, d := range descs {
		for _, n := range r.names {
			if n == d.Name {
				return fmt.Errorf("%s: gauge %s has the name of a field of %s: rename one of them", varGauges, d.Name, mapStats)
			}
		}
		r.names = append(r.names, d.Name)
		r.kinds = append(r.kinds, Gauge)
		r.descs = append(r.descs, d)
	}
	r.gauges = v
	r.gaugeBuf = make([]byte, v.Size())
	r.gaugeOut = r.gaugeBuf
	return nil
}

// read fills dst, reusing its slices; what dst held from an earlier read
// of this reader moves to PrevTime and PrevValues.
func (r *statsReader) read(dst *Stats) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var raw []byte
	if r.raw != nil {
		var err error
		if raw, err = r.raw.Lookup(0); err != nil {
			return fmt.Errorf("read %s: %w", mapStats, err)
		}
	}
	if r.gauges != nil {
		if err := r.gauges.Get(r.gaugeOut); err != nil {
			return fmt.Errorf("read %s: %w", varGauges, err)
		}
	}
	now := time.Now()
	if !dst.Time.IsZero() && sameSlice(dst.Names, r.names) && len(dst.Values) == len(r.names) {
		dst.PrevTime = dst.Time
		dst.Values, dst.PrevValues = dst.PrevValues, dst.Values
	} else {
		dst.PrevTime = time.Time{}
		dst.PrevValues = dst.PrevValues[:0]
	}
	dst.Time = now
	dst.Names = r.names
	dst.Kinds = r.kinds
	dst.Values = dst.Values[:0]
	for range r.names {
		dst.Values = append(dst.Values, 0)
	}
	if r.raw != nil {
		stride := r.raw.Stride()
		for cpu := 0; (cpu+1)*stride <= len(raw); cpu++ {
			v := raw[cpu*stride:]
			for i := range r.nPerCPU {
				dst.Values[i] += binary.NativeEndian.Uint64(v[8*i:])
			}
		}
	}
	for i := r.nPerCPU; i < len(r.names); i++ {
		dst.Values[i] = binary.NativeEndian.Uint64(r.gaugeBuf[8*(i-r.nPerCPU):])
	}
	return nil
}

// sameSlice reports whether a and b are the same slice: dst was last
// filled by this reader.
func sameSlice(a, b []string) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// counterDescs describes the stats of the sk_stats value struct: every
// field a u64 at its place, a Counter unless tagged SK_STAT_GAUGE, its
// help text from SK_STAT_HELP if given.
func counterDescs(value btf.Type) ([]StatDesc, []string, error) {
	descs, err := fieldDescs(mapStats, value, Counter)
	if err != nil {
		return nil, nil, err
	}
	names := make([]string, len(descs))
	for i, d := range descs {
		names[i] = d.Name
	}
	return descs, names, nil
}

// gaugeDescs describes the gauges of the sk_gauges struct: every field
// a 64-bit integer at its place.
func gaugeDescs(value btf.Type) ([]StatDesc, error) {
	descs, err := fieldDescs(varGauges, value, Gauge)
	if err != nil {
		return nil, err
	}
	for _, d := range descs {
		if d.Kind != Gauge {
			return nil, fmt.Errorf("%s: field %s: every field of SK_GAUGES_DEFINE is a gauge: drop its kind tag", varGauges, d.Name)
		}
	}
	return descs, nil
}

// fieldDescs describes the fields of the struct value of object what, each
// of kind dflt unless its tags say otherwise.
func fieldDescs(what string, value btf.Type, dflt StatKind) ([]StatDesc, error) {
	st, ok := btf.As[*btf.Struct](value)
	if !ok {
		return nil, fmt.Errorf("%s: value is %T, want a struct of u64 fields", what, value)
	}
	var descs []StatDesc
	for i, mem := range st.Members {
		size, err := btf.Sizeof(mem.Type)
		_, isInt := btf.As[*btf.Int](mem.Type)
		if err != nil || size != 8 || !isInt || mem.Offset.Bytes() != uint32(8*i) || mem.BitfieldSize != 0 {
			return nil, fmt.Errorf("%s: field %s of struct %s is not a 64-bit integer: declare every field as u64 (or s64 for a gauge)", what, mem.Name, st.Name)
		}
		d := StatDesc{Name: mem.Name, Kind: dflt}
		for _, tag := range mem.Tags {
			if h, ok := strings.CutPrefix(tag, statHelpTag); ok && h != "" {
				d.Help = h
			}
			if k, ok := strings.CutPrefix(tag, statKindTag); ok {
				switch k {
				case "gauge":
					d.Kind = Gauge
				case "counter":
					d.Kind = Counter
				default:
					return nil, fmt.Errorf("%s: field %s of struct %s: kind tag %q: use SK_STAT_GAUGE", what, mem.Name, st.Name, tag)
				}
			}
		}
		if d.Help == "" {
			d.Help = fmt.Sprintf("the scheduler's BPF %s %s", d.Kind, mem.Name)
		}
		descs = append(descs, d)
	}
	return descs, nil
}
