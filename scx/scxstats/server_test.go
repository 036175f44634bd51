package scxstats

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	srv := exampleServer(t)
	c := dial(t, srv.Path())
	ctx := context.Background()

	var metas map[string]Meta
	if err := c.Request(ctx, "stats_meta", nil, &metas); err != nil {
		t.Fatal(err)
	}
	if want := (map[string]Meta{"ClusterStats": clusterMeta, "DomainStats": domainMeta}); !reflect.DeepEqual(metas, want) {
		t.Errorf("stats_meta\n got %+v\nwant %+v", metas, want)
	}

	type domain struct {
		Name     string  `json:"name"`
		Events   uint64  `json:"events"`
		Pressure float64 `json:"pressure"`
	}
	type cluster struct {
		Name     string            `json:"name"`
		At       uint64            `json:"at"`
		Bitmap   []uint32          `json:"bitmap"`
		DomsDict map[uint64]domain `json:"doms_dict"`
	}
	want := cluster{
		Name: "test cluster", At: 12345, Bitmap: []uint32{0xdeadbeef, 0xbeefdead},
		DomsDict: map[uint64]domain{0: {"domain 0", 1234, 1.234}, 3: {"domain 3", 5678, 5.678}},
	}
	for _, args := range []map[string]string{nil, {"target": "top"}} {
		var got cluster
		if err := c.Request(ctx, "stats", args, &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("stats %v\n got %+v\nwant %+v", args, got, want)
		}
	}
	// nil out discards the value.
	if err := c.Request(ctx, "stats", nil, nil); err != nil {
		t.Fatal(err)
	}
}

func TestErrors(t *testing.T) {
	var calls atomic.Int64
	srv := exampleServer(t)
	srv.Handle("fail", func(map[string]string) (any, error) { return nil, errors.New("plain failure") })
	srv.Handle("enoent", func(args map[string]string) (any, error) {
		return nil, fmt.Errorf("no layer %q: %w", args["layer"], syscall.ENOENT)
	})
	srv.Handle("panic", func(map[string]string) (any, error) { panic("boom") })
	srv.Handle("nan", func(map[string]string) (any, error) { return math.NaN(), nil })
	srv.Handle("echo", func(args map[string]string) (any, error) { calls.Add(1); return args, nil })
	c := dial(t, srv.Path())
	ctx := context.Background()

	for _, tc := range []struct {
		req     string
		args    map[string]string
		errno   syscall.Errno
		msgPart string
	}{
		{"bogus", nil, syscall.EINVAL, `unknown command "bogus"`},
		{"stats", map[string]string{"target": "other"}, syscall.EINVAL, `unknown stat target "other"`},
		{"stats", map[string]string{"target": ""}, syscall.EINVAL, `unknown stat target ""`},
		{"fail", nil, syscall.EINVAL, "plain failure"},
		{"enoent", map[string]string{"layer": "batch"}, syscall.ENOENT, `no layer "batch"`},
		{"panic", nil, syscall.EINVAL, `handler for "panic" failed`},
		{"nan", nil, syscall.EINVAL, "unsupported value: NaN"},
	} {
		err := c.Request(ctx, tc.req, tc.args, nil)
		re := remoteErr(t, err)
		if re.Req != tc.req || syscall.Errno(re.Errno) != tc.errno || !strings.Contains(re.Msg, tc.msgPart) {
			t.Errorf("%s %v: got %+v, want errno %d and message containing %q", tc.req, tc.args, re, tc.errno, tc.msgPart)
		}
		if !errors.Is(err, tc.errno) {
			t.Errorf("%s: errors.Is(%v, %v) = false", tc.req, err, tc.errno)
		}
	}
	if err := c.Request(ctx, "enoent", nil, nil); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ENOENT reply %v does not match fs.ErrNotExist", err)
	}
	// The connection survived all of that.
	var got map[string]string
	if err := c.Request(ctx, "echo", map[string]string{"a": "<b>"}, &got); err != nil || got["a"] != "<b>" {
		t.Errorf("echo after errors: %v, %v", got, err)
	}

	// Malformed lines, on a raw connection. Each gets an EINVAL reply and
	// the connection keeps working.
	rc := dialRaw(t, srv.Path())
	for _, line := range []string{
		``, `{`, `nonsense`, `null`, `[]`, `"stats"`, `{}`, `{"req":1}`, `{"req":null}`,
		`{"REQ":"stats"}`, `{"req":"stats","args":[]}`, `{"req":"stats","args":{"target":1}}`,
		"{\"req\":\"stats\"}garbage", "\xff\xfe",
	} {
		reply := rc.roundTrip(line)
		if !strings.HasPrefix(reply, `{"errno":22,"args":{"resp":"malformed request: `) {
			t.Errorf("line %q: reply %s", line, reply)
		}
	}
	if got := rc.roundTrip(`{"req":"stats","args":null,"extra":{"x":1}}`); got != wantStatsReply {
		t.Errorf("request with null args and an extra key: %s", got)
	}
	if got := rc.roundTrip(" \t{\"req\":\"stats\"}\r"); got != wantStatsReply {
		t.Errorf("request with surrounding white space: %s", got)
	}
}

