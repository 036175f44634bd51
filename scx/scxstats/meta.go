package scxstats

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
)

// Scalar type names a Kind can carry, as the Rust crate writes them. Rust
// signed integers of any width map to TypeI64, unsigned ones to TypeU64,
// f32 and f64 to TypeFloat, String and &str to TypeString.
const (
	TypeI64    = "i64"
	TypeU64    = "u64"
	TypeFloat  = "float"
	TypeString = "string"
)

// Kind is the type of one stats value: a scalar (Type) or a nested stats
// struct (Struct, the Name of another Meta). Exactly one of the two is set.
//
// On the wire a scalar is a bare string ("u64") and a struct reference is
// an object ({"struct":"DomainStats"}), which is how serde encodes the Rust
// crate's StatsKind enum.
type Kind struct {
	// Type is TypeI64, TypeU64, TypeFloat or TypeString. A client keeps
	// whatever string a server sent, so newer scalar types decode too;
	// NewServer accepts only the four known ones.
	Type string
	// Struct names the Meta describing a nested struct value.
	Struct string
}

// Scalar kinds, for building metas.
var (
	KindI64    = Kind{Type: TypeI64}
	KindU64    = Kind{Type: TypeU64}
	KindFloat  = Kind{Type: TypeFloat}
	KindString = Kind{Type: TypeString}
)

// StructKind returns the Kind of a value described by the Meta called name.
func StructKind(name string) Kind { return Kind{Struct: name} }

// IsZero reports whether k is unset; it lets Field omit unset shapes.
func (k Kind) IsZero() bool { return k.Type == "" && k.Struct == "" }

// String formats k as the Rust crate's describe output does: the scalar
// type, or the struct name.
func (k Kind) String() string {
	if k.Struct != "" {
		return k.Struct
	}
	return k.Type
}

// MarshalJSON encodes k as "type" or {"struct":"Name"}.
func (k Kind) MarshalJSON() ([]byte, error) {
	switch {
	case k.Type != "" && k.Struct != "":
		return nil, fmt.Errorf("scxstats: kind has both type %q and struct %q: %w", k.Type, k.Struct, ErrInvalid)
	case k.Struct != "":
		return marshal(struct {
			Struct string `json:"struct"`
		}{k.Struct})
	case k.Type != "":
		return marshal(k.Type)
	default:
		return nil, fmt.Errorf("scxstats: empty kind: %w", ErrInvalid)
	}
}

// UnmarshalJSON decodes "type" or {"struct":"Name"}.
func (k *Kind) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if s == "" {
			return fmt.Errorf("scxstats: empty kind: %w", ErrInvalid)
		}
		*k = Kind{Type: s}
		return nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil || obj == nil {
		return fmt.Errorf("scxstats: kind %s is neither a type name nor {\"struct\":NAME}: %w", b, ErrInvalid)
	}
	raw, ok := obj["struct"]
	var name string
	if !ok || len(obj) != 1 || json.Unmarshal(raw, &name) != nil || name == "" {
		return fmt.Errorf("scxstats: kind %s is neither a type name nor {\"struct\":NAME}: %w", b, ErrInvalid)
	}
	*k = Kind{Struct: name}
	return nil
}

// Dict is the shape of a map field: keys of kind Key (TypeI64, TypeU64 or
// TypeString), values of kind Datum. JSON objects only have string keys,
// so integer keys travel as decimal strings ("0", "3").
type Dict struct {
	// Datum is the kind of the values.
	Datum Kind `json:"datum"`
	// Key is the kind of the keys.
	Key Kind `json:"key"`
}

// Field describes one field of a stats struct. Exactly one of Array,
// Datum and Dict is set: a single value, a list, or a map.
//
// The Go field order is the JSON key order, alphabetical as the Rust server
// sends it (it routes every reply through serde_json::Value, whose objects
// are sorted maps).
type Field struct {
	// Array is the element kind of a list field (Rust Vec<T>).
	Array Kind `json:"array,omitzero"`
	// Datum is the kind of a single-value field.
	Datum Kind `json:"datum,omitzero"`
	// Desc is a human-readable description.
	Desc string `json:"desc,omitempty"`
	// Dict is the shape of a map field (Rust BTreeMap<K, V>).
	Dict *Dict `json:"dict,omitempty"`
	// User holds free-form attributes whose names start with "_", e.g.
	// "_om_skip": "true" to keep the field out of OpenMetrics exports.
	User map[string]string `json:"user,omitempty"`
}

// String formats the field's shape as the Rust crate's describe output
// does: "u64", "[u64]" or "{u64:DomainStats}".
func (f Field) String() string {
	switch {
	case f.Dict != nil:
		return "{" + f.Dict.Key.String() + ":" + f.Dict.Datum.String() + "}"
	case !f.Array.IsZero():
		return "[" + f.Array.String() + "]"
	default:
		return f.Datum.String()
	}
}

// Meta describes one stats struct: its fields and their types, so generic
// clients (scxtop, OpenMetrics exporters) can interpret stats replies
// without knowing the scheduler. The "stats_meta" request returns a JSON
// object mapping each Meta's Name to the Meta.
type Meta struct {
	// Desc is a human-readable description.
	Desc string `json:"desc,omitempty"`
	// Fields maps field names to their descriptions. It is always sent,
	// as {} when empty.
	Fields map[string]Field `json:"fields"`
	// Name is the struct's name, the key it is listed under and the name
	// StructKind references use.
	Name string `json:"name"`
	// Top is "true" on the top-level struct, the one a plain "stats"
	// request returns; empty on the others. It is a string, not a bool,
	// because that is what Rust clients decode.
	Top string `json:"top,omitempty"`
	// User holds free-form attributes whose names start with "_", e.g.
	// "_om_prefix" and "_om_label" read by OpenMetrics exporters.
	User map[string]string `json:"user,omitempty"`
}

