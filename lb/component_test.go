package lb

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/scxkit/scxkit/scx"
)

// TestComponentNeeds checks what the balancer declares: it builds on
// "dsq", owns no callback, and runs its rounds every Options.Interval.
func TestComponentNeeds(t *testing.T) {
	b, err := New(gridDomains(1, 2, 2), nil)
	if err != nil {
		t.Fatal(err)
	}
	n := b.Needs()
	if b.Name() != "lb" || !slices.Equal(n.Requires, []string{"dsq"}) || len(n.Owns) != 0 || n.DSQs != 0 {
		t.Errorf("name %q, needs %+v: want lb, requiring dsq, owning nothing, without DSQs", b.Name(), n)
	}
	for _, cb := range []string{"enable", "disable", "runnable", "quiescent", "enqueue", "stopping", "set_cpumask"} {
		if !slices.Contains(n.Callbacks, cb) {
			t.Errorf("Needs.Callbacks %v lacks %s", n.Callbacks, cb)
		}
	}
	if w := b.Work(); len(w) != 1 || w[0].Every != DefaultInterval || w[0].Func == nil {
		t.Errorf("Work() = %+v, want one round every %v", w, DefaultInterval)
	}
	b, err = New(gridDomains(1, 2, 2), &Options{Interval: 250 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if w := b.Work(); w[0].Every != 250*time.Millisecond {
		t.Errorf("Work every %v, want Options.Interval 250ms", w[0].Every)
	}
}

// TestBeforeBind: the Read and Write methods and the stats of an unbound
// balancer fail with scx.ErrNotBound, while Balance works without a kernel.
func TestBeforeBind(t *testing.T) {
	b, err := New(gridDomains(1, 2, 2), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.ReadTasks(nil); !errors.Is(err, scx.ErrNotBound) {
		t.Errorf("ReadTasks: %v, want ErrNotBound", err)
	}
	if _, err := b.ReadLoads(nil); !errors.Is(err, scx.ErrNotBound) {
		t.Errorf("ReadLoads: %v, want ErrNotBound", err)
	}
	if _, err := b.ReadCounters(nil); !errors.Is(err, scx.ErrNotBound) {
		t.Errorf("ReadCounters: %v, want ErrNotBound", err)
	}
	if err := b.WritePlan([]Migration{{Task: 1, To: 1}}); !errors.Is(err, scx.ErrNotBound) {
		t.Errorf("WritePlan: %v, want ErrNotBound", err)
	}
	if _, err := b.ReadStats(nil); !errors.Is(err, scx.ErrNotBound) {
		t.Errorf("ReadStats: %v, want ErrNotBound", err)
	}
	if _, _, err := b.Balance(nil, []Task{{ID: 1, Domain: 0, Weight: 100, DutyCycle: 1}}); err != nil {
		t.Errorf("Balance: %v", err)
	}
}

// TestStatsDescribed checks that every stat has a help text and that the
// per-domain ones are labelled "domain".
func TestStatsDescribed(t *testing.T) {
	b, err := New(gridDomains(1, 2, 2), nil)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, d := range b.Stats() {
		if d.Name == "" || d.Help == "" || seen[d.Name] || (d.Kind != scx.Counter && d.Kind != scx.Gauge) {
			t.Errorf("stat %d: %+v", i, d)
		}
		seen[d.Name] = true
		if i >= statRuntime && d.Label != "domain" {
			t.Errorf("stat %s: label %q, want domain", d.Name, d.Label)
		}
	}
}