func TestLongLine(t *testing.T) {
	srv := serve(t, sockPath(t), &ServerOptions{
		MaxLineBytes: 100,
		Stats:        func(map[string]string) (any, error) { return 1, nil },
	})
	rc := dialRaw(t, srv.Path())
	fits := `{"req":"stats","args":{"pad":"` + strings.Repeat("x", 100-33) + `"}}`
	if len(fits) != 100 {
		t.Fatalf("len(fits) = %d", len(fits))
	}
	if got := rc.roundTrip(fits); got != `{"errno":0,"args":{"resp":1}}`+"\n" {
		t.Errorf("100-byte line: %s", got)
	}
	want := `{"errno":90,"args":{"resp":"request line longer than 100 bytes"}}` + "\n"
	for _, n := range []int{101, 5000, 1 << 20} {
		if got := rc.roundTrip(strings.Repeat("y", n)); got != want {
			t.Errorf("%d-byte line: %s", n, got)
		}
	}
	if got := rc.roundTrip(`{"req":"stats"}`); got != `{"errno":0,"args":{"resp":1}}`+"\n" {
		t.Errorf("after long lines: %s", got)
	}

	// The client side sees EMSGSIZE as a RemoteError.
	c := dial(t, srv.Path())
	err := c.Request(context.Background(), "stats", map[string]string{"pad": strings.Repeat("z", 200)}, nil)
	if !errors.Is(err, syscall.EMSGSIZE) {
		t.Errorf("long request: %v", err)
	}
}

// A last request ended by EOF rather than a newline is still answered, as
// by the Rust server (BufRead::read_line returns the partial line).
func TestRequestAtEOF(t *testing.T) {
	srv := exampleServer(t)
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: srv.Path(), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte(`{"req":"stats"}`))
	c.CloseWrite()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	if b.String() != wantStatsReply {
		t.Errorf("got %q", b.String())
	}
}

func TestStaleSocket(t *testing.T) {
	path := sockPath(t)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	// A socket whose server is gone: bound, never unlinked, closed.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if fi, err := os.Lstat(path); err != nil || fi.Mode().Type() != fs.ModeSocket {
		t.Fatalf("stale socket not in place: %v", err)
	}
	srv := serve(t, path, &ServerOptions{Stats: func(map[string]string) (any, error) { return "fresh", nil }})
	var got string
	if err := dial(t, path).Request(context.Background(), "stats", nil, &got); err != nil || got != "fresh" {
		t.Errorf("stats from replacement server: %q, %v", got, err)
	}
	if err := srv.stopAndWait(t); err != nil {
		t.Errorf("Serve: %v", err)
	}
}

func TestBusy(t *testing.T) {
	path := sockPath(t)
	first := serve(t, path, &ServerOptions{Stats: func(map[string]string) (any, error) { return "first", nil }})
	_, err := NewServer(path, nil)
	if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), path) {
		t.Fatalf("second server: %v, want ErrBusy naming %s", err, path)
	}
	// The first one is untouched.
	var got string
	if err := dial(t, first.Path()).Request(context.Background(), "stats", nil, &got); err != nil || got != "first" {
		t.Errorf("first server after the second failed: %q, %v", got, err)
	}
}

