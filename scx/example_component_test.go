package scx_test

import (
	"fmt"
	"log"

	"github.com/cilium/ebpf"
	"github.com/scxkit/scxkit/scx"
	"github.com/scxkit/scxkit/scx/internal/attachtest"
)

// spread is a component that spreads tasks over its own DSQs. Its BPF half
// (in the scheduler's object) declares
//
//	const volatile u64 spread_dsq_base;  // first DSQ id, written by the loader
//	const volatile u32 spread_nr;        // how many
//	u32 spread_on;                        // set by Bind
//
// and the scheduler calls its hooks from ops.init, ops.enqueue and
// ops.dispatch. (The example's object, compose.bpf.c, calls it "tally".)
type spread struct {
	queues int
	objs   struct {
		On *ebpf.Variable `ebpf:"tally_bound"`
	}
}

func (s *spread) Name() string { return "spread" }

func (s *spread) Needs() scx.Needs {
	return scx.Needs{
		DSQs:      s.queues,
		DSQBase:   "tally_dsq_base",
		Constants: map[string]any{"tally_nr": uint32(s.queues)},
		Callbacks: []string{"init", "enqueue"},
		Owns:      []string{"dispatch"}, // it alone picks what runs next
		Objects:   &s.objs,
		Header:    "compose.bpf.c",
	}
}

// Bind runs after every load: find the globals, turn the BPF half on.
func (s *spread) Bind(b *scx.Binding) error {
	if err := b.Assign(&s.objs); err != nil {
		return err
	}
	return s.objs.On.Set(uint32(1))
}

// picky also wants to decide what ops.dispatch runs.
type picky struct{}

func (picky) Name() string            { return "picky" }
func (picky) Needs() scx.Needs        { return scx.Needs{Owns: []string{"dispatch"}} }
func (picky) Bind(*scx.Binding) error { return nil }

// Components are declared in the Config. Open checks them against the
// object and each other, without a kernel, and allocates their DSQ ids;
// Load (or Serve) binds them before the scheduler is attached.
func Example_components() {
	objs := attachtest.Compose // in your package: scx.Objects{Base: loadX, V2: loadXV2}

	spec, err := scx.Open(objs, scx.Config{Name: "spreader", Components: []scx.Component{&spread{queues: 4}}})
	if err != nil {
		log.Fatal(err)
	}
	r, _ := spec.DSQs("spread")
	fmt.Printf("spread owns DSQs %#x to %#x\n", r.First, r.ID(r.Count-1))

	// Two components that both decide ops.dispatch cannot be combined.
	_, err = scx.Open(objs, scx.Config{Name: "spreader", Components: []scx.Component{&spread{queues: 4}, picky{}}})
	fmt.Println(err)
	// Output:
	// spread owns DSQs 0x100000000 to 0x100000003
	// open spreader: components cannot be combined: spread and picky: ops.dispatch: both decide it alone, and at most one component may own a callback
}
