package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/scxkit/scxkit/scx"
	"github.com/scxkit/scxkit/scx/scxstats"
)

// fakeSnapshot is a scheduler's stats: its own counters, a component with
// plain and vector stats, and one whose label values need quoting.
func fakeSnapshot() *scx.Snapshot {
	return &scx.Snapshot{
		Scheduler: "demo",
		Time:      time.Date(2026, 12, 5, 12, 0, 1, 0, time.UTC),
		Sets: []scx.StatSet{
			{
				Descs: []scx.StatDesc{
					{Name: "enqueued", Help: "Tasks queued.", Kind: scx.Counter},
					{Name: "dispatched", Help: "Tasks dispatched.", Kind: scx.Counter},
					{Name: "nest_size", Help: "CPUs in the nest.", Kind: scx.Gauge},
				},
				Samples: []scx.Sample{{Stat: 0, Value: 1520}, {Stat: 1, Value: 1490}, {Stat: 2, Value: 3}},
			},
			{
				Component: "dsq",
				Descs: []scx.StatDesc{
					{Name: "steals", Help: "Tasks stolen.", Kind: scx.Counter},
					{Name: "queued", Help: "Tasks queued now.", Kind: scx.Gauge, Label: "domain"},
					{Name: "runtime_ns", Help: "Run time.", Kind: scx.Counter, Label: "domain"},
					{Name: "load", Help: "Average load.", Kind: scx.Gauge},
				},
				Samples: []scx.Sample{
					{Stat: 0, Value: 3},
					{Stat: 1, Label: "0", Value: 2}, {Stat: 1, Label: "1", Value: 0},
					{Stat: 2, Label: "0", Value: 1e6}, {Stat: 2, Label: "1", Value: 5e5},
					{Stat: 3, Value: 0.25},
				},
			},
			{
				Component: "cg",
				Descs:     []scx.StatDesc{{Name: "wait_ns", Help: "Wait.", Kind: scx.Gauge, Label: "cgroup"}},
				Samples:   []scx.Sample{{Stat: 0, Label: "/a b", Value: 7}, {Stat: 0, Label: "/c", Value: 8}},
			},
		},
	}
}

// fakeSource serves a copy of snap, or no scheduler when snap is nil.
type fakeSource struct {
	snap  atomic.Pointer[scx.Snapshot]
	err   error
	reads atomic.Int64
}

func (f *fakeSource) ReadSnapshot(dst *scx.Snapshot) (bool, error) {
	f.reads.Add(1)
	if f.err != nil {
		return true, f.err
	}
	s := f.snap.Load()
	if s == nil {
		return false, nil
	}
	dst.Scheduler, dst.Time = s.Scheduler, s.Time
	dst.Sets = dst.Sets[:0]
	for _, set := range s.Sets {
		dst.Sets = append(dst.Sets, scx.StatSet{Component: set.Component, Descs: set.Descs, Samples: slices.Clone(set.Samples)})
	}
	return true, nil
}

func newFakeSource(snap *scx.Snapshot) *fakeSource {
	f := &fakeSource{}
	f.snap.Store(snap)
	return f
}

func TestStatsLine(t *testing.T) {
	got := string(AppendStatsLine([]byte("x"), fakeSnapshot()))
	want := `x12:00:01 enqueued=1520 dispatched=1490 nest_size=3 dsq.steals=3 dsq.queued{domain=0}=2 dsq.queued{domain=1}=0 ` +
		`dsq.runtime_ns{domain=0}=1000000 dsq.runtime_ns{domain=1}=500000 dsq.load=0.25 cg.wait_ns{cgroup="/a b"}=7 cg.wait_ns{cgroup=/c}=8`
	if got != want {
		t.Errorf("stats line\n got %s\nwant %s", got, want)
	}
	for v, want := range map[float64]string{1e21: "1000000000000000000000", math.NaN(): "NaN", math.Inf(-1): "-Inf", -0.5: "-0.5"} {
		if got := string(appendValue(nil, v)); got != want {
			t.Errorf("value %v: %s, want %s", v, got, want)
		}
	}
	for v, want := range map[string]string{"": `""`, "a=b": `"a=b"`, "{": `"{"`, "x,y": `"x,y"`, "é/1": "é/1", "\t": `"\t"`} {
		if got := string(appendLabelValue(nil, v)); got != want {
			t.Errorf("label value %q: %s, want %s", v, got, want)
		}
	}
}