func TestNotSocket(t *testing.T) {
	dir := sockDir(t)
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "dir")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(file, link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{file, sub, link} {
		if _, err := NewServer(p, nil); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "not a socket") {
			t.Errorf("NewServer(%s): %v, want ErrInvalid", p, err)
		}
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "keep me" {
		t.Errorf("file changed: %q, %v", b, err)
	}
	if _, err := os.Lstat(link); err != nil {
		t.Errorf("symlink removed: %v", err)
	}
}

func TestNames(t *testing.T) {
	if p, err := DefaultPath(DefaultName); err != nil || p != "/var/run/scx/root/stats" {
		t.Errorf("DefaultPath(root) = %q, %v", p, err)
	}
	if p, err := DefaultPath("scx_simple-2.x"); err != nil || p != "/var/run/scx/scx_simple-2.x/stats" {
		t.Errorf("DefaultPath = %q, %v", p, err)
	}
	for _, name := range []string{"", "a/b", "/abs", "..", ".", "a..b", "x\x00y", strings.Repeat("n", 100)} {
		if p, err := DefaultPath(name); !errors.Is(err, ErrInvalid) {
			t.Errorf("DefaultPath(%q) = %q, %v; want ErrInvalid", name, p, err)
		}
	}
	for _, path := range []string{"", "/tmp/" + strings.Repeat("p", 103), "/tmp/a\x00b"} {
		if _, err := NewServer(path, nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("NewServer(%q): %v, want ErrInvalid", path, err)
		}
	}
}

func TestInvalidOptions(t *testing.T) {
	ok := func(map[string]string) (any, error) { return nil, nil }
	for name, opts := range map[string]*ServerOptions{
		"both stats":      {Stats: ok, OpenStats: func() (HandlerFunc, error) { return ok, nil }},
		"negative":        {MaxConns: -1},
		"unnamed meta":    {Metas: []Meta{{}}},
		"duplicate":       {Metas: []Meta{{Name: "A"}, {Name: "A"}}},
		"two tops":        {Metas: []Meta{{Name: "A", Top: TopValue}, {Name: "B", Top: TopValue}}},
		"no shape":        {Metas: []Meta{{Name: "A", Fields: map[string]Field{"f": {Desc: "x"}}}}},
		"two shapes":      {Metas: []Meta{{Name: "A", Fields: map[string]Field{"f": {Datum: KindU64, Array: KindU64}}}}},
		"unknown type":    {Metas: []Meta{{Name: "A", Fields: map[string]Field{"f": {Datum: Kind{Type: "bool"}}}}}},
		"both in kind":    {Metas: []Meta{{Name: "A", Fields: map[string]Field{"f": {Datum: Kind{Type: "u64", Struct: "A"}}}}}},
		"missing struct":  {Metas: []Meta{{Name: "A", Fields: map[string]Field{"f": {Array: StructKind("B")}}}}},
		"float key":       {Metas: []Meta{{Name: "A", Fields: map[string]Field{"f": {Dict: &Dict{Key: KindFloat, Datum: KindU64}}}}}},
		"struct key":      {Metas: []Meta{{Name: "A", Fields: map[string]Field{"f": {Dict: &Dict{Key: StructKind("A"), Datum: KindU64}}}}}},
		"empty dict item": {Metas: []Meta{{Name: "A", Fields: map[string]Field{"f": {Dict: &Dict{Key: KindU64}}}}}},
		"self loop":       {Metas: []Meta{{Name: "A", Fields: map[string]Field{"f": {Datum: StructKind("A")}}}}},
		"loop": {Metas: []Meta{
			{Name: "A", Fields: map[string]Field{"b": {Array: StructKind("B")}}},
			{Name: "B", Fields: map[string]Field{"a": {Dict: &Dict{Key: KindString, Datum: StructKind("A")}}}},
		}},
	} {
		path := sockPath(t)
		if _, err := NewServer(path, opts); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: NewServer: %v, want ErrInvalid", name, err)
		}
		if _, err := os.Lstat(path); err == nil {
			t.Errorf("%s: socket left behind", name)
		}
	}
}

