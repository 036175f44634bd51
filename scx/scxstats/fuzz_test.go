package scxstats

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"
)

// fakeConn feeds serveConn a fixed input and collects its output.
type fakeConn struct {
	net.Conn // not used; calls to other methods panic
	r        io.Reader
	w        bytes.Buffer
}

func (c *fakeConn) Read(b []byte) (int, error)       { return c.r.Read(b) }
func (c *fakeConn) Write(b []byte) (int, error)      { return c.w.Write(b) }
func (c *fakeConn) Close() error                     { return nil }
func (c *fakeConn) SetDeadline(time.Time) error      { return nil }
func (c *fakeConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fakeConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzRequest feeds arbitrary bytes to a connection handler and checks that
// it answers every line (including a last one cut off by EOF) with one
// valid JSON reply carrying an errno, and never panics.
func FuzzRequest(f *testing.F) {
	for _, seed := range []string{
		`{"req":"stats"}` + "\n",
		`{"req":"stats_meta","args":{}}` + "\n",
		`{"req":"stats","args":{"target":"top"}}` + "\n" + `{"req":"echo","args":{"k":"\u00ff"}}`,
		`{"req":"panic"}` + "\n",
		`{"req":"bogus"}` + "\n\n\n",
		"{\"req\":\"echo\",\"args\":{\"\xff\":\"\xfe\"}}\n",
		"\x00\xff{[\"",
		`{"req":"stats","args":{"pad":"` + string(bytes.Repeat([]byte("x"), 300)) + `"}}` + "\n" + `{"req":"stats"}`,
	} {
		f.Add([]byte(seed))
	}
	srv, err := NewServer(sockPath(f), &ServerOptions{
		Metas:        []Meta{clusterMeta, domainMeta},
		Stats:        func(map[string]string) (any, error) { return clusterStats, nil },
		MaxLineBytes: 256,
		Logger:       slog.New(slog.DiscardHandler),
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { srv.Close() })
	srv.Handle("echo", func(args map[string]string) (any, error) { return args, nil })
	srv.Handle("panic", func(args map[string]string) (any, error) { panic(args) })

	f.Fuzz(func(t *testing.T, in []byte) {
		c := &fakeConn{r: bytes.NewReader(in)}
		srv.slots <- struct{}{}
		if !srv.track(c) {
			t.Fatal("server closed")
		}
		srv.serveConn(c)

		want := bytes.Count(in, []byte("\n"))
		if len(in) > 0 && in[len(in)-1] != '\n' {
			want++
		}
		out := c.w.Bytes()
		if len(out) > 0 && out[len(out)-1] != '\n' {
			t.Fatalf("output does not end in a newline: %q", out)
		}
		replies := bytes.Split(bytes.TrimSuffix(out, []byte("\n")), []byte("\n"))
		if len(out) == 0 {
			replies = nil
		}
		if len(replies) != want {
			t.Fatalf("%d replies to %d lines; input %q, output %q", len(replies), want, in, out)
		}
		for _, r := range replies {
			var env struct {
				Errno *int                       `json:"errno"`
				Args  map[string]json.RawMessage `json:"args"`
			}
			if err := json.Unmarshal(r, &env); err != nil {
				t.Fatalf("reply %q is not valid JSON: %v", r, err)
			}
			if env.Errno == nil {
				t.Fatalf("reply %q has no errno", r)
			}
			if _, ok := env.Args["resp"]; !ok {
				t.Fatalf("reply %q has no resp", r)
			}
		}
	})
}
