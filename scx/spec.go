package scx

import (
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
)

// opsType is the kernel struct that a sched_ext scheduler fills in.
const opsType = "sched_ext_ops"

// Names of the globals and maps that the headers in bpf/include/scxkit
// define and this package relies on.
const (
	varKfuncGen = "scxkit_kfunc_gen" // compat.bpf.h
	varExitInfo = "sk_exit_info"     // exit.bpf.h
	varSliceNs  = "sk_slice_ns"      // scx.bpf.h
	mapStats    = "sk_stats"         // stats.bpf.h
)

// Objects are the two compilations of one scheduler's BPF source, one per
// kfunc generation (see KfuncGen and bpf/include/scxkit/compat.bpf.h).
// `scxkit gen` generates both from one source, with the flags scxkit's
// headers need and the headers found through the go command:
//
//	//go:generate go tool scxkit gen simple.bpf.c
//
// (after go get -tool github.com/scxkit/scxkit/cmd/scxkit; or go run
// github.com/scxkit/scxkit/cmd/scxkit gen), and pass the generated
// loaders: Objects{Base: loadSimple, V2: loadSimpleV2}. The source must
// start with //go:build ignore. By hand with bpf2go, the same is two lines
// with -cc clang-19 -strip llvm-strip-19 -tags linux -target bpfel
// -no-global-types, the C flags -mcpu=v3 -Wno-missing-declarations and
// -I of scxkit's bpf/include, and -DSCXKIT_KFUNC_V2 for the second.
type Objects struct {
	Base func() (*ebpf.CollectionSpec, error) // compiled without SCXKIT_KFUNC_V2
	V2   func() (*ebpf.CollectionSpec, error) // compiled with -DSCXKIT_KFUNC_V2
}

func (o Objects) load(gen KfuncGen) (*ebpf.CollectionSpec, error) {
	f := o.Base
	if gen == KfuncV2 {
		f = o.V2
	}
	if f == nil {
		return nil, fmt.Errorf("no object for kfunc generation %s: set Objects.%s", gen, map[KfuncGen]string{KfuncBase: "Base", KfuncV2: "V2"}[gen])
	}
	spec, err := f()
	if err != nil {
		return nil, fmt.Errorf("read %s object: %w", gen, err)
	}
	return spec, nil
}

// Spec is a scheduler that has been opened and configured but not loaded:
// both objects parsed and checked, the Config validated. Opening needs no
// sched_ext kernel, so it catches mistakes in objects and options early.
type Spec struct {
	cfg   Config
	specs map[KfuncGen]*ebpf.CollectionSpec
	comps []bound
	// flags and constants are Config's together with the components'.
	flags     []OpsFlag
	constants map[string]any
}

// Open parses both objects and validates cfg against them: each object must
// hold exactly one struct sched_ext_ops, include scxkit's headers, have
// been compiled for the generation it is passed as, and declare every
// constant that cfg sets.
//
// Open also composes cfg.Components: it refuses components that cannot be
// combined with a *ConflictError naming both (a flag one requires and the
// other forbids, a callback both own, a constant both set differently),
// allocates each component's DSQ ids, and checks that the object has
// every callback, global, map and program each component needs, failing
// with a *MissingError that lists all that is missing.
func Open(objs Objects, cfg Config) (*Spec, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Constants = maps.Clone(cfg.Constants)
	cfg.Flags = slices.Clone(cfg.Flags)
	cfg.Components = slices.Clone(cfg.Components)
	cfg.OmitCallbacks = slices.Clone(cfg.OmitCallbacks)
	comps, err := compose(&cfg)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", cfg.OpsName(), err)
	}
	if err := checkOmitted(comps, cfg.OmitCallbacks); err != nil {
		return nil, fmt.Errorf("open %s: %w", cfg.OpsName(), err)
	}
	s := &Spec{cfg: cfg, specs: make(map[KfuncGen]*ebpf.CollectionSpec), comps: comps,
		flags: slices.Clone(cfg.Flags), constants: maps.Clone(cfg.Constants)}
	if s.constants == nil {
		s.constants = map[string]any{}
	}
	for _, b := range comps {
		for _, f := range b.needs.Flags {
			if !slices.Contains(s.flags, f) {
				s.flags = append(s.flags, f)
			}
		}
		maps.Copy(s.constants, b.needs.Constants)
		if b.needs.DSQBase != "" {
			s.constants[b.needs.DSQBase] = b.dsqs.First
		}
	}
	for _, gen := range []KfuncGen{KfuncBase, KfuncV2} {
		spec, err := objs.load(gen)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", cfg.Name, err)
		}
		if err := checkObject(spec, gen, &cfg); err != nil {
			return nil, fmt.Errorf("open %s: %s object: %w", cfg.Name, gen, err)
		}
		if err := omitCallbacks(spec, cfg.OmitCallbacks); err != nil {
			return nil, fmt.Errorf("open %s: %s object: %w", cfg.Name, gen, err)
		}
		for _, b := range comps {
			if err := checkNeeds(spec, b); err != nil {
				return nil, fmt.Errorf("open %s: %s object: %w", cfg.Name, gen, err)
			}
			for name, value := range b.needs.Constants {
				if err := setConstant(spec.Variables[name], value); err != nil {
					return nil, fmt.Errorf("open %s: %s object: %w: component %s: constant %s = %v (%T): %v", cfg.Name, gen, ErrInvalid, b.c.Name(), name, value, value, err)
				}
			}
		}
		s.specs[gen] = spec
	}
	return s, nil
}

// DSQs returns the DSQ ids Open allocated to the named component, and
// whether it has any.
func (s *Spec) DSQs(component string) (DSQRange, bool) {
	for _, b := range s.comps {
		if b.c.Name() == component && b.dsqs.Count > 0 {
			return b.dsqs, true
		}
	}
	return DSQRange{}, false
}

