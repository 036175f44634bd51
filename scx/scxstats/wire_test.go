package scxstats

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The metas and values of the Rust crate's example
// (rust/scx_stats/examples/stats_defs.rs.h and examples/server.rs in
// github.com/sched-ext/scx), whose wire exchange the crate's README shows.
var (
	domainMeta = Meta{
		Name: "DomainStats",
		Desc: "domain statistics",
		User: map[string]string{"_om_prefix": "d_", "_om_label": "domain_name"},
		Fields: map[string]Field{
			"name":     {Datum: KindString},
			"events":   {Datum: KindU64, Desc: "an event counter"},
			"pressure": {Datum: KindFloat, Desc: "a gauge number"},
		},
	}
	clusterMeta = Meta{
		Name: "ClusterStats",
		Desc: "cluster statistics",
		Top:  TopValue,
		Fields: map[string]Field{
			"name":      {Datum: KindString},
			"at":        {Datum: KindU64, Desc: "update timestamp"},
			"bitmap":    {Array: KindU64, Desc: "some bitmap we want to report", User: map[string]string{"_om_skip": "true"}},
			"doms_dict": {Dict: &Dict{Key: KindU64, Datum: StructKind("DomainStats")}, Desc: "domain statistics"},
		},
	}
	clusterStats = map[string]any{
		"name":   "test cluster",
		"at":     uint64(12345),
		"bitmap": []uint32{0xdeadbeef, 0xbeefdead},
		"doms_dict": map[uint64]any{
			0: map[string]any{"name": "domain 0", "events": uint64(1234), "pressure": 1.234},
			3: map[string]any{"name": "domain 3", "events": uint64(5678), "pressure": 5.678},
		},
	}
)

// Expected reply lines, byte for byte as the Rust server writes them.
//
// The Rust server (rust/scx_stats/src/server.rs) builds StatsResponse
// {errno: i32, args: BTreeMap<String, Value>} with args {"resp":
// serde_json::to_value(resp)} and writes serde_json::to_string(&resp) plus
// "\n". Going through serde_json::Value (a BTreeMap without the
// preserve_order feature, which no scx crate enables) sorts every object's
// keys. StatsMeta/StatsField/StatsKind (rust/scx_stats/src/stats.rs) are
// serde-derived: attrs are flattened in, Option and empty-map attributes
// are skipped, StatsData is an externally tagged enum ({"datum": K},
// {"array": K}, {"dict": {"key": K, "datum": K}}) and StatsKind unit
// variants are strings ("u64", "float", ...) while Struct(name) is
// {"struct": name}. The README's pretty-printed stats_meta output and its
// "Received:" trace line of a stats request agree with this.
const (
	wantMetaReply = `{"errno":0,"args":{"resp":{` +
		`"ClusterStats":{"desc":"cluster statistics","fields":{` +
		`"at":{"datum":"u64","desc":"update timestamp"},` +
		`"bitmap":{"array":"u64","desc":"some bitmap we want to report","user":{"_om_skip":"true"}},` +
		`"doms_dict":{"desc":"domain statistics","dict":{"datum":{"struct":"DomainStats"},"key":"u64"}},` +
		`"name":{"datum":"string"}},"name":"ClusterStats","top":"true"},` +
		`"DomainStats":{"desc":"domain statistics","fields":{` +
		`"events":{"datum":"u64","desc":"an event counter"},` +
		`"name":{"datum":"string"},` +
		`"pressure":{"datum":"float","desc":"a gauge number"}},` +
		`"name":"DomainStats","user":{"_om_label":"domain_name","_om_prefix":"d_"}}}}}` + "\n"

	// Verbatim from the README's client trace ("Received: ...").
	wantStatsReply = `{"errno":0,"args":{"resp":{"at":12345,"bitmap":[3735928559,3203391149],"doms_dict":{"0":{"events":1234,"name":"domain 0","pressure":1.234},"3":{"events":5678,"name":"domain 3","pressure":5.678}},"name":"test cluster"}}}` + "\n"

	// Verbatim from the README's client trace ("Sending: ..."); the Rust
	// client serializes StatsRequest {req, args} in field order.
	wantStatsRequest = `{"req":"stats","args":{"target":"top"}}` + "\n"
)

// The README's pretty-printed stats_meta output, which a Go client must
// decode.
const readmeMeta = `{
  "ClusterStats": {
    "desc": "cluster statistics",
    "fields": {
      "at": {"datum": "u64", "desc": "update timestamp"},
      "bitmap": {"array": "u64", "desc": "some bitmap we want to report", "user": {"_om_skip": "true"}},
      "doms_dict": {"desc": "domain statistics", "dict": {"datum": {"struct": "DomainStats"}, "key": "u64"}},
      "name": {"datum": "string"}
    },
    "name": "ClusterStats",
    "top": "true"
  },
  "DomainStats": {
    "desc": "domain statistics",
    "fields": {
      "events": {"datum": "u64", "desc": "an event counter"},
      "name": {"datum": "string"},
      "pressure": {"datum": "float", "desc": "a gauge number"}
    },
    "name": "DomainStats",
    "user": {"_om_label": "domain_name", "_om_prefix": "d_"}
  }
}`

