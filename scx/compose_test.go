package scx_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/scxkit/scxkit/scx"
	"github.com/scxkit/scxkit/scx/internal/attachtest"
)

// part is a component that only declares needs: Open's checks need no
// more.
type part struct {
	name  string
	needs scx.Needs
}

func (p *part) Name() string            { return p.name }
func (p *part) Needs() scx.Needs        { return p.needs }
func (p *part) Bind(*scx.Binding) error { return nil }

// TestOpenComposes checks what Open refuses when components are combined,
// against compose.bpf.c, without a kernel: every refusal names both
// parties and what they disagree on.
func TestOpenComposes(t *testing.T) {
	type objs struct {
		Queued *ebpf.Map      `ebpf:"tally_queued"`
		Bound  *ebpf.Variable `ebpf:"tally_bound"`
	}
	type missingObjs struct {
		Queued *ebpf.Map      `ebpf:"tally_queued"`
		Nope   *ebpf.Map      `ebpf:"no_such_map"`
		NoVar  *ebpf.Variable `ebpf:"no_such_global"`
		NoProg *ebpf.Program  `ebpf:"no_such_prog"`
	}
	enqLast := scx.Needs{Flags: []scx.OpsFlag{scx.EnqLast}}
	noEnqLast := scx.Needs{Forbids: []scx.OpsFlag{scx.EnqLast}}
	for _, tt := range []struct {
		name     string
		cfg      scx.Config
		conflict [2]string // the two parties of a *ConflictError
		want     string    // in the error; "" for success
	}{
		{name: "compatible", cfg: scx.Config{Components: []scx.Component{
			&part{"a", scx.Needs{Flags: []scx.OpsFlag{scx.EnqLast}, Owns: []string{"dispatch"}, Objects: (*objs)(nil)}},
			&part{"b", scx.Needs{Callbacks: []string{"enqueue", "dispatch"}, Constants: map[string]any{"tally_nr": uint32(2)}}},
			&part{"c", scx.Needs{DSQs: 2, DSQBase: "tally_dsq_base"}},
		}}},
		{name: "flag required and forbidden", cfg: scx.Config{Components: []scx.Component{
			&part{"smtlike", enqLast}, &part{"preemptlike", noEnqLast}}},
			conflict: [2]string{"smtlike", "preemptlike"}, want: "flag SCX_OPS_ENQ_LAST: smtlike requires it, preemptlike forbids it"},
		{name: "flag forbidden, required later", cfg: scx.Config{Components: []scx.Component{
			&part{"preemptlike", noEnqLast}, &part{"smtlike", enqLast}}},
			conflict: [2]string{"smtlike", "preemptlike"}, want: "smtlike requires it, preemptlike forbids it"},
		{name: "flag forbidden by config", cfg: scx.Config{Flags: []scx.OpsFlag{scx.EnqLast}, Components: []scx.Component{
			&part{"preemptlike", noEnqLast}}},
			conflict: [2]string{"preemptlike", "Config"}, want: "Config.Flags sets it"},
		{name: "callback owned twice", cfg: scx.Config{Components: []scx.Component{
			&part{"a", scx.Needs{Owns: []string{"dispatch"}}}, &part{"b", scx.Needs{Owns: []string{"enqueue", "dispatch"}}}}},
			conflict: [2]string{"a", "b"}, want: "ops.dispatch: both decide it alone"},
		{name: "constant set twice", cfg: scx.Config{Components: []scx.Component{
			&part{"a", scx.Needs{Constants: map[string]any{"tally_nr": uint32(1)}}},
			&part{"b", scx.Needs{Constants: map[string]any{"tally_nr": uint32(2)}}}}},
			conflict: [2]string{"a", "b"}, want: "constant tally_nr: a sets 1, b sets 2"},
		{name: "constant set by config", cfg: scx.Config{Constants: map[string]any{"tally_nr": uint32(3)}, Components: []scx.Component{
			&part{"a", scx.Needs{Constants: map[string]any{"tally_nr": uint32(1)}}}}},
			conflict: [2]string{"a", "Config"}, want: "Config.Constants sets 3"},
		{name: "same constant, same value", cfg: scx.Config{Constants: map[string]any{"tally_nr": uint32(1)}, Components: []scx.Component{
			&part{"a", scx.Needs{Constants: map[string]any{"tally_nr": uint32(1)}}},
			&part{"b", scx.Needs{Constants: map[string]any{"tally_nr": uint32(1)}}}}}},
		{name: "everything missing at once", cfg: scx.Config{Components: []scx.Component{
			&part{"a", scx.Needs{Callbacks: []string{"running", "stopping"}, Owns: []string{"running"}, DSQs: 1, DSQBase: "a_dsq_base",
				Constants: map[string]any{"a_knob": true}, Objects: (*missingObjs)(nil), Header: "scxkit/a.bpf.h"}}}},
			want: "component a: the object lacks callback ops.running, callback ops.stopping, const volatile u64 a_dsq_base (DSQ base), const volatile a_knob, map no_such_map, variable no_such_global, program no_such_prog: include scxkit/a.bpf.h"},
		{name: "DSQ base not a u64", cfg: scx.Config{Components: []scx.Component{
			&part{"a", scx.Needs{DSQs: 1, DSQBase: "tally_nr"}}}},
			want: "const volatile u64 tally_nr (DSQ base)"},
		{name: "DSQ base without DSQs", cfg: scx.Config{Components: []scx.Component{
			&part{"a", scx.Needs{DSQBase: "tally_dsq_base"}}}},
			want: "DSQs is 0"},
		{name: "DSQs handed over in maps", cfg: scx.Config{Components: []scx.Component{
			&part{"a", scx.Needs{DSQs: 4}}, &part{"b", scx.Needs{DSQs: 2, DSQBase: "tally_dsq_base"}}}}},
		{name: "constant of the wrong type", cfg: scx.Config{Components: []scx.Component{
			&part{"a", scx.Needs{Constants: map[string]any{"tally_nr": true}}}}},
			want: "component a: constant tally_nr = true (bool)"},
		{name: "required component missing", cfg: scx.Config{Components: []scx.Component{&part{"b", scx.Needs{Requires: []string{"a"}}}}},
			want: "component b requires component a: add it to Config.Components before b"},
		{name: "required component later", cfg: scx.Config{Components: []scx.Component{&part{"b", scx.Needs{Requires: []string{"a"}}}, &part{"a", scx.Needs{}}}},
			want: "put a first"},
		{name: "required component first", cfg: scx.Config{Components: []scx.Component{&part{"a", scx.Needs{}}, &part{"b", scx.Needs{Requires: []string{"a"}}}}}},
		{name: "duplicate names", cfg: scx.Config{Components: []scx.Component{&part{"a", scx.Needs{}}, &part{"a", scx.Needs{}}}},
			want: `two components are named "a"`},
		{name: "bad name", cfg: scx.Config{Components: []scx.Component{&part{"Bad-Name", scx.Needs{}}}},
			want: `name "Bad-Name": use lower-case letters, digits and '_'`},
		{name: "nil component", cfg: scx.Config{Components: []scx.Component{nil}}, want: "Components[0] is nil"},
		{name: "nil pointer component", cfg: scx.Config{Components: []scx.Component{(*part)(nil)}}, want: "Components[0] is nil"},
		{name: "unknown flag", cfg: scx.Config{Components: []scx.Component{&part{"a", scx.Needs{Forbids: []scx.OpsFlag{"SCX_OPS_NOPE"}}}}},
			want: `component a: unknown flag "SCX_OPS_NOPE"`},
		{name: "omit a callback", cfg: scx.Config{OmitCallbacks: []string{"dispatch"}, Components: []scx.Component{
			&part{"b", scx.Needs{Callbacks: []string{"enqueue"}}}}}},
		{name: "omit a callback a component needs", cfg: scx.Config{OmitCallbacks: []string{"enqueue"}, Components: []scx.Component{
			&part{"b", scx.Needs{Callbacks: []string{"enqueue"}}}}},
			want: "component b needs ops.enqueue, which Config.OmitCallbacks leaves out"},
		{name: "omit a callback a component owns", cfg: scx.Config{OmitCallbacks: []string{"dispatch"}, Components: []scx.Component{
			&part{"a", scx.Needs{Owns: []string{"dispatch"}}}}},
			want: "component a needs ops.dispatch"},
		{name: "omit a callback the object lacks", cfg: scx.Config{OmitCallbacks: []string{"cpu_release"}},
			want: "Config.OmitCallbacks names ops.cpu_release, which the object does not implement: remove it"},
		{name: "omit exit", cfg: scx.Config{OmitCallbacks: []string{"exit"}}, want: "OmitCallbacks names ops.exit"},
		{name: "omit with the ops. prefix", cfg: scx.Config{OmitCallbacks: []string{"ops.dispatch"}}, want: `drop the "ops." prefix ("dispatch")`},
		{name: "omit an empty name", cfg: scx.Config{OmitCallbacks: []string{""}}, want: "OmitCallbacks has an empty name"},
		{name: "component constant of no fixed size", cfg: scx.Config{Components: []scx.Component{
			&part{"a", scx.Needs{Constants: map[string]any{"tally_nr": 2}}}}},
			want: `component a: Needs.Constants["tally_nr"] = 2 (int): int has no fixed size`},
		{name: "component constant of the wrong size", cfg: scx.Config{Components: []scx.Component{
			&part{"a", scx.Needs{Constants: map[string]any{"tally_nr": uint64(2)}}}}},
			want: "uint64 is 8 bytes, the global tally_nr 4: use a 4-byte type"},
		{name: "objects not a struct pointer", cfg: scx.Config{Components: []scx.Component{&part{"a", scx.Needs{Objects: 3}}}},
			want: "Needs.Objects: int is not a pointer to a struct"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Name = "compose"
			spec, err := scx.Open(attachtest.Compose, tt.cfg)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				if got := len(spec.Components()); got != len(tt.cfg.Components) {
					t.Errorf("Components() has %d, want %d", got, len(tt.cfg.Components))
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Open: %v\nwant an error containing %q", err, tt.want)
			}
			var ce *scx.ConflictError
			if tt.conflict[0] != "" {
				if !errors.As(err, &ce) || !errors.Is(err, scx.ErrConflict) {
					t.Fatalf("Open: %v: want a *ConflictError", err)
				}
				if got := [2]string{ce.A, ce.B}; got != tt.conflict {
					t.Errorf("conflict between %q, want %q", got, tt.conflict)
				}
				set := 0
				for _, f := range []string{string(ce.Flag), ce.Callback, ce.Constant} {
					if f != "" {
						set++
						if !strings.Contains(ce.What, f) {
							t.Errorf("What %q does not name %q", ce.What, f)
						}
					}
				}
				if set != 1 {
					t.Errorf("%+v: want exactly one of Flag, Callback, Constant", ce)
				}
				return
			}
			if errors.As(err, &ce) {
				t.Errorf("Open: %v: a *ConflictError, want another", err)
			}
			if !errors.Is(err, scx.ErrInvalid) {
				t.Errorf("Open: %v: does not wrap ErrInvalid", err)
			}
		})
	}
}

