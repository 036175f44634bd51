package scx

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
)

// Component is one reusable part of a scheduler: BPF code that the
// scheduler's object includes (a header under bpf/include/scxkit) and the
// Go code that feeds and reads it. The scheduler lists its components in
// Config.Components; every component follows the same life:
//
//	New(inputs, *Options)  build it from its inputs, no kernel    package's own constructor
//	Needs()                what it needs of the scheduler        read once, at Open
//	Bind(*Binding)         find its maps, write what BPF reads   after every Load, before Attach
//	Work()                 periodic work, if it is a Worker      while Run runs
//	Stats()/ReadStats      typed stats, if it is a Reporter      whenever stats are read
//
// A component never owns the whole scheduler: what it requires, forbids
// and decides alone is declared in Needs, and Open refuses components
// that cannot be combined with an error naming both.
type Component interface {
	// Name identifies the component in errors, logs and stat names:
	// lower-case letters, digits and '_', unique within a scheduler.
	Name() string
	// Needs says what the component requires of the scheduler. Open
	// calls it once, without a kernel.
	Needs() Needs
	// Bind connects the component to a loaded scheduler: it finds its
	// maps and globals (Binding.Assign) and writes what the BPF side reads
	// before ops.init. Load calls it after every load, so a scheduler
	// restarted after CPU hotplug binds its components afresh.
	Bind(*Binding) error
}

// Worker is a Component with periodic work, such as a load balancing
// round. Run calls every Periodic's Func on its own goroutine while the
// scheduler is attached; an error from one stops the run.
type Worker interface {
	Component
	Work() []Periodic
}

// Reporter is a Component that reports stats: counters and gauges with
// names and help text. Stats describes them once; ReadStats may be called
// from any goroutine, also while the component's Work runs.
type Reporter interface {
	Component
	// Stats describes the component's stats. It must return the same
	// descriptions for the life of a binding.
	Stats() []StatDesc
	// ReadStats appends the current values to dst and returns it; Sample.Stat
	// indexes Stats(). A Reporter should reuse its own buffers and label
	// strings, so that a read allocates no more than the map lookups
	// themselves (cilium/ebpf allocates a little per per-CPU lookup).
	ReadStats(dst []Sample) ([]Sample, error)
}

// Needs is what a component requires of the scheduler it is part of.
// Open checks it against the object and against the other components.
type Needs struct {
	// Flags are sched_ext_ops flags the component requires; Open adds
	// them to the scheduler's flags.
	Flags []OpsFlag
	// Forbids are flags the component cannot work with, e.g. preemption
	// by class forbids SCX_OPS_ENQ_LAST. A forbidden flag that another
	// component requires, or that Config.Flags sets, fails Open.
	Forbids []OpsFlag
	// Requires names components that must come before this one in
	// Config.Components, because it builds on them: a class policy that
	// orders work on the DSQs of a "dsq" layout requires "dsq".
	Requires []string
	// Callbacks are sched_ext_ops members ("enqueue", "running", ...) the
	// object must implement, and call the component's BPF hook from.
	Callbacks []string
	// Owns are callbacks whose decision the component takes alone: where
	// ops.enqueue inserts a task, which DSQ ops.dispatch consumes. Two
	// components owning the same callback cannot be combined. An owned
	// callback is also a required one: it need not be listed twice.
	Owns []string
	// DSQs is how many dispatch queue ids the component needs. Open
	// allocates a range of that many ids from FirstComponentDSQ up;
	// Binding.DSQs gives the range to the Go side. If DSQBase names a
	// const volatile u64 global, Load writes the first id into it before
	// load; a component that hands its ids to BPF in a map leaves it empty.
	DSQs    int
	DSQBase string
	// Constants sets read-only globals (const volatile) before load, as
	// Config.Constants does. Two components, or a component and the
	// Config, setting one global to different values fail Open.
	Constants map[string]any
	// Objects, if set, is a pointer to a struct whose fields, tagged
	// `ebpf:"name"`, are the maps (*ebpf.Map), globals (*ebpf.Variable) and
	// programs (*ebpf.Program) the component uses (the fields of an
	// embedded struct count too): Open checks the object
	// has every one of them (a nil pointer of the struct type suffices),
	// and Binding.Assign fills such a struct after load.
	Objects any
	// Header is the header the object must include for the component,
	// e.g. "scxkit/dsq.bpf.h"; errors about missing objects name it.
	Header string
}

