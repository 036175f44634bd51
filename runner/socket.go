package runner

import (
	"fmt"
	"log/slog"
	"math"
	"sync"
	"syscall"

	"github.com/scxkit/scxkit/scx"
	"github.com/scxkit/scxkit/scx/scxstats"
)

// statsLayout is where every stat of a snapshot goes in the protocol's
// structs.
type statsLayout struct {
	metas []scxstats.Meta
	sets  []setLayout // one per scx.StatSet
}

type setLayout struct {
	field string            // the top struct's field of the set's struct; "" for the scheduler's own
	stats []string          // per StatDesc: its field
	dicts map[string]string // label -> the dict field of its vector stats
}

// newStatsLayout maps sets, the stats of the scheduler called ops.
func newStatsLayout(ops string, sets []scx.StatSet) *statsLayout {
	l := &statsLayout{sets: make([]setLayout, len(sets))}
	top := scxstats.Meta{
		Name:   ops,
		Desc:   fmt.Sprintf("sched_ext scheduler %s: its own counters and gauges, and one struct per component", ops),
		Top:    scxstats.TopValue,
		Fields: map[string]scxstats.Field{},
		User:   map[string]string{"_om_prefix": "scxkit_sched_"},
	}
	var metas []scxstats.Meta
	// The scheduler's own stats first: they keep their names.
	for i, set := range sets {
		if set.Component == "" {
			metas = append(metas, l.mapSet(i, set, &top)...)
		}
	}
	for i, set := range sets {
		if set.Component == "" {
			continue
		}
		name := ops + "." + set.Component
		m := scxstats.Meta{
			Name:   name,
			Desc:   "stats of component " + set.Component,
			Fields: map[string]scxstats.Field{},
			User:   map[string]string{"_om_prefix": "scxkit_" + set.Component + "_"},
		}
		field := uniqueField(top.Fields, set.Component)
		top.Fields[field] = scxstats.Field{Datum: scxstats.StructKind(name), Desc: m.Desc}
		l.sets[i].field = field
		more := l.mapSet(i, set, &m)
		metas = append(append(metas, m), more...)
	}
	l.metas = append([]scxstats.Meta{top}, metas...)
	return l
}

// mapSet puts the stats of sets[i] into m, the set's struct, and returns
// the metas of its vector stats.
func (l *statsLayout) mapSet(i int, set scx.StatSet, m *scxstats.Meta) []scxstats.Meta {
	sl := &l.sets[i]
	sl.stats = make([]string, len(set.Descs))
	for j, d := range set.Descs {
		if d.Label == "" {
			sl.stats[j] = uniqueField(m.Fields, d.Name)
			m.Fields[sl.stats[j]] = statField(set.Component, d)
		}
	}
	var out []scxstats.Meta
	byLabel := map[string]int{} // index in out
	for j, d := range set.Descs {
		if d.Label == "" {
			continue
		}
		k, ok := byLabel[d.Label]
		if !ok {
			what := "the scheduler's stats"
			if set.Component != "" {
				what = "stats of component " + set.Component
			}
			k = len(out)
			byLabel[d.Label] = k
			out = append(out, scxstats.Meta{
				Name:   m.Name + "{" + d.Label + "}",
				Desc:   fmt.Sprintf("%s by %s", what, d.Label),
				Fields: map[string]scxstats.Field{},
				User:   map[string]string{"_om_prefix": m.User["_om_prefix"], "_om_label": d.Label},
			})
			if sl.dicts == nil {
				sl.dicts = map[string]string{}
			}
			f := uniqueField(m.Fields, "by_"+d.Label)
			sl.dicts[d.Label] = f
			m.Fields[f] = scxstats.Field{
				Desc: fmt.Sprintf("%s by %s, keyed by the %s", what, d.Label, d.Label),
				Dict: &scxstats.Dict{Key: scxstats.KindString, Datum: scxstats.StructKind(out[k].Name)},
			}
		}
		v := &out[k]
		sl.stats[j] = uniqueField(v.Fields, d.Name)
		v.Fields[sl.stats[j]] = statField(set.Component, d)
	}
	return out
}

// statField describes a stat of component ("" for the scheduler's own):
// a u64 field for the scheduler's counters, i64 for its gauges (a level
// summed over CPUs may dip below zero), float for a component's stats.
func statField(component string, d scx.StatDesc) scxstats.Field {
	kind := scxstats.KindFloat
	switch {
	case component == "" && d.Kind == scx.Gauge:
		kind = scxstats.KindI64
	case component == "":
		kind = scxstats.KindU64
	}
	return scxstats.Field{Datum: kind, Desc: d.Help, User: map[string]string{scxstats.AttrType: d.Kind.String()}}
}

// uniqueField returns name, with '_' appended until no field of fields
// has it.
func uniqueField(fields map[string]scxstats.Field, name string) string {
	for {
		if _, taken := fields[name]; !taken {
			return name
		}
		name += "_"
	}
}

