package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scxkit/scxkit/runner"
	"github.com/scxkit/scxkit/scx"
	"github.com/scxkit/scxkit/scx/scxstats"
)

// serveStats serves the stats protocol at a new path with opts until the
// test ends, and returns the path.
func serveStats(t *testing.T, start func(path string) (*scxstats.Server, error)) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "stats")
	srv, err := start(path)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(context.Background())
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return path
}

func TestStatsUsage(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none")
	stale := filepath.Join(t.TempDir(), "stale")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	const nobody = "scxkit-test-no-such-scheduler"
	for _, c := range []struct {
		args   []string
		code   int
		stderr string
		stdout string
	}{
		{[]string{"stats"}, 2, "scxkit stats: name the scheduler, e.g. scxkit stats simple, or give --socket PATH\nUsage: scxkit stats", ""},
		{[]string{"stats", "a", "b"}, 2, `scxkit stats: unexpected argument "b": give one scheduler name`, ""},
		{[]string{"stats", "--socket", "/x", "a"}, 2, "give the scheduler's NAME or --socket PATH, not both", ""},
		{[]string{"stats", "../x"}, 2, `scxkit stats: "../x": not a scheduler name`, ""},
		{[]string{"stats", "a", "--nope"}, 2, "scxkit stats: flag provided but not defined: -nope", ""},
		{[]string{"stats", "--nope"}, 2, "flag provided but not defined: -nope", ""},
		{[]string{"stats", "a", "-h"}, 0, "", "Usage: scxkit stats"},
		{[]string{"help", "stats"}, 0, "", "/var/run/scx/NAME/stats"},
		{[]string{"stats", "--socket", missing}, 1, "scxkit stats: no stats server at " + missing + ": is the scheduler running?", ""},
		{[]string{"stats", nobody, "--json"}, 1, "no stats server at /var/run/scx/" + nobody + "/stats: is " + nobody + " running?", ""},
		{[]string{"stats", "--socket", stale}, 1, "nothing listens on " + stale + ": the scheduler is not running", ""},
	} {
		code, stdout, stderr := runArgs(t, c.args...)
		if code != c.code || !strings.Contains(stderr, c.stderr) || (c.stderr == "") != (stderr == "") ||
			!strings.Contains(stdout, c.stdout) || (c.stdout == "") != (stdout == "") {
			t.Errorf("%q: status %d\nstdout:\n%s\nstderr:\n%s\nwant status %d, stdout with %q, stderr with %q",
				c.args, code, stdout, stderr, c.code, c.stdout, c.stderr)
		}
	}
}

// runnerSnapshot is a scheduler's stats with a component of plain and
// vector stats.
func runnerSnapshot() *scx.Snapshot {
	return &scx.Snapshot{
		Scheduler: "demo",
		Time:      time.Date(2026, 12, 5, 12, 0, 1, 0, time.UTC),
		Sets: []scx.StatSet{
			{
				Descs: []scx.StatDesc{{Name: "enqueued", Help: "Tasks queued.", Kind: scx.Counter}, {Name: "dispatched", Help: "Tasks dispatched.", Kind: scx.Counter},
					{Name: "nest_size", Help: "CPUs in the nest.", Kind: scx.Gauge}},
				Samples: []scx.Sample{{Stat: 0, Value: 1520}, {Stat: 1, Value: 1490}, {Stat: 2, Value: -1}},
			},
			{
				Component: "dsq",
				Descs: []scx.StatDesc{
					{Name: "steals", Help: "Tasks stolen.", Kind: scx.Counter},
					{Name: "queued", Help: "Tasks queued now.", Kind: scx.Gauge, Label: "domain"},
					{Name: "load", Help: "Average load.", Kind: scx.Gauge},
				},
				Samples: []scx.Sample{{Stat: 0, Value: 3}, {Stat: 1, Label: "0", Value: 2}, {Stat: 1, Label: "10", Value: 1}, {Stat: 1, Label: "2", Value: 0}, {Stat: 2, Value: 0.25}},
			},
			{
				Component: "cg",
				Descs:     []scx.StatDesc{{Name: "wait_ns", Help: "Wait.", Kind: scx.Gauge, Label: "cgroup"}},
				Samples:   []scx.Sample{{Stat: 0, Label: "/a b", Value: 7}},
			},
		},
	}
}