// FirstComponentDSQ is the first DSQ id Open hands out to components.
// Ids below it are the scheduler's own (a scheduler's BPF code may use
// small ids such as 0 for its own queues); ids from it up belong to
// components, each in the range Open allocated to it.
const FirstComponentDSQ uint64 = 1 << 32

// DSQRange is the range of dispatch queue ids allocated to a component:
// First, First+1, ..., First+Count-1.
type DSQRange struct {
	First uint64
	Count int
}

// ID returns the i-th id of the range; it panics if i is out of range,
// like an index into a slice.
func (r DSQRange) ID(i int) uint64 {
	if i < 0 || i >= r.Count {
		panic(fmt.Sprintf("scx: DSQ index %d out of range [0, %d)", i, r.Count))
	}
	return r.First + uint64(i)
}

// Contains reports whether id is in the range.
func (r DSQRange) Contains(id uint64) bool {
	return id >= r.First && id-r.First < uint64(r.Count)
}

// ErrNotBound is wrapped by the errors of a component's Read and Write
// methods called before the component was bound: add it to
// Config.Components (Load binds it), or bind it with NewBinding in tests.
var ErrNotBound = errors.New("component not bound to a loaded scheduler")

// ErrConflict is wrapped by the *ConflictError of components, or a
// component and the Config, that cannot be combined.
var ErrConflict = errors.New("components cannot be combined")

// ConflictError names the two parties of a conflict and what they
// disagree on. A is always a component; B is a component or "Config".
// Exactly one of Flag, Callback and Constant is set.
type ConflictError struct {
	A, B     string
	Flag     OpsFlag // a flag one requires and the other forbids
	Callback string  // a callback both own, e.g. "dispatch"
	Constant string  // a constant both set, to different values
	What     string  // the same in words, e.g. "flag SCX_OPS_ENQ_LAST"
	Why      string  // what each side wants
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%v: %s and %s: %s: %s", ErrConflict, e.A, e.B, e.What, e.Why)
}

func (e *ConflictError) Unwrap() error { return ErrConflict }

// MissingError lists everything a component needs that the object lacks,
// all at once.
type MissingError struct {
	Component string
	Missing   []string // e.g. "map sk_dsq_layout", "callback ops.dispatch"
	Header    string   // the header that provides them, if known
}

func (e *MissingError) Error() string {
	msg := fmt.Sprintf("component %s: the object lacks %s", e.Component, strings.Join(e.Missing, ", "))
	if e.Header != "" {
		msg += fmt.Sprintf(": include %s and use its hooks", e.Header)
	}
	return msg
}

// Unwrap makes a MissingError match ErrInvalid.
func (e *MissingError) Unwrap() error { return ErrInvalid }

// bound is one component of a Spec with what Open worked out for it.
type bound struct {
	c     Component
	needs Needs
	dsqs  DSQRange
}