// gather collects c and formats every metric as "name{labels} type value",
// with its help, sorted.
func gather(t *testing.T, c prometheus.Collector) []string {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var out []string
	for _, mf := range mfs {
		for _, m := range mf.Metric {
			var labels []string
			for _, l := range m.Label {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			var v float64
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				v = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				v = m.GetGauge().GetValue()
			}
			out = append(out, fmt.Sprintf("%s{%s} %s %v # %s", mf.GetName(), strings.Join(labels, ","),
				strings.ToLower(mf.GetType().String()), v, mf.GetHelp()))
		}
	}
	sort.Strings(out)
	return out
}

func TestCollector(t *testing.T) {
	src := newFakeSource(fakeSnapshot())
	c := NewCollector(src, nil)
	want := []string{
		`scxkit_cg_wait_ns{cgroup="/a b",scheduler="demo"} gauge 7 # Wait.`,
		`scxkit_cg_wait_ns{cgroup="/c",scheduler="demo"} gauge 8 # Wait.`,
		`scxkit_dsq_load{scheduler="demo"} gauge 0.25 # Average load.`,
		`scxkit_dsq_queued{domain="0",scheduler="demo"} gauge 2 # Tasks queued now.`,
		`scxkit_dsq_queued{domain="1",scheduler="demo"} gauge 0 # Tasks queued now.`,
		`scxkit_dsq_runtime_ns_total{domain="0",scheduler="demo"} counter 1e+06 # Run time.`,
		`scxkit_dsq_runtime_ns_total{domain="1",scheduler="demo"} counter 500000 # Run time.`,
		`scxkit_dsq_steals_total{scheduler="demo"} counter 3 # Tasks stolen.`,
		`scxkit_sched_dispatched_total{scheduler="demo"} counter 1490 # Tasks dispatched.`,
		`scxkit_sched_enqueued_total{scheduler="demo"} counter 1520 # Tasks queued.`,
		`scxkit_sched_nest_size{scheduler="demo"} gauge 3 # CPUs in the nest.`,
	}
	// Twice: the second scrape reuses the descriptions.
	for range 2 {
		if diff := cmp.Diff(want, gather(t, c)); diff != "" {
			t.Errorf("metrics (-want +got):\n%s", diff)
		}
	}
	// The names are MetricName's.
	for _, set := range fakeSnapshot().Sets {
		for _, d := range set.Descs {
			name := MetricName(set.Component, d.Name, d.Kind)
			if !slices.ContainsFunc(want, func(s string) bool { return strings.HasPrefix(s, name+"{") }) {
				t.Errorf("MetricName(%q, %q) = %s, not among the metrics", set.Component, d.Name, name)
			}
		}
	}

	// No scheduler: no metric, no error.
	src.snap.Store(nil)
	if got := gather(t, c); len(got) != 0 {
		t.Errorf("without a scheduler: %q, want no metric", got)
	}
	// A failed read: no metric, a warning.
	var log bytes.Buffer
	failing := &fakeSource{err: errors.New("map gone")}
	if got := gather(t, NewCollector(failing, slog.New(slog.NewTextHandler(&log, nil)))); len(got) != 0 ||
		!strings.Contains(log.String(), "map gone") {
		t.Errorf("failed read: %q, log %q; want no metric and a warning", got, log.String())
	}
}

// TestCollectorClashes: stats that map to one name keep the first; a
// label named scheduler is renamed.
func TestCollectorClashes(t *testing.T) {
	snap := &scx.Snapshot{Scheduler: "demo", Sets: []scx.StatSet{
		{Descs: []scx.StatDesc{{Name: "enqueued", Help: "h", Kind: scx.Counter}}, Samples: []scx.Sample{{Stat: 0, Value: 1}}},
		{Component: "sched", Descs: []scx.StatDesc{{Name: "enqueued", Help: "other", Kind: scx.Counter}}, Samples: []scx.Sample{{Stat: 0, Value: 2}}},
		{Component: "a", Descs: []scx.StatDesc{
			{Name: "x", Help: "h", Kind: scx.Counter},
			{Name: "x_total", Help: "h2", Kind: scx.Counter},
			{Name: "who", Help: "h", Kind: scx.Gauge, Label: "scheduler"},
		}, Samples: []scx.Sample{{Stat: 0, Value: 3}, {Stat: 1, Value: 4}, {Stat: 2, Label: "other", Value: 5}, {Stat: 2, Label: "other", Value: 6}}},
	}}
	want := []string{
		`scxkit_a_who{exported_scheduler="other",scheduler="demo"} gauge 5 # h`,
		`scxkit_a_x_total{scheduler="demo"} counter 3 # h`,
		`scxkit_sched_enqueued_total{scheduler="demo"} counter 1 # h`,
	}
	if diff := cmp.Diff(want, gather(t, NewCollector(newFakeSource(snap), nil))); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
}

