package bench

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestPlanChecks: a Plan that cannot run is refused before anything
// starts, with an error that names what is wrong.
func TestPlanChecks(t *testing.T) {
	for _, tt := range []struct {
		plan *Plan
		want string
	}{
		{nil, "nil Plan"},
		{&Plan{Repetitions: -1}, "Repetitions -1"},
		{&Plan{Benchmarks: []Benchmark{}}, "no benchmark"},
		{&Plan{Schedulers: []Scheduler{{Name: "a"}}}, `scheduler "a" at ""`},
		{&Plan{Schedulers: []Scheduler{{Name: Default, Path: "/x"}}}, `scheduler name "default"`},
		{&Plan{Schedulers: []Scheduler{{Name: "a", Path: "/x"}, {Name: "a", Path: "/y"}}}, `scheduler name "a"`},
	} {
		_, err := Run(context.Background(), tt.plan)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Run(%+v): %v, want ErrInvalid naming %q", tt.plan, err, tt.want)
		}
	}
	// A missing tool fails the run before any scheduler starts.
	_, err := Run(context.Background(), &Plan{ToolDir: t.TempDir(), Benchmarks: []Benchmark{Cyclictest}})
	if err == nil || !strings.Contains(err.Error(), "cyclictest") {
		t.Errorf("Run without the tools: %v, want an error naming cyclictest", err)
	}
	p, err := (&Plan{}).withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if p.Repetitions != 3 || len(p.Benchmarks) != len(Standard()) || p.Options.CPUs < 1 || p.Log == nil {
		t.Errorf("defaults: %+v", p)
	}
}