// compose checks the components of cfg against each other and against
// cfg, allocates their DSQ ids, and returns them with the flags and
// constants the scheduler gets from them.
func compose(cfg *Config) ([]bound, error) {
	var out []bound
	names := map[string]bool{}
	next := FirstComponentDSQ
	for i, c := range cfg.Components {
		if c == nil || (reflect.ValueOf(c).Kind() == reflect.Pointer && reflect.ValueOf(c).IsNil()) {
			return nil, configErr("Components[%d] is nil", i)
		}
		name := c.Name()
		if name == "" || strings.IndexFunc(name, func(r rune) bool {
			return !(r == '_' || ('a' <= r && r <= 'z') || ('0' <= r && r <= '9'))
		}) >= 0 {
			return nil, configErr("Components[%d] (%T): name %q: use lower-case letters, digits and '_'", i, c, name)
		}
		if names[name] {
			return nil, configErr("two components are named %q: a scheduler may hold one of each", name)
		}
		names[name] = true
		n := c.Needs()
		n.Flags = slices.Clone(n.Flags)
		n.Forbids = slices.Clone(n.Forbids)
		n.Constants = maps.Clone(n.Constants)
		for _, f := range slices.Concat(n.Flags, n.Forbids) {
			if !slices.Contains(knownFlags, f) {
				return nil, configErr("component %s: unknown flag %q: known flags are %s", name, string(f), flagList())
			}
		}
		if n.DSQs < 0 {
			return nil, configErr("component %s: Needs.DSQs is negative (%d)", name, n.DSQs)
		}
		if n.DSQs == 0 && n.DSQBase != "" {
			return nil, configErr("component %s: Needs.DSQBase is %q but DSQs is 0: ask for the ids the global numbers", name, n.DSQBase)
		}
		for cname, v := range n.Constants {
			if err := checkFixedSize(v); err != nil {
				return nil, configErr("component %s: Needs.Constants[%q] = %v (%T): %v", name, cname, v, v, err)
			}
		}
		if n.Objects != nil {
			if _, err := objectFields(n.Objects); err != nil {
				return nil, configErr("component %s: Needs.Objects: %v", name, err)
			}
		}
		b := bound{c: c, needs: n}
		if n.DSQs > 0 {
			b.dsqs = DSQRange{First: next, Count: n.DSQs}
			next += uint64(n.DSQs)
		}
		out = append(out, b)
	}

	for i, b := range out {
		for _, req := range b.needs.Requires {
			j := slices.IndexFunc(out, func(o bound) bool { return o.c.Name() == req })
			switch {
			case j < 0:
				return nil, configErr("component %s requires component %s: add it to Config.Components before %s", b.c.Name(), req, b.c.Name())
			case j > i:
				return nil, configErr("component %s requires component %s, which comes after it: put %s first in Config.Components", b.c.Name(), req, req)
			}
		}
	}

	// Pairwise conflicts, each reported with both names.
	for i, a := range out {
		for _, f := range a.needs.Forbids {
			if slices.Contains(cfg.Flags, f) {
				return nil, &ConflictError{A: a.c.Name(), B: "Config", Flag: f, What: "flag " + string(f),
					Why: fmt.Sprintf("%s forbids it and Config.Flags sets it", a.c.Name())}
			}
		}
		for name, v := range a.needs.Constants {
			if cv, ok := cfg.Constants[name]; ok && !reflect.DeepEqual(cv, v) {
				return nil, &ConflictError{A: a.c.Name(), B: "Config", Constant: name, What: "constant " + name,
					Why: fmt.Sprintf("%s sets %v, Config.Constants sets %v", a.c.Name(), v, cv)}
			}
		}
		for _, b := range out[i+1:] {
			if err := conflict(a, b); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// conflict reports what one of a and b requires that the other forbids,
// a callback both own, or a constant both set differently, in that order
// whatever the order of the two.
func conflict(a, b bound) error {
	for _, p := range [][2]bound{{a, b}, {b, a}} {
		x, y := p[0], p[1]
		for _, f := range x.needs.Flags {
			if slices.Contains(y.needs.Forbids, f) {
				return &ConflictError{A: x.c.Name(), B: y.c.Name(), Flag: f, What: "flag " + string(f),
					Why: fmt.Sprintf("%s requires it, %s forbids it", x.c.Name(), y.c.Name())}
			}
		}
	}
	an, bn := a.c.Name(), b.c.Name()
	for _, cb := range a.needs.Owns {
		if slices.Contains(b.needs.Owns, cb) {
			return &ConflictError{A: an, B: bn, Callback: cb, What: "ops." + cb,
				Why: "both decide it alone, and at most one component may own a callback"}
		}
	}
	for name, v := range a.needs.Constants {
		if bv, ok := b.needs.Constants[name]; ok && !reflect.DeepEqual(v, bv) {
			return &ConflictError{A: an, B: bn, Constant: name, What: "constant " + name,
				Why: fmt.Sprintf("%s sets %v, %s sets %v", an, v, bn, bv)}
		}
	}
	return nil
}

// checkNeeds verifies, without a kernel, that the object has what a
// component needs: its callbacks, its DSQ base global and every object of
// Needs.Objects.
func checkNeeds(spec *ebpf.CollectionSpec, b bound) error {
	n := b.needs
	var missing []string
	for _, cb := range slices.Concat(n.Callbacks, n.Owns) {
		if !hasCallback(spec, cb) {
			missing = append(missing, "callback ops."+cb)
		}
	}
	if n.DSQBase != "" {
		if v := spec.Variables[n.DSQBase]; v == nil || !v.Constant() || v.Size() != 8 {
			missing = append(missing, fmt.Sprintf("const volatile u64 %s (DSQ base)", n.DSQBase))
		}
	}
	for name := range n.Constants {
		if v := spec.Variables[name]; v == nil || !v.Constant() {
			missing = append(missing, "const volatile "+name)
		}
	}
	if n.Objects != nil {
		fields, _ := objectFields(n.Objects) // checked by compose
		for _, f := range fields {
			if !f.inSpec(spec) {
				missing = append(missing, f.String())
			}
		}
	}
	missing = dedup(missing)
	if len(missing) > 0 {
		return &MissingError{Component: b.c.Name(), Missing: missing, Header: n.Header}
	}
	return nil
}

// hasCallback reports whether the object implements sched_ext_ops.<cb>.
func hasCallback(spec *ebpf.CollectionSpec, cb string) bool {
	for _, p := range spec.Programs {
		if p.Type == ebpf.StructOps && p.AttachTo == opsType+":"+cb {
			return true
		}
	}
	return false
}

// objectField is one `ebpf:"name"` field of an Objects struct.
type objectField struct {
	kind  string // "map", "variable" or "program"
	name  string
	index []int // field path, through embedded structs
}

func (f objectField) String() string { return f.kind + " " + f.name }

func (f objectField) inSpec(spec *ebpf.CollectionSpec) bool {
	switch f.kind {
	case "map":
		return spec.Maps[f.name] != nil
	case "variable":
		return spec.Variables[f.name] != nil
	default:
		return spec.Programs[f.name] != nil
	}
}

var (
	typeMap      = reflect.TypeFor[*ebpf.Map]()
	typeVariable = reflect.TypeFor[*ebpf.Variable]()
	typeProgram  = reflect.TypeFor[*ebpf.Program]()
)

// objectFields reads the tagged fields of *struct dst, those of its
// embedded structs included (a component whose mode needs more objects
// embeds the common struct in a larger one).
func objectFields(dst any) ([]objectField, error) {
	t := reflect.TypeOf(dst)
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("%T is not a pointer to a struct", dst)
	}
	out, err := appendObjectFields(nil, t.Elem(), nil)
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%T has no field tagged ebpf:\"name\"", dst)
	}
	return out, nil
}