// Components returns the components the Spec was opened with, in order.
func (s *Spec) Components() []Component { return slices.Clone(s.cfg.Components) }

// Config returns the configuration the Spec was opened with.
func (s *Spec) Config() Config { return s.cfg }

// setConstant checks that value fits the global vs, on a copy: a value
// of the wrong size gets an error that gives both sizes.
func setConstant(vs *ebpf.VariableSpec, value any) error {
	if n := binary.Size(value); n >= 0 && uint32(n) != vs.Size() {
		return fmt.Errorf("%T is %d bytes, the global %s %d: use a %d-byte type (the C type's)", value, n, vs.Name, vs.Size(), vs.Size())
	}
	return vs.Copy().Set(value)
}

// checkOmitted refuses to omit a callback that a component needs.
func checkOmitted(comps []bound, omit []string) error {
	for _, b := range comps {
		for _, cb := range slices.Concat(b.needs.Callbacks, b.needs.Owns) {
			if slices.Contains(omit, cb) {
				return fmt.Errorf("%w: component %s needs ops.%s, which Config.OmitCallbacks leaves out: omit it only where the scheduler runs without %s",
					ErrInvalid, b.c.Name(), cb, b.c.Name())
			}
		}
	}
	return nil
}

// omitCallbacks deletes the programs of the omitted callbacks from spec,
// which leaves their sched_ext_ops members empty.
func omitCallbacks(spec *ebpf.CollectionSpec, omit []string) error {
	for _, cb := range omit {
		found := false
		for name, p := range spec.Programs {
			if p.Type == ebpf.StructOps && p.AttachTo == opsType+":"+cb {
				delete(spec.Programs, name)
				found = true
			}
		}
		if !found {
			return fmt.Errorf("%w: Config.OmitCallbacks names ops.%s, which the object does not implement: remove it", ErrInvalid, cb)
		}
	}
	return nil
}

// checkObject verifies what Load relies on, without a kernel.
func checkObject(spec *ebpf.CollectionSpec, gen KfuncGen, cfg *Config) error {
	if _, err := opsMap(spec); err != nil {
		return err
	}
	v := spec.Variables[varKfuncGen]
	if v == nil {
		return fmt.Errorf("no %s variable: include scxkit/scx.bpf.h", varKfuncGen)
	}
	var got uint32
	if err := v.Get(&got); err != nil {
		return fmt.Errorf("read %s: %w", varKfuncGen, err)
	}
	if KfuncGen(got) != gen {
		return fmt.Errorf("object was compiled for kfunc generation %s, not %s: compile the V2 object with -DSCXKIT_KFUNC_V2 and the Base one without", KfuncGen(got), gen)
	}
	if !slices.ContainsFunc(slices.Collect(maps.Values(spec.Programs)), func(p *ebpf.ProgramSpec) bool {
		return p.Type == ebpf.StructOps && p.AttachTo == opsType+":exit"
	}) {
		return fmt.Errorf("no ops.exit callback: define one that calls sk_exit_record(ei), or the loader cannot tell why the scheduler stopped")
	}
	if spec.Variables[varExitInfo] == nil {
		return fmt.Errorf("no %s variable: include scxkit/scx.bpf.h", varExitInfo)
	}
	if _, err := newExitLayout(spec.Variables[varExitInfo].Type.Type); err != nil {
		return err
	}
	for name, value := range cfg.Constants {
		vs := spec.Variables[name]
		if vs == nil {
			return fmt.Errorf("%w: Constants[%q]: the object has no global of that name (known: %s)", ErrInvalid, name, strings.Join(constantNames(spec), ", "))
		}
		if !vs.Constant() {
			return fmt.Errorf("%w: Constants[%q]: the global is not const volatile; set it after Load through Collection().Variables", ErrInvalid, name)
		}
		if err := setConstant(vs, value); err != nil {
			return fmt.Errorf("%w: Constants[%q] = %v (%T): %v", ErrInvalid, name, value, value, err)
		}
	}
	if m := spec.Maps[mapStats]; m != nil {
		if _, _, err := counterDescs(m.Value); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
	}
	if v := spec.Variables[varGauges]; v != nil {
		if _, err := gaugeDescs(v.Type.Type); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
	}
	if cfg.Slice > 0 && spec.Variables[varSliceNs] == nil {
		return fmt.Errorf("%w: Slice is set but the object has no %s: include scxkit/scx.bpf.h", ErrInvalid, varSliceNs)
	}
	return nil
}

// opsMap returns the object's one struct_ops map of type sched_ext_ops.
func opsMap(spec *ebpf.CollectionSpec) (*ebpf.MapSpec, error) {
	var found []*ebpf.MapSpec
	for _, m := range spec.Maps {
		if m.Type != ebpf.StructOpsMap {
			continue
		}
		if st, ok := btf.As[*btf.Struct](m.Value); ok && st.Name == opsType {
			found = append(found, m)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("no struct %s in SEC(\".struct_ops.link\"): define one with SK_SCHEDULER", opsType)
	case 1:
		return found[0], nil
	default:
		names := make([]string, len(found))
		for i, m := range found {
			names[i] = m.Name
		}
		slices.Sort(names)
		return nil, fmt.Errorf("%d struct %s maps (%s): an object may hold only one", len(found), opsType, strings.Join(names, ", "))
	}
}

func constantNames(spec *ebpf.CollectionSpec) []string {
	var names []string
	for name, v := range spec.Variables {
		if v.Constant() && !strings.HasPrefix(name, "scxkit_") && !strings.HasPrefix(name, "sk_") {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	if len(names) == 0 {
		return []string{"none"}
	}
	return names
}