func exampleServer(t *testing.T) *running {
	return serve(t, sockPath(t), &ServerOptions{
		Metas: []Meta{clusterMeta, domainMeta},
		Stats: func(map[string]string) (any, error) { return clusterStats, nil },
	})
}

// rawConn is a client speaking the protocol by hand.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, path string) *rawConn {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

// roundTrip writes line (a newline is added) and returns the reply line.
func (r *rawConn) roundTrip(line string) string {
	r.t.Helper()
	if _, err := r.c.Write([]byte(line + "\n")); err != nil {
		r.t.Fatal(err)
	}
	reply, err := r.br.ReadString('\n')
	if err != nil {
		r.t.Fatalf("read reply to %q: %v", line, err)
	}
	return reply
}

func TestWireFormat(t *testing.T) {
	srv := exampleServer(t)
	rc := dialRaw(t, srv.Path())
	for _, tc := range []struct{ req, want string }{
		{`{"req":"stats_meta","args":{}}`, wantMetaReply},
		{`{"req":"stats_meta"}`, wantMetaReply},
		{strings.TrimSuffix(wantStatsRequest, "\n"), wantStatsReply},
		// What scx_utils::monitor_stats and scxtop send.
		{`{"req":"stats","args":{}}`, wantStatsReply},
		// What scxstats_to_openmetrics.py sends (json.dumps spacing).
		{`{"req": "stats", "args": {}}`, wantStatsReply},
		{`{"req":"bogus","args":{}}`, `{"errno":22,"args":{"resp":"unknown command \"bogus\""}}` + "\n"},
		{`{"req":"stats","args":{"target":"nope"}}`, `{"errno":22,"args":{"resp":"unknown stat target \"nope\""}}` + "\n"},
	} {
		if got := rc.roundTrip(tc.req); got != tc.want {
			t.Errorf("request %s\n got: %s\nwant: %s", tc.req, got, tc.want)
		}
	}
}

func TestClientRequestLine(t *testing.T) {
	path := sockPath(t)
	ln, _, err := listen(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		defer c.Close()
		line, _ := bufio.NewReader(c).ReadString('\n')
		got <- line
		c.Write([]byte(wantStatsReply))
	}()
	c := dial(t, path)
	var stats map[string]any
	if err := c.Request(context.Background(), "stats", map[string]string{"target": "top"}, &stats); err != nil {
		t.Fatal(err)
	}
	if line := <-got; line != wantStatsRequest {
		t.Errorf("client sent %q, want %q", line, wantStatsRequest)
	}
	if stats["name"] != "test cluster" {
		t.Errorf("decoded stats %v", stats)
	}
}

func TestMetaJSON(t *testing.T) {
	var decoded map[string]Meta
	if err := json.Unmarshal([]byte(readmeMeta), &decoded); err != nil {
		t.Fatal(err)
	}
	want := map[string]Meta{"ClusterStats": clusterMeta, "DomainStats": domainMeta}
	if !reflect.DeepEqual(decoded, want) {
		t.Errorf("decoded README meta\n got %+v\nwant %+v", decoded, want)
	}
	enc, err := marshal(decoded)
	if err != nil {
		t.Fatal(err)
	}
	wantResp := strings.TrimSuffix(strings.TrimPrefix(wantMetaReply, `{"errno":0,"args":{"resp":`), "}}\n")
	if string(enc) != wantResp {
		t.Errorf("re-encoded\n got %s\nwant %s", enc, wantResp)
	}

	// Kinds, fields without attributes, empty fields.
	for _, tc := range []struct {
		v    any
		want string
	}{
		{KindI64, `"i64"`},
		{StructKind("X"), `{"struct":"X"}`},
		{Field{Array: StructKind("X")}, `{"array":{"struct":"X"}}`},
		{Field{Datum: KindI64}, `{"datum":"i64"}`},
		{Meta{Name: "E"}, `{"fields":{},"name":"E"}`},
		{Meta{Name: "<&>", Desc: "a<b"}, `{"desc":"a<b","fields":{},"name":"<&>"}`},
	} {
		b, err := marshal(tc.v)
		if err != nil {
			t.Errorf("marshal %+v: %v", tc.v, err)
		} else if string(b) != tc.want {
			t.Errorf("marshal %+v = %s, want %s", tc.v, b, tc.want)
		}
	}
	for _, bad := range []string{`""`, `1`, `{}`, `{"struct":1}`, `{"struct":"A","x":1}`, `null`, `[]`} {
		var k Kind
		if err := json.Unmarshal([]byte(bad), &k); err == nil {
			t.Errorf("kind %s decoded to %+v, want error", bad, k)
		}
	}
	if _, err := marshal(Kind{}); err == nil {
		t.Error("empty Kind encoded")
	}
	if got := clusterMeta.Fields["doms_dict"].String(); got != "{u64:DomainStats}" {
		t.Errorf("Field.String = %q", got)
	}
	if got := clusterMeta.Fields["bitmap"].String(); got != "[u64]" {
		t.Errorf("Field.String = %q", got)
	}
}