// appendObjectFields appends the tagged fields of struct type t, at field
// path at, to out.
func appendObjectFields(out []objectField, t reflect.Type, at []int) ([]objectField, error) {
	for i := range t.NumField() {
		sf := t.Field(i)
		index := append(slices.Clip(at), i)
		name, ok := sf.Tag.Lookup("ebpf")
		if !ok {
			if sf.Anonymous && sf.Type.Kind() == reflect.Struct {
				var err error
				if out, err = appendObjectFields(out, sf.Type, index); err != nil {
					return nil, err
				}
			}
			continue
		}
		f := objectField{name: name, index: index}
		switch sf.Type {
		case typeMap:
			f.kind = "map"
		case typeVariable:
			f.kind = "variable"
		case typeProgram:
			f.kind = "program"
		default:
			return nil, fmt.Errorf("field %s (%s) tagged ebpf:%q: want *ebpf.Map, *ebpf.Variable or *ebpf.Program", sf.Name, sf.Type, name)
		}
		if !sf.IsExported() {
			return nil, fmt.Errorf("field %s tagged ebpf:%q is not exported", sf.Name, name)
		}
		out = append(out, f)
	}
	return out, nil
}

// Binding is what a component gets to connect to a loaded scheduler: its
// maps, globals and programs, its DSQ ids, the kernel and a logger.
type Binding struct {
	name     string
	coll     *ebpf.Collection
	kernel   *Kernel
	dsqs     DSQRange
	header   string
	log      *slog.Logger
	requires map[string]Component // the components of Needs.Requires
}