func TestConcurrentClients(t *testing.T) {
	var served atomic.Int64
	srv := serve(t, sockPath(t), &ServerOptions{
		Metas: []Meta{clusterMeta, domainMeta},
		Stats: func(map[string]string) (any, error) { served.Add(1); return clusterStats, nil },
	})
	const clients, requests = 40, 25
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Go(func() {
			c, err := Dial(context.Background(), srv.Path())
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			for j := range requests {
				if j%5 == 0 {
					var m map[string]Meta
					if err := c.Request(context.Background(), "stats_meta", nil, &m); err != nil || len(m) != 2 {
						errs <- fmt.Errorf("client %d: stats_meta: %v (%d metas)", i, err, len(m))
						return
					}
					continue
				}
				var s map[string]any
				if err := c.Request(context.Background(), "stats", nil, &s); err != nil || s["name"] != "test cluster" {
					errs <- fmt.Errorf("client %d: stats: %v, %v", i, err, s)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got, want := served.Load(), int64(clients*requests*4/5); got != want {
		t.Errorf("stats handler ran %d times, want %d", got, want)
	}

	// One Client shared by goroutines.
	c := dial(t, srv.Path())
	var wg2 sync.WaitGroup
	var failed atomic.Int64
	for range 20 {
		wg2.Go(func() {
			var s map[string]any
			if err := c.Request(context.Background(), "stats", nil, &s); err != nil || s["name"] != "test cluster" {
				failed.Add(1)
			}
		})
	}
	wg2.Wait()
	if failed.Load() != 0 {
		t.Errorf("%d shared-client requests failed", failed.Load())
	}
}

func TestMaxConns(t *testing.T) {
	srv := serve(t, sockPath(t), &ServerOptions{
		MaxConns: 1,
		Stats:    func(map[string]string) (any, error) { return 1, nil },
	})
	ctx := context.Background()
	first := dial(t, srv.Path())
	if err := first.Request(ctx, "stats", nil, nil); err != nil {
		t.Fatal(err) // first now holds the only slot
	}
	second := dial(t, srv.Path())
	if err := second.Request(ctx, "stats", nil, nil); !errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("second connection: %v, want EAGAIN", err)
	}
	first.Close()
	// The slot frees once the server has seen the disconnect.
	waitFor(t, "the slot to free up", func() bool {
		c, err := Dial(ctx, srv.Path())
		if err != nil {
			return false
		}
		defer c.Close()
		return c.Request(ctx, "stats", nil, nil) == nil
	})
}

func TestServeStops(t *testing.T) {
	path := sockPath(t)
	srv := serve(t, path, &ServerOptions{Stats: func(map[string]string) (any, error) { return 1, nil }})
	c := dial(t, path)
	if err := c.Request(context.Background(), "stats", nil, nil); err != nil {
		t.Fatal(err)
	}
	idle := dialRaw(t, path) // connected, never sends
	if err := srv.stopAndWait(t); err != nil {
		t.Errorf("Serve returned %v after cancellation", err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket file still there: %v", err)
	}
	if err := c.Request(context.Background(), "stats", nil, nil); err == nil {
		t.Error("request after shutdown succeeded")
	}
	if _, err := idle.br.ReadByte(); err == nil {
		t.Error("idle connection still open after shutdown")
	}
	if err := srv.Serve(context.Background()); err == nil {
		t.Error("second Serve succeeded")
	}
	// The directory stays; a new server can take the path.
	serve(t, path, nil)
}

// Serve must not remove a socket file that is no longer its own.
func TestServeKeepsForeignSocket(t *testing.T) {
	path := sockPath(t)
	srv := serve(t, path, nil)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	other, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	srv.stopAndWait(t)
	if _, err := os.Lstat(path); err != nil {
		t.Errorf("foreign socket removed: %v", err)
	}
}

func TestClose(t *testing.T) {
	path := sockPath(t)
	srv, err := NewServer(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket left after Close: %v", err)
	}
	if err := srv.Serve(context.Background()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Serve after Close: %v", err)
	}
	srv.Close()

	// Close stops a running Serve and waits for it.
	r := serve(t, sockPath(t), nil)
	// An answered request shows Serve runs.
	if err := dial(t, r.Path()).Request(context.Background(), "stats_meta", nil, nil); err != nil {
		t.Fatal(err)
	}
	r.Close()
	if _, err := os.Lstat(r.Path()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket left after Close: %v", err)
	}
	if err := r.wait(t); err != nil {
		t.Errorf("Serve: %v", err)
	}
	r.Close() // again: no effect
}

// Serve waits for a running handler before returning, so callers can free
// what handlers use once it has.
func TestServeWaitsForHandlers(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	var finished atomic.Bool
	srv := serve(t, sockPath(t), &ServerOptions{Stats: func(map[string]string) (any, error) {
		close(started)
		<-release
		finished.Store(true)
		return 1, nil
	}})
	c := dial(t, srv.Path())
	go c.Request(context.Background(), "stats", nil, nil)
	<-started
	srv.cancel()
	select {
	case <-srv.done:
		t.Fatal("Serve returned while a handler ran")
	default:
	}
	close(release)
	if err := srv.wait(t); err != nil {
		t.Error(err)
	}
	if !finished.Load() {
		t.Error("Serve returned before the handler finished")
	}
}

func TestOpenStats(t *testing.T) {
	var opened atomic.Int64
	srv := serve(t, sockPath(t), &ServerOptions{
		OpenStats: func() (HandlerFunc, error) {
			opened.Add(1)
			n := 0 // per-connection state, as Rust schedulers keep for deltas
			return func(map[string]string) (any, error) { n++; return n, nil }, nil
		},
	})
	ctx := context.Background()
	a, b := dial(t, srv.Path()), dial(t, srv.Path())
	var got int
	for i, tc := range []struct {
		c    *Client
		want int
	}{{a, 1}, {a, 2}, {b, 1}, {a, 3}, {b, 2}} {
		if err := tc.c.Request(ctx, "stats", nil, &got); err != nil || got != tc.want {
			t.Errorf("request %d: %d, %v; want %d", i, got, err, tc.want)
		}
	}
	if opened.Load() != 2 {
		t.Errorf("OpenStats ran %d times, want 2", opened.Load())
	}

	failing := serve(t, sockPath(t), &ServerOptions{
		OpenStats: func() (HandlerFunc, error) { return nil, fmt.Errorf("maps gone: %w", syscall.ENODEV) },
	})
	if err := dial(t, failing.Path()).Request(ctx, "stats", nil, nil); !errors.Is(err, syscall.ENODEV) {
		t.Errorf("failing OpenStats: %v", err)
	}
}

func TestNoStats(t *testing.T) {
	srv := serve(t, sockPath(t), nil)
	c := dial(t, srv.Path())
	var metas map[string]Meta
	if err := c.Request(context.Background(), "stats_meta", nil, &metas); err != nil || len(metas) != 0 || metas == nil {
		t.Errorf("stats_meta without metas: %v, %v", metas, err)
	}
	if err := c.Request(context.Background(), "stats", nil, nil); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("stats without a handler: %v", err)
	}
}

func TestHandleOverrides(t *testing.T) {
	srv := exampleServer(t)
	srv.Handle("stats", func(args map[string]string) (any, error) { return "custom " + args["target"], nil })
	var got string
	if err := dial(t, srv.Path()).Request(context.Background(), "stats", map[string]string{"target": "x"}, &got); err != nil || got != "custom x" {
		t.Errorf("overridden stats: %q, %v", got, err)
	}
	for _, bad := range []func(){
		func() { srv.Handle("", func(map[string]string) (any, error) { return nil, nil }) },
		func() { srv.Handle("x", nil) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("Handle accepted a bad registration")
				}
			}()
			bad()
		}()
	}
}
