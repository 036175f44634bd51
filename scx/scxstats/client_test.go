package scxstats

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// blockingServer's stats handler signals started and waits for release.
func blockingServer(t *testing.T) (srv *running, started, release chan struct{}) {
	started, release = make(chan struct{}, 16), make(chan struct{})
	srv = serve(t, sockPath(t), &ServerOptions{Stats: func(map[string]string) (any, error) {
		started <- struct{}{}
		<-release
		return 1, nil
	}})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	return srv, started, release
}

func TestClientCancel(t *testing.T) {
	srv, started, release := blockingServer(t)
	c := dial(t, srv.Path())
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Request(ctx, "stats", nil, nil) }()
	<-started
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled request: %v", err)
	}
	close(release)
	// The reply may still be in flight: the client refuses further use.
	if err := c.Request(context.Background(), "stats", nil, nil); err == nil {
		t.Error("request on a client whose request was cancelled succeeded")
	}

	// Already-ended contexts fail before anything is sent.
	c2 := dial(t, srv.Path())
	if err := c2.Request(ctx, "stats", nil, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("request with a cancelled context: %v", err)
	}
	past, cancel2 := context.WithDeadline(context.Background(), time.Unix(1, 0))
	defer cancel2()
	if err := c2.Request(past, "stats", nil, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("request with an expired context: %v", err)
	}
	// c2 was not harmed.
	if err := c2.Request(context.Background(), "stats_meta", nil, nil); err != nil {
		t.Errorf("request after refused ones: %v", err)
	}
}

func TestClientDeadline(t *testing.T) {
	srv, started, _ := blockingServer(t)
	c := dial(t, srv.Path())
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	// The handler never returns before the test ends, so only the
	// deadline can end this request.
	err := c.Request(ctx, "stats", nil, nil)
	<-started
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("request past its deadline: %v", err)
	}
}

func TestClientClose(t *testing.T) {
	srv, started, _ := blockingServer(t)
	c := dial(t, srv.Path())
	errc := make(chan error, 1)
	go func() { errc <- c.Request(context.Background(), "stats", nil, nil) }()
	<-started
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Errorf("request interrupted by Close: %v", err)
	}
	if err := c.Request(context.Background(), "stats", nil, nil); !errors.Is(err, net.ErrClosed) {
		t.Errorf("request after Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestDialErrors(t *testing.T) {
	dir := sockDir(t)
	missing := filepath.Join(dir, "missing")
	if _, err := Dial(context.Background(), missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Dial(missing): %v", err)
	}
	stale := filepath.Join(dir, "stale")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	defer os.Remove(stale)
	if _, err := Dial(context.Background(), stale); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("Dial(stale): %v", err)
	}
}

// A server that hangs up or sends garbage gives errors, not hangs.
func TestClientBadServer(t *testing.T) {
	path := sockPath(t)
	ln, _, err := listen(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	replies := []string{
		"not json\n",
		`{"args":{"resp":1}}` + "\n",
		`{"errno":2}` + "\n",
		`{"errno":5,"args":{"resp":{"detail":1}}}` + "\n",
		`{"errno":0,"args":{"resp":"text"}}` + "\n",
		"", // hang up
	}
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 4096)
		for _, r := range replies {
			if _, err := c.Read(buf); err != nil || r == "" {
				return
			}
			c.Write([]byte(r))
		}
	}()
	c := dial(t, path)
	ctx := context.Background()
	if err := c.Request(ctx, "a", nil, nil); err == nil {
		t.Error("non-JSON reply accepted")
	}
	if err := c.Request(ctx, "b", nil, nil); err == nil {
		t.Error("reply without errno accepted")
	}
	if re := remoteErr(t, c.Request(ctx, "c", nil, nil)); re.Errno != 2 || re.Msg != "" || !errors.Is(re, fs.ErrNotExist) {
		t.Errorf("errno-only reply: %+v", re)
	}
	if re := remoteErr(t, c.Request(ctx, "d", nil, nil)); re.Errno != 5 || re.Msg != `{"detail":1}` {
		t.Errorf("reply with structured error: %+v", re)
	}
	var n int
	if err := c.Request(ctx, "e", nil, &n); err == nil {
		t.Error("string decoded into an int")
	}
	if err := c.Request(ctx, "f", nil, nil); err == nil {
		t.Error("request answered by a hang-up succeeded")
	}
}
