package cpuset

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"

	"github.com/scxkit/scxkit/topology"
)

// ErrInvalid is wrapped by the errors of Read, Write and Capacity: a
// variable that is not a struct sk_cpuset, or a mask that does not fit.
var ErrInvalid = errors.New("invalid CPU set")

// structName is the C type a set variable must have.
const structName = "sk_cpuset"

// Capacity returns how many CPU ids the struct sk_cpuset global v holds
// (SK_CPUSET_MAX_CPUS of the object's cpuset.bpf.h): CPUs 0 to
// Capacity-1. The error wraps ErrInvalid when v is not such a global.
func Capacity(v *ebpf.Variable) (int, error) {
	words, err := check(v)
	if err != nil {
		return 0, err
	}
	return 64 * words, nil
}

// Read returns the CPUs of the struct sk_cpuset global v.
func Read(v *ebpf.Variable) (topology.Cpumask, error) {
	words, err := check(v)
	if err != nil {
		return topology.Cpumask{}, err
	}
	buf := make([]uint64, words)
	if err := v.Get(buf); err != nil {
		return topology.Cpumask{}, fmt.Errorf("cpuset: read %s: %w", name(v), err)
	}
	return topology.MaskFromWords(buf), nil
}

// Write replaces the CPUs of the struct sk_cpuset global v with m. A CPU
// of m at or above the set's capacity fails with an error wrapping
// ErrInvalid, and nothing is written; so does a read-only variable (a
// const volatile global, which is frozen once loaded).
func Write(v *ebpf.Variable, m topology.Cpumask) error {
	words, err := check(v)
	if err != nil {
		return err
	}
	if v.ReadOnly() {
		return fmt.Errorf("cpuset: write %s: %w: the variable is read-only (const): declare the set without const, in .bss or .data", name(v), ErrInvalid)
	}
	if hi := m.Max(); hi >= 64*words {
		return fmt.Errorf("cpuset: write %s: %w: CPU %d is beyond the set's %d CPUs (0-%d): raise SK_TOPO_MAX_CPUS in scxkit/topology.h and rebuild, or leave the CPU out", name(v), ErrInvalid, hi, 64*words, 64*words-1)
	}
	buf := make([]uint64, words)
	copy(buf, m.Words())
	if err := v.Set(buf); err != nil {
		return fmt.Errorf("cpuset: write %s: %w", name(v), err)
	}
	return nil
}

// check verifies that v is a struct sk_cpuset, an array of u64 words, and
// returns the number of words.
func check(v *ebpf.Variable) (int, error) {
	if v == nil {
		return 0, fmt.Errorf("cpuset: %w: nil variable: is the global in the object (a name missing from Collection.Variables is nil)?", ErrInvalid)
	}
	vname := "name"
	if bv := v.Type(); bv != nil && bv.Name != "" {
		vname = bv.Name
	}
	fix := fmt.Sprintf("declare it as `struct sk_cpuset %s SEC(\".bss\");` with scxkit/cpuset.bpf.h", vname)
	var typ btf.Type
	if bv := v.Type(); bv != nil {
		typ = btf.UnderlyingType(bv.Type)
	}
	st, ok := typ.(*btf.Struct)
	if !ok || st.Name != structName {
		return 0, fmt.Errorf("cpuset: %s is %s, not struct %s: %w: %s", name(v), typeName(typ), structName, ErrInvalid, fix)
	}
	if len(st.Members) != 1 || st.Members[0].Name != "words" {
		return 0, fmt.Errorf("cpuset: %s: struct %s has other members than words: %w: rebuild against this version of scxkit/cpuset.bpf.h", name(v), structName, ErrInvalid)
	}
	arr, ok := btf.UnderlyingType(st.Members[0].Type).(*btf.Array)
	if !ok {
		return 0, fmt.Errorf("cpuset: %s: words is %s, not an array of u64: %w: rebuild against this version of scxkit/cpuset.bpf.h", name(v), typeName(st.Members[0].Type), ErrInvalid)
	}
	if elem, ok := btf.UnderlyingType(arr.Type).(*btf.Int); !ok || elem.Size != 8 || arr.Nelems == 0 {
		return 0, fmt.Errorf("cpuset: %s: words is not an array of u64: %w: rebuild against this version of scxkit/cpuset.bpf.h", name(v), ErrInvalid)
	}
	if v.Size() != 8*arr.Nelems {
		return 0, fmt.Errorf("cpuset: %s is %d bytes, struct %s %d: %w", name(v), v.Size(), structName, 8*arr.Nelems, ErrInvalid)
	}
	return int(arr.Nelems), nil
}

// name is the variable's name for errors.
func name(v *ebpf.Variable) string {
	if v != nil && v.Type() != nil && v.Type().Name != "" {
		return fmt.Sprintf("variable %q", v.Type().Name)
	}
	return "the variable"
}

// typeName describes a BTF type for errors: "struct foo", "u32", ...
func typeName(t btf.Type) string {
	switch t := t.(type) {
	case nil:
		return "of unknown type"
	case *btf.Struct:
		return "struct " + t.Name
	case *btf.Array:
		return fmt.Sprintf("an array of %d", t.Nelems)
	case *btf.Int:
		return fmt.Sprintf("a %d-byte integer", t.Size)
	default:
		if n := t.TypeName(); n != "" {
			return n
		}
		return fmt.Sprintf("a %T", t)
	}
}