// NewBinding returns a Binding to coll for the component named name, for
// binding a component outside a scheduler: tests that load its BPF code
// in a SEC("syscall") selftest object, or tools that read a pinned
// scheduler's maps. Load builds the Bindings of a scheduler's components
// itself. kernel may be nil when the component does not need it.
func NewBinding(name string, coll *ebpf.Collection, kernel *Kernel, dsqs DSQRange) *Binding {
	return &Binding{name: name, coll: coll, kernel: kernel, dsqs: dsqs, log: slog.Default().With("component", name)}
}

// Collection returns the scheduler's loaded maps, programs and globals.
func (b *Binding) Collection() *ebpf.Collection { return b.coll }

// Kernel returns what Load found out about the kernel; nil for a Binding
// made by NewBinding without one.
func (b *Binding) Kernel() *Kernel { return b.kernel }

// DSQs returns the DSQ ids Open allocated to the component.
func (b *Binding) DSQs() DSQRange { return b.dsqs }

// Logger returns the scheduler's logger, with the component's name.
func (b *Binding) Logger() *slog.Logger { return b.log }

// Required returns the component named name, if it is one of those the
// component listed in Needs.Requires: bound before it, so that it can
// build on what they decided (lb reads the dsq layout it balances).
// A component may type-assert the result to the package's type.
func (b *Binding) Required(name string) (Component, bool) {
	c, ok := b.requires[name]
	return c, ok
}

// Assign fills the fields of *dst tagged `ebpf:"name"` (*ebpf.Map,
// *ebpf.Variable or *ebpf.Program) from the loaded scheduler. If any is
// missing, it assigns nothing and returns a *MissingError naming all of
// them. The objects stay owned by the scheduler: do not close them.
func (b *Binding) Assign(dst any) error {
	fields, err := objectFields(dst)
	if err != nil {
		return fmt.Errorf("component %s: %w", b.name, err)
	}
	vals := make([]reflect.Value, len(fields))
	var missing []string
	for i, f := range fields {
		var v any
		switch f.kind {
		case "map":
			if m := b.coll.Maps[f.name]; m != nil {
				v = m
			}
		case "variable":
			if x := b.coll.Variables[f.name]; x != nil {
				v = x
			}
		default:
			if p := b.coll.Programs[f.name]; p != nil {
				v = p
			}
		}
		if v == nil {
			missing = append(missing, f.String())
			continue
		}
		vals[i] = reflect.ValueOf(v)
	}
	if len(missing) > 0 {
		return &MissingError{Component: b.name, Missing: missing, Header: b.header}
	}
	s := reflect.ValueOf(dst).Elem()
	for i, f := range fields {
		s.FieldByIndex(f.index).Set(vals[i])
	}
	return nil
}

// dedup drops repeated strings, keeping the first of each in order.
func dedup(list []string) []string {
	seen := make(map[string]bool, len(list))
	out := list[:0]
	for _, s := range list {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
