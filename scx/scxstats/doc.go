// Package scxstats speaks the stats protocol of the sched-ext/scx
// ecosystem (the Rust crate scx_stats), server and client side, so that
// scx tools (scxtop, scx_* --monitor, scxstats_to_openmetrics.py) can read
// the stats of scxkit schedulers and scxkit can read theirs.
//
// # Transport
//
// A scheduler listens on a unix stream socket, by default
// /var/run/scx/root/stats: the Rust crate builds the path as
// DefaultDir/NAME/stats with NAME "root" unless told otherwise; no scx
// scheduler changes it and the tools default to it, so
// DefaultPath(DefaultName) is where clients look. Unlike this package, the
// Rust server removes whatever is at the path when it starts and leaves its
// socket behind when it exits. A client connects, writes one JSON object per line, and
// reads exactly one JSON line back per request, for as long as it likes;
// clients commonly keep one connection and poll "stats" on it.
//
// # Requests and replies
//
// A request names the request and carries string arguments:
//
//	{"req":"stats","args":{"target":"top"}}
//
// "args" may be omitted. A reply carries an errno (0 for success) and the
// value under "args"."resp":
//
//	{"errno":0,"args":{"resp":{"at":12345,"name":"test cluster"}}}
//
// Failures carry a Linux errno and a message string as "resp". The Rust
// server sends EINVAL (22) for an unknown request, an unknown stats target,
// an unparsable line, and (unless the error names another errno) a failing
// handler:
//
//	{"req":"bogus"}
//	{"errno":22,"args":{"resp":"unknown command \"bogus\""}}
//
// This server does the same, and also answers EMSGSIZE to a line longer
// than ServerOptions.MaxLineBytes and EAGAIN when ServerOptions.MaxConns
// connections are already served. The Client returns error replies as
// *RemoteError.
//
// The protocol defines two requests:
//
//   - "stats_meta" returns the description of every stats struct: an
//     object mapping struct names to Meta.
//   - "stats" returns the current stats of the target named by the
//     "target" argument, "top" by default: the top-level struct (the Meta
//     whose "top" is "true"), with nested structs inline. The Rust server
//     passes all the arguments to the code producing the stats.
//
// Servers may answer further requests (Server.Handle).
//
// # Metadata
//
// For a top-level struct with a nested one, "stats_meta" answers (shown
// indented; it travels on one line):
//
//	{
//	  "ClusterStats": {
//	    "desc": "cluster statistics",
//	    "fields": {
//	      "at":        {"datum": "u64", "desc": "update timestamp"},
//	      "bitmap":    {"array": "u64", "user": {"_om_skip": "true"}},
//	      "doms_dict": {"dict": {"datum": {"struct": "DomainStats"}, "key": "u64"}},
//	      "name":      {"datum": "string"}
//	    },
//	    "name": "ClusterStats",
//	    "top": "true"
//	  },
//	  "DomainStats": {
//	    "fields": {"pressure": {"datum": "float", "desc": "a gauge number"}},
//	    "name": "DomainStats",
//	    "user": {"_om_label": "domain_name", "_om_prefix": "d_"}
//	  }
//	}
//
// Each field has one of three shapes, "datum" (one value), "array" (a
// list) or "dict" (a map with "key" and "datum" kinds), and each kind is
// "i64", "u64", "float", "string" or {"struct": NAME}. Descriptions and
// "_"-prefixed user attributes are optional. Meta, Field, Dict and Kind
// encode and decode this exactly.
//
// # Serving
//
//	srv, err := scxstats.NewServer(path, &scxstats.ServerOptions{
//		Metas: []scxstats.Meta{clusterMeta, domainMeta},
//		Stats: func(map[string]string) (any, error) { return snapshot(), nil },
//	})
//	...
//	err = srv.Serve(ctx) // until ctx ends; removes the socket
//
// NewServer refuses (ErrBusy) to take over a socket a live server listens
// on, replaces a stale one, and never removes a file that is not a socket.
package scxstats
