package scx

import (
	"fmt"
	"time"
)

// StatKind says how a stat's value behaves over time, which tells a
// reader whether to show it as a rate or as a level.
type StatKind uint8

const (
	// Counter only goes up (it restarts from zero with the scheduler);
	// readers show its rate.
	Counter StatKind = iota + 1
	// Gauge is a level that goes up and down, such as a queue depth.
	Gauge
)

func (k StatKind) String() string {
	switch k {
	case Counter:
		return "counter"
	case Gauge:
		return "gauge"
	}
	return fmt.Sprintf("StatKind(%d)", uint8(k))
}

// StatDesc describes one stat of a component or of the scheduler itself.
type StatDesc struct {
	// Name is lower_snake_case, unique within its component, with the
	// unit as suffix where there is one ("runtime_ns", "wait_p99_ns").
	Name string
	// Help says what the stat counts or measures, in one sentence.
	Help string
	Kind StatKind
	// Label, if set, makes the stat a vector: one value per label value,
	// e.g. Label "domain" with one value per scheduling domain.
	Label string
}

// Sample is one value of a stat. Stat indexes the reporter's Stats();
// Label is the label's value for a vector stat and "" otherwise.
type Sample struct {
	Stat  int
	Label string
	Value float64
}

// StatSet is the stats of one reporter: the scheduler's own counters and
// gauges (Component "", stats.bpf.h) or one component's.
type StatSet struct {
	Component string
	Descs     []StatDesc
	Samples   []Sample
}

// Snapshot is every stat of a running scheduler at one time: its own
// counters and gauges (stats.bpf.h) first, then each Reporter
// component's, in the order of Config.Components.
type Snapshot struct {
	Scheduler string // the ops name
	Time      time.Time
	Sets      []StatSet
}

// Value returns the value of the stat component/name with the given
// label ("" for a plain stat), and whether there is one.
func (s *Snapshot) Value(component, name, label string) (float64, bool) {
	for i := range s.Sets {
		set := &s.Sets[i]
		if set.Component != component {
			continue
		}
		for _, smp := range set.Samples {
			if smp.Stat < len(set.Descs) && set.Descs[smp.Stat].Name == name && smp.Label == label {
				return smp.Value, true
			}
		}
	}
	return 0, false
}

// checkStats validates a reporter's descriptions.
func checkStats(component string, descs []StatDesc) error {
	seen := make(map[string]bool, len(descs))
	for i, d := range descs {
		switch {
		case !validStatName(d.Name):
			return fmt.Errorf("component %s: stat %d: name %q: use lower_snake_case letters and digits", component, i, d.Name)
		case seen[d.Name]:
			return fmt.Errorf("component %s: two stats are named %q", component, d.Name)
		case d.Kind != Counter && d.Kind != Gauge:
			return fmt.Errorf("component %s: stat %s: kind %v: use Counter or Gauge", component, d.Name, d.Kind)
		case d.Help == "":
			return fmt.Errorf("component %s: stat %s has no help text", component, d.Name)
		case d.Label != "" && !validStatName(d.Label):
			return fmt.Errorf("component %s: stat %s: label %q: use lower_snake_case", component, d.Name, d.Label)
		}
		seen[d.Name] = true
	}
	return nil
}

func validStatName(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, r := range s {
		if !(r == '_' || ('a' <= r && r <= 'z') || ('0' <= r && r <= '9')) {
			return false
		}
	}
	return true
}

// ReadSnapshot fills dst with every stat of the scheduler, reusing dst's
// slices: a reader that keeps one Snapshot allocates nothing in steady
// state beyond what the components' ReadStats do. It may be called from
// any goroutine while the scheduler runs, and also once it is closed,
// when it fails with ErrClosed.
func (s *Scheduler) ReadSnapshot(dst *Snapshot) error {
	if err := s.holdOpen(); err != nil {
		return err
	}
	defer s.closeMu.RUnlock()
	dst.Scheduler = s.name
	dst.Time = time.Now()
	n := len(s.reporters)
	if s.stats != nil {
		n++
	}
	if cap(dst.Sets) < n {
		dst.Sets = append(dst.Sets[:cap(dst.Sets)], make([]StatSet, n-cap(dst.Sets))...)
	}
	dst.Sets = dst.Sets[:n]
	i := 0
	if s.stats != nil {
		set := &dst.Sets[0]
		set.Component = ""
		set.Descs = s.stats.descs
		s.statsMu.Lock()
		err := s.stats.read(&s.statsBuf)
		if err == nil {
			set.Samples = set.Samples[:0]
			for j, v := range s.statsBuf.Values {
				f := float64(v)
				if s.stats.kinds[j] == Gauge {
					f = float64(int64(v)) // a level may be below zero
				}
				set.Samples = append(set.Samples, Sample{Stat: j, Value: f})
			}
		}
		s.statsMu.Unlock()
		if err != nil {
			return fmt.Errorf("stats %s: %w", s.name, err)
		}
		i++
	}
	for _, r := range s.reporters {
		set := &dst.Sets[i]
		set.Component = r.name
		set.Descs = r.descs
		var err error
		set.Samples, err = r.r.ReadStats(set.Samples[:0])
		if err != nil {
			return fmt.Errorf("stats %s: component %s: %w", s.name, r.name, err)
		}
		for _, smp := range set.Samples {
			if smp.Stat < 0 || smp.Stat >= len(r.descs) {
				return fmt.Errorf("stats %s: component %s: sample for stat %d, but it describes %d", s.name, r.name, smp.Stat, len(r.descs))
			}
		}
		i++
	}
	return nil
}

// StatSets returns the descriptions of every stat the scheduler reports,
// in the order of ReadSnapshot, without reading any value.
func (s *Scheduler) StatSets() []StatSet {
	var out []StatSet
	if s.stats != nil {
		out = append(out, StatSet{Descs: s.stats.descs})
	}
	for _, r := range s.reporters {
		out = append(out, StatSet{Component: r.name, Descs: r.descs})
	}
	return out
}

// reporter is a bound Reporter with its checked descriptions.
type reporter struct {
	name  string
	r     Reporter
	descs []StatDesc
}