// value returns the "stats" reply for snap, whose sets must be those the
// layout was made from.
func (l *statsLayout) value(snap *scx.Snapshot) map[string]any {
	top := map[string]any{}
	for i := range snap.Sets {
		set, sl := &snap.Sets[i], &l.sets[i]
		obj := top
		if sl.field != "" {
			obj = map[string]any{}
			top[sl.field] = obj
		}
		for _, smp := range set.Samples {
			if smp.Stat < 0 || smp.Stat >= len(set.Descs) {
				continue
			}
			d := &set.Descs[smp.Stat]
			v, ok := jsonValue(set.Component, d.Kind, smp.Value)
			if !ok {
				continue
			}
			if d.Label == "" {
				obj[sl.stats[smp.Stat]] = v
				continue
			}
			dict, _ := obj[sl.dicts[d.Label]].(map[string]map[string]any)
			if dict == nil {
				dict = map[string]map[string]any{}
				obj[sl.dicts[d.Label]] = dict
			}
			entry := dict[smp.Label]
			if entry == nil {
				entry = map[string]any{}
				dict[smp.Label] = entry
			}
			entry[sl.stats[smp.Stat]] = v
		}
	}
	return top
}

// jsonValue returns v as it goes on the wire: the scheduler's own
// (component "") counters as uint64 and gauges as int64, a component's
// stats as float64; false if JSON, or the field's type, cannot hold it.
func jsonValue(component string, kind scx.StatKind, v float64) (any, bool) {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return nil, false
	case component != "":
		return v, true
	case kind == scx.Gauge:
		if v < math.MinInt64 || v >= math.MaxInt64 {
			return nil, false
		}
		return int64(v), true
	case v < 0 || v >= math.MaxUint64:
		return nil, false
	}
	return uint64(v), true
}

// NewStatsServer binds the scx_stats socket at path (see
// scxstats.NewServer: it creates the directory, replaces a stale socket,
// and refuses one another server listens on) and answers "stats" and
// "stats_meta" from src. A "stats" request while src has no scheduler
// gets an EAGAIN error; "stats_meta" answers with the last scheduler's
// descriptions then, or EAGAIN before the first. Call Serve on the
// server, and Close to remove the socket.
//
// The protocol describes stats as structs of fields; a scheduler's stats
// map onto them so:
//
//   - The top struct, named after the scheduler's ops name (say
//     "simple"), holds the scheduler's own stats (stats.bpf.h), named as
//     in the stats line: one u64 field per counter, one i64 field per
//     gauge (a level, which may dip below zero).
//   - Each Reporter component is a field of the top struct named after
//     the component, of a struct named "OPS.COMPONENT" that holds its
//     plain stats, one float field each (JSON prints whole values without
//     a fraction).
//   - A component's vector stats with label L are a dict field "by_L" of
//     the component's struct, keyed by the label's value, of a struct
//     named "OPS.COMPONENT{L}" holding one float field per such stat.
//     (The scheduler's own stats have no labels; if they had, they
//     would go the same way into the top struct.)
//
// So a "stats" reply reads
//
//	{"dispatched":1490,"dsq":{"by_domain":{"0":{"queued":2},"1":{"queued":0}},"steals":3},"enqueued":1520}
//
// Every field's desc is its stat's Help, and its user attribute _om_type
// (scxstats.AttrType) says whether it is a "counter" or a "gauge"
// (scx.StatKind's String), which `scxkit stats --meta` shows. The structs
// carry the user attributes the scx tools read for OpenMetrics: _om_prefix, the
// Prometheus prefix of NewCollector (scxkit_sched_ or scxkit_COMPONENT_),
// and _om_label, L on a vector stat's struct. A client that flattens the
// structs by these rules, as `scxkit stats` does (a struct's fields as
// struct.field, a dict's entries with {L=key} and without the dict's own
// name), names the stats as the stats line does: dsq.queued{domain=0}.
// A field name already taken in its struct (a counter named like a
// component) gets '_' appended. Values JSON cannot hold (NaN, ±Inf, a
// negative counter of the scheduler's) are left out of a reply.
func NewStatsServer(path string, src Source, log *slog.Logger) (*scxstats.Server, error) {
	if log == nil {
		log = slog.Default()
	}
	h := &statsHandler{src: src}
	srv, err := scxstats.NewServer(path, &scxstats.ServerOptions{Stats: h.stats, Logger: log})
	if err != nil {
		return nil, err
	}
	srv.Handle("stats_meta", h.meta)
	return srv, nil
}

type statsHandler struct {
	src Source

	mu    sync.Mutex // guards what follows
	snap  scx.Snapshot
	metas map[string]scxstats.Meta // of the last snapshot read
}

// errNotAttached answers requests while no scheduler is attached, with
// errno EAGAIN.
var errNotAttached error = notAttached{}

type notAttached struct{}

func (notAttached) Error() string { return "no scheduler attached (starting or restarting): try again" }
func (notAttached) Unwrap() error { return syscall.EAGAIN }

// read reads the source and returns the layout of the snapshot, or nil
// when there is no scheduler.
func (h *statsHandler) read() (*statsLayout, error) {
	ok, err := h.src.ReadSnapshot(&h.snap)
	if err != nil || !ok {
		return nil, err
	}
	l := newStatsLayout(h.snap.Scheduler, h.snap.Sets)
	h.metas = make(map[string]scxstats.Meta, len(l.metas))
	for _, m := range l.metas {
		h.metas[m.Name] = m
	}
	return l, nil
}

func (h *statsHandler) stats(map[string]string) (any, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	l, err := h.read()
	switch {
	case err != nil:
		return nil, err
	case l == nil:
		return nil, errNotAttached
	}
	return l.value(&h.snap), nil
}

func (h *statsHandler) meta(map[string]string) (any, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, err := h.read(); err != nil {
		return nil, err
	}
	if h.metas == nil {
		return nil, errNotAttached
	}
	return h.metas, nil
}