// TestServeMetrics scrapes over HTTP, with and without a scheduler.
func TestServeMetrics(t *testing.T) {
	ln, err := listenMetrics("127.0.0.1:0", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	src := newFakeSource(fakeSnapshot())
	srv := serveMetrics(ln, src, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer srv.Close()
	get := func() string {
		resp, err := http.Get("http://" + ln.Addr().String() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET: %s, %v\n%s", resp.Status, err, b)
		}
		return string(b)
	}
	if body := get(); !strings.Contains(body, "scxkit_sched_enqueued_total{scheduler=\"demo\"} 1520\n") ||
		!strings.Contains(body, "# TYPE scxkit_sched_enqueued_total counter") {
		t.Errorf("scrape:\n%s", body)
	}
	src.snap.Store(nil)
	if body := get(); body != "" {
		t.Errorf("scrape without a scheduler:\n%s\nwant nothing", body)
	}
}

func TestStatsLayout(t *testing.T) {
	snap := fakeSnapshot()
	l := newStatsLayout(snap.Scheduler, snap.Sets)
	got, err := json.Marshal(l.value(snap))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"cg":{"by_cgroup":{"/a b":{"wait_ns":7},"/c":{"wait_ns":8}}},"dispatched":1490,` +
		`"dsq":{"by_domain":{"0":{"queued":2,"runtime_ns":1000000},"1":{"queued":0,"runtime_ns":500000}},"load":0.25,"steals":3},"enqueued":1520,"nest_size":3}`
	if string(got) != want {
		t.Errorf("stats\n got %s\nwant %s", got, want)
	}

	metas, err := json.Marshal(l.metas)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{
		`{"desc":"sched_ext scheduler demo: its own counters and gauges, and one struct per component","fields":{` +
			`"cg":{"datum":{"struct":"demo.cg"},"desc":"stats of component cg"},` +
			`"dispatched":{"datum":"u64","desc":"Tasks dispatched.","user":{"_om_type":"counter"}},` +
			`"dsq":{"datum":{"struct":"demo.dsq"},"desc":"stats of component dsq"},` +
			`"enqueued":{"datum":"u64","desc":"Tasks queued.","user":{"_om_type":"counter"}},` +
			`"nest_size":{"datum":"i64","desc":"CPUs in the nest.","user":{"_om_type":"gauge"}}},` +
			`"name":"demo","top":"true","user":{"_om_prefix":"scxkit_sched_"}}`,
		`{"desc":"stats of component dsq","fields":{` +
			`"by_domain":{"desc":"stats of component dsq by domain, keyed by the domain","dict":{"datum":{"struct":"demo.dsq{domain}"},"key":"string"}},` +
			`"load":{"datum":"float","desc":"Average load.","user":{"_om_type":"gauge"}},"steals":{"datum":"float","desc":"Tasks stolen.","user":{"_om_type":"counter"}}},` +
			`"name":"demo.dsq","user":{"_om_prefix":"scxkit_dsq_"}}`,
		`{"desc":"stats of component dsq by domain","fields":{"queued":{"datum":"float","desc":"Tasks queued now.","user":{"_om_type":"gauge"}},` +
			`"runtime_ns":{"datum":"float","desc":"Run time.","user":{"_om_type":"counter"}}},"name":"demo.dsq{domain}","user":{"_om_label":"domain","_om_prefix":"scxkit_dsq_"}}`,
	} {
		if !strings.Contains(string(metas), w) {
			t.Errorf("metas lack\n%s\nin\n%s", w, metas)
		}
	}
	// The server takes them (it checks what the Rust server checks).
	srv, err := scxstats.NewServer(filepath.Join(t.TempDir(), "stats"), &scxstats.ServerOptions{Metas: l.metas})
	if err != nil {
		t.Fatalf("metas refused: %v", err)
	}
	srv.Close()
}

// TestStatsLayoutClashes: a counter named like a component, a stat named
// like a dict, values JSON cannot hold, and a gauge of the scheduler's
// below zero, which an i64 field holds.
func TestStatsLayoutClashes(t *testing.T) {
	snap := &scx.Snapshot{Scheduler: "demo", Sets: []scx.StatSet{
		{Descs: []scx.StatDesc{{Name: "x", Kind: scx.Counter}, {Name: "neg", Kind: scx.Counter}, {Name: "level", Kind: scx.Gauge}},
			Samples: []scx.Sample{{Stat: 0, Value: 1}, {Stat: 1, Value: -1}, {Stat: 2, Value: -2}}},
		{Component: "x", Descs: []scx.StatDesc{
			{Name: "by_d", Kind: scx.Gauge},
			{Name: "v", Kind: scx.Gauge, Label: "d"},
			{Name: "nan", Kind: scx.Gauge},
		}, Samples: []scx.Sample{{Stat: 0, Value: 2}, {Stat: 1, Label: "k", Value: 3}, {Stat: 2, Value: math.NaN()}}},
	}}
	l := newStatsLayout(snap.Scheduler, snap.Sets)
	got, err := json.Marshal(l.value(snap))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"level":-2,"x":1,"x_":{"by_d":2,"by_d_":{"k":{"v":3}}}}`; string(got) != want {
		t.Errorf("stats %s, want %s", got, want)
	}
	srv, err := scxstats.NewServer(filepath.Join(t.TempDir(), "stats"), &scxstats.ServerOptions{Metas: l.metas})
	if err != nil {
		t.Fatalf("metas refused: %v", err)
	}
	srv.Close()
}

// TestStatsServer talks to NewStatsServer with the protocol's client.
func TestStatsServer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "demo", "stats")
	src := newFakeSource(nil)
	srv, err := NewStatsServer(path, src, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	defer srv.Close()
	c, err := scxstats.Dial(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// Before the first scheduler: EAGAIN for both.
	for _, req := range []string{"stats", "stats_meta"} {
		var rerr *scxstats.RemoteError
		if err := c.Request(ctx, req, nil, nil); !errors.As(err, &rerr) || !errors.Is(err, syscall.EAGAIN) ||
			!strings.Contains(rerr.Msg, "no scheduler attached") {
			t.Errorf("%s without a scheduler: %v, want EAGAIN", req, err)
		}
	}

	src.snap.Store(fakeSnapshot())
	var stats map[string]any
	if err := c.Request(ctx, "stats", nil, &stats); err != nil {
		t.Fatal(err)
	}
	if stats["enqueued"] != 1520.0 || stats["nest_size"] != 3.0 || stats["dsq"].(map[string]any)["steals"] != 3.0 {
		t.Errorf("stats: %v", stats)
	}
	if err := c.Request(ctx, "stats", map[string]string{"target": "nope"}, nil); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("stats of an unknown target: %v, want EINVAL", err)
	}
	var metas map[string]scxstats.Meta
	if err := c.Request(ctx, "stats_meta", nil, &metas); err != nil {
		t.Fatal(err)
	}
	snap := fakeSnapshot()
	want := map[string]scxstats.Meta{}
	for _, m := range newStatsLayout(snap.Scheduler, snap.Sets).metas {
		want[m.Name] = m
	}
	if diff := cmp.Diff(want, metas); diff != "" {
		t.Errorf("stats_meta (-want +got):\n%s", diff)
	}

	// Between two schedulers: the last metas, no stats.
	src.snap.Store(nil)
	metas = nil
	if err := c.Request(ctx, "stats_meta", nil, &metas); err != nil || len(metas) != len(want) {
		t.Errorf("stats_meta between schedulers: %v, %d metas; want the last ones", err, len(metas))
	}
	if err := c.Request(ctx, "stats", nil, nil); !errors.Is(err, syscall.EAGAIN) {
		t.Errorf("stats between schedulers: %v, want EAGAIN", err)
	}

	// Close removes the socket.
	srv.Close()
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if _, err := net.Dial("unix", path); err == nil {
		t.Errorf("%s still accepts connections after Close", path)
	}
}

func TestAppendValue(t *testing.T) {
	for _, c := range []struct {
		v    float64
		want string
	}{
		{1520, "1520"}, {123456789012, "123456789012"}, {0, "0"}, {0.25, "0.25"},
		{397.4443359375, "397.4443"}, {-1.5, "-1.5"}, {0.00001, "0"}, {2.00004, "2"}, {1 << 60, "1152921504606846976"},
	} {
		if got := string(appendValue([]byte("x="), c.v)); got != "x="+c.want {
			t.Errorf("appendValue(%v) = %q, want %q", c.v, got, "x="+c.want)
		}
	}
}