// AttrType is the user attribute of a Field that says how its number
// behaves over time, as OpenMetrics types it: "counter" (a total that only
// grows, whose rate is what moves) or "gauge" (a level). scxkit's servers
// (package runner) set it on every stat; the Rust crate's do not, so a
// client takes a field without it as of unknown type.
const AttrType = "_om_type"

// TopValue is the value of Meta.Top on the top-level struct.
const TopValue = "true"

// MarshalJSON encodes m, sending nil Fields as {} since Rust clients
// reject null there.
func (m Meta) MarshalJSON() ([]byte, error) {
	type plain Meta // plain has no MarshalJSON method
	if m.Fields == nil {
		m.Fields = map[string]Field{}
	}
	return marshal(plain(m))
}

// validateMetas checks what the Rust server checks when it starts (every
// nested struct is described, no struct contains itself, dict keys are
// scalar) plus that every kind is well formed, names are unique and at most
// one struct is the top.
func validateMetas(metas []Meta) (map[string]Meta, error) {
	byName := make(map[string]Meta, len(metas))
	var top string
	for _, m := range metas {
		if m.Name == "" {
			return nil, fmt.Errorf("scxstats: meta with empty name: %w", ErrInvalid)
		}
		if _, dup := byName[m.Name]; dup {
			return nil, fmt.Errorf("scxstats: two metas named %q: %w", m.Name, ErrInvalid)
		}
		if m.Top != "" {
			if top != "" {
				return nil, fmt.Errorf("scxstats: metas %q and %q are both top: %w", top, m.Name, ErrInvalid)
			}
			top = m.Name
		}
		byName[m.Name] = m
	}
	for _, m := range metas {
		for _, fname := range sortedKeys(m.Fields) {
			if err := validateField(m.Fields[fname], byName); err != nil {
				return nil, fmt.Errorf("scxstats: field %s.%s: %w", m.Name, fname, err)
			}
		}
	}
	// Depth-first walk over struct references to find cycles.
	const (
		unseen = iota
		inProgress
		done
	)
	state := make(map[string]int, len(byName))
	var visit func(name string, path []string) error
	visit = func(name string, path []string) error {
		switch state[name] {
		case inProgress:
			return fmt.Errorf("scxstats: meta %q contains itself (via %v): %w", name, append(path, name), ErrInvalid)
		case done:
			return nil
		}
		state[name] = inProgress
		m := byName[name]
		for _, fname := range sortedKeys(m.Fields) {
			if ref := structRef(m.Fields[fname]); ref != "" {
				if err := visit(ref, append(path, name)); err != nil {
					return err
				}
			}
		}
		state[name] = done
		return nil
	}
	for _, m := range metas {
		if err := visit(m.Name, nil); err != nil {
			return nil, err
		}
	}
	return byName, nil
}

// validateField checks that f has exactly one well-formed shape.
func validateField(f Field, metas map[string]Meta) error {
	n := 0
	var kinds []Kind
	if !f.Datum.IsZero() {
		n++
		kinds = append(kinds, f.Datum)
	}
	if !f.Array.IsZero() {
		n++
		kinds = append(kinds, f.Array)
	}
	if f.Dict != nil {
		n++
		switch f.Dict.Key.Type {
		case TypeI64, TypeU64, TypeString:
		default:
			return fmt.Errorf("dict key %q is not i64, u64 or string: %w", f.Dict.Key, ErrInvalid)
		}
		if f.Dict.Key.Struct != "" {
			return fmt.Errorf("dict key is a struct: %w", ErrInvalid)
		}
		kinds = append(kinds, f.Dict.Datum)
	}
	if n != 1 {
		return fmt.Errorf("%d of datum, array and dict set, want exactly one: %w", n, ErrInvalid)
	}
	for _, k := range kinds {
		switch {
		case k.Type != "" && k.Struct != "":
			return fmt.Errorf("kind has both type %q and struct %q: %w", k.Type, k.Struct, ErrInvalid)
		case k.Struct != "":
			if _, ok := metas[k.Struct]; !ok {
				return fmt.Errorf("struct %q has no meta: %w", k.Struct, ErrInvalid)
			}
		case k.Type == TypeI64, k.Type == TypeU64, k.Type == TypeFloat, k.Type == TypeString:
		case k.Type == "":
			return fmt.Errorf("empty kind: %w", ErrInvalid)
		default:
			return fmt.Errorf("unknown type %q, want i64, u64, float or string: %w", k.Type, ErrInvalid)
		}
	}
	return nil
}

// structRef returns the name of the struct f's values are, if any.
func structRef(f Field) string {
	switch {
	case f.Datum.Struct != "":
		return f.Datum.Struct
	case f.Array.Struct != "":
		return f.Array.Struct
	case f.Dict != nil:
		return f.Dict.Datum.Struct
	}
	return ""
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// marshal is json.Marshal without HTML escaping ("<" stays "<"), matching
// serde_json's output byte for byte in more cases.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