func TestDSQRange(t *testing.T) {
	r := scx.DSQRange{First: scx.FirstComponentDSQ, Count: 3}
	if r.ID(2) != scx.FirstComponentDSQ+2 || !r.Contains(r.ID(0)) || r.Contains(r.First+3) || r.Contains(r.First-1) {
		t.Errorf("DSQRange %+v: ID/Contains disagree", r)
	}
	defer func() {
		if recover() == nil {
			t.Error("ID(3) of a range of 3 did not panic")
		}
	}()
	r.ID(3)
}

// TestDSQAllocation checks that components get disjoint ranges in their
// order, from FirstComponentDSQ up, and none for a component asking none.
func TestDSQAllocation(t *testing.T) {
	spec, err := scx.Open(attachtest.Compose, scx.Config{Name: "compose", Components: []scx.Component{
		&part{"a", scx.Needs{DSQs: 4}}, &part{"none", scx.Needs{}}, &part{"b", scx.Needs{DSQs: 2, DSQBase: "tally_dsq_base"}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		want scx.DSQRange
		ok   bool
	}{
		{"a", scx.DSQRange{First: scx.FirstComponentDSQ, Count: 4}, true},
		{"none", scx.DSQRange{}, false},
		{"b", scx.DSQRange{First: scx.FirstComponentDSQ + 4, Count: 2}, true},
		{"missing", scx.DSQRange{}, false},
	} {
		if got, ok := spec.DSQs(c.name); got != c.want || ok != c.ok {
			t.Errorf("DSQs(%q) = %+v, %v; want %+v, %v", c.name, got, ok, c.want, c.ok)
		}
	}
}