// TestStatsRunner reads a runner's stats server: its stats under the
// names of the runner's stats lines, raw, and described.
func TestStatsRunner(t *testing.T) {
	var snap atomic.Pointer[scx.Snapshot]
	snap.Store(runnerSnapshot())
	src := runner.SourceFunc(func(dst *scx.Snapshot) (bool, error) {
		s := snap.Load()
		if s == nil {
			return false, nil
		}
		*dst = *s
		return true, nil
	})
	path := serveStats(t, func(path string) (*scxstats.Server, error) {
		return runner.NewStatsServer(path, src, slog.New(slog.NewTextHandler(io.Discard, nil)))
	})

	code, stdout, stderr := runArgs(t, "stats", "--socket", path)
	want := `cg.wait_ns{cgroup="/a b"} 7
dispatched 1490
dsq.queued{domain=0} 2
dsq.queued{domain=2} 0
dsq.queued{domain=10} 1
dsq.load 0.25
dsq.steals 3
enqueued 1520
nest_size -1
`
	if code != 0 || stderr != "" {
		t.Fatalf("stats: status %d, stderr:\n%s", code, stderr)
	}
	if diff := cmp.Diff(want, stdout); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
	// The names are those of the runner's stats line.
	line := string(runner.AppendStatsLine(nil, runnerSnapshot()))
	for l := range strings.Lines(stdout) {
		name, _, _ := strings.Cut(l, " "+strings.Fields(l)[len(strings.Fields(l))-1])
		if !strings.Contains(line, " "+name+"=") {
			t.Errorf("%s is not in the stats line %s", name, line)
		}
	}

	code, stdout, _ = runArgs(t, "stats", "--socket", path, "--json")
	var got map[string]any
	if err := json.Unmarshal([]byte(stdout), &got); code != 0 || err != nil || got["enqueued"] != 1520.0 || strings.Count(stdout, "\n") != 1 {
		t.Errorf("stats --json: status %d, %v:\n%s", code, err, stdout)
	}

	code, stdout, _ = runArgs(t, "stats", "--socket", path, "--meta")
	for _, w := range []string{"NAME ", "cg.wait_ns{cgroup}  ", "float", "Wait.", "dsq.queued{domain}", "Tasks queued now.", "enqueued", "u64", "Tasks queued."} {
		if code != 0 || !strings.Contains(stdout, w) {
			t.Errorf("stats --meta: status %d, lacks %q:\n%s", code, w, stdout)
		}
	}
	// Each stat's kind, from the runner's _om_type attribute.
	kinds := map[string]string{}
	for l := range strings.Lines(stdout) {
		if f := strings.Fields(l); len(f) >= 3 {
			kinds[f[0]] = f[1] + " " + f[2]
		}
	}
	for name, want := range map[string]string{"NAME": "TYPE KIND", "enqueued": "u64 counter", "nest_size": "i64 gauge",
		"dsq.steals": "float counter", "dsq.load": "float gauge", "dsq.queued{domain}": "float gauge"} {
		if kinds[name] != want {
			t.Errorf("stats --meta: %s is %q, want %q:\n%s", name, kinds[name], want, stdout)
		}
	}
	code, stdout, _ = runArgs(t, "stats", "--socket", path, "--meta", "--json")
	var metas map[string]scxstats.Meta
	if err := json.Unmarshal([]byte(stdout), &metas); code != 0 || err != nil || metas["demo"].Top != "true" {
		t.Errorf("stats --meta --json: status %d, %v:\n%s", code, err, stdout)
	}

	// No scheduler attached: the server says so, and so does scxkit.
	snap.Store(nil)
	code, _, stderr = runArgs(t, "stats", "--socket", path)
	if code != 1 || !strings.Contains(stderr, path+": the scheduler is not attached right now") {
		t.Errorf("stats without a scheduler: status %d, stderr:\n%s", code, stderr)
	}
}

