package scx

import (
	"slices"
	"testing"

	"github.com/cilium/ebpf"
)

// TestObjectFieldsEmbedded checks that the tagged fields of an embedded
// struct count as the outer struct's own, at their field path, so that a
// component can extend its common objects for one mode (smt's filter on
// dsq's queues embeds its owning mode's objects).
func TestObjectFieldsEmbedded(t *testing.T) {
	type common struct {
		Stats *ebpf.Map      `ebpf:"stats"`
		Knob  *ebpf.Variable `ebpf:"knob"`
	}
	type extended struct {
		Name string // untagged, not embedded: ignored
		common
		Extra *ebpf.Variable `ebpf:"extra"`
	}
	fields, err := objectFields(&extended{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range fields {
		got = append(got, f.String())
	}
	if want := []string{"map stats", "variable knob", "variable extra"}; !slices.Equal(got, want) {
		t.Errorf("fields %q, want %q", got, want)
	}
	if !slices.Equal(fields[1].index, []int{1, 1}) || !slices.Equal(fields[2].index, []int{2}) {
		t.Errorf("paths %v and %v, want [1 1] and [2]", fields[1].index, fields[2].index)
	}
	type bad struct {
		common
		Wrong int `ebpf:"wrong"`
	}
	if _, err := objectFields(&bad{}); err == nil {
		t.Error("a tagged int field was accepted")
	}
}