// TestStatsRustShape reads a server shaped like the Rust crate's example
// (scx_stats's README): a dict of structs with _om_label, a list, strings.
func TestStatsRustShape(t *testing.T) {
	metas := []scxstats.Meta{
		{Name: "ClusterStats", Desc: "cluster statistics", Top: scxstats.TopValue, Fields: map[string]scxstats.Field{
			"at":        {Datum: scxstats.KindU64, Desc: "update timestamp"},
			"bitmap":    {Array: scxstats.KindU64, Desc: "some bitmap we want to report", User: map[string]string{"_om_skip": "true"}},
			"doms_dict": {Desc: "domain statistics", Dict: &scxstats.Dict{Key: scxstats.KindU64, Datum: scxstats.StructKind("DomainStats")}},
			"name":      {Datum: scxstats.KindString},
		}},
		{Name: "DomainStats", Desc: "domain statistics", User: map[string]string{"_om_label": "domain_name", "_om_prefix": "d_"}, Fields: map[string]scxstats.Field{
			"events":   {Datum: scxstats.KindU64, Desc: "an event counter"},
			"name":     {Datum: scxstats.KindString},
			"pressure": {Datum: scxstats.KindFloat, Desc: "a gauge number"},
		}},
	}
	reply := json.RawMessage(`{"at":12345,"bitmap":[3735928559,3203391149],"doms_dict":{"0":{"events":1234,"name":"domain 0","pressure":1.234},` +
		`"3":{"events":5678,"name":"domain 3","pressure":5.678}},"name":"test cluster"}`)
	stats := func(map[string]string) (any, error) { return reply, nil }
	withMetas := serveStats(t, func(path string) (*scxstats.Server, error) {
		return scxstats.NewServer(path, &scxstats.ServerOptions{Metas: metas, Stats: stats})
	})
	code, stdout, stderr := runArgs(t, "stats", "--socket", withMetas)
	want := `at 12345
bitmap{index=0} 3735928559
bitmap{index=1} 3203391149
events{domain_name=0} 1234
name{domain_name=0} "domain 0"
pressure{domain_name=0} 1.234
events{domain_name=3} 5678
name{domain_name=3} "domain 3"
pressure{domain_name=3} 5.678
name "test cluster"
`
	if code != 0 || stderr != "" {
		t.Fatalf("stats: status %d, stderr:\n%s", code, stderr)
	}
	if diff := cmp.Diff(want, stdout); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
	code, stdout, _ = runArgs(t, "stats", "--socket", withMetas, "--meta")
	for _, w := range []string{"bitmap{index}", "pressure{domain_name}", "a gauge number"} {
		if code != 0 || !strings.Contains(stdout, w) {
			t.Errorf("stats --meta: status %d, lacks %q:\n%s", code, w, stdout)
		}
	}
	// The Rust crate's servers do not say a stat's kind.
	for l := range strings.Lines(stdout) {
		if f := strings.Fields(l); len(f) >= 3 && f[0] == "at" && f[2] != "-" {
			t.Errorf("stats --meta: kind of at is %q, want - (unknown):\n%s", f[2], stdout)
		}
	}

	// Without metas, by the reply's shape alone.
	noMetas := serveStats(t, func(path string) (*scxstats.Server, error) {
		return scxstats.NewServer(path, &scxstats.ServerOptions{Stats: stats})
	})
	code, stdout, _ = runArgs(t, "stats", "--socket", noMetas)
	if code != 0 || !strings.Contains(stdout, "doms_dict.3.events 5678\n") || !strings.Contains(stdout, "at 12345\n") {
		t.Errorf("stats without metas: status %d:\n%s", code, stdout)
	}
}
