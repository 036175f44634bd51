package scxstats

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// sockDir returns a short temporary directory: t.TempDir paths can exceed
// the 107 bytes a socket path may have.
func sockDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "scxs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func sockPath(t testing.TB) string {
	return filepath.Join(sockDir(t), "sched", "stats")
}

// running is a Server being served by a goroutine.
type running struct {
	*Server
	cancel context.CancelFunc
	done   chan struct{} // closed when Serve returned
	err    error         // what Serve returned
}

// wait waits for Serve to return and returns its result.
func (r *running) wait(t testing.TB) error {
	t.Helper()
	select {
	case <-r.done:
		return r.err
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not return")
		return nil
	}
}

// stopAndWait cancels Serve and returns its result.
func (r *running) stopAndWait(t testing.TB) error {
	t.Helper()
	r.cancel()
	return r.wait(t)
}

// serve starts a server at path and stops it when the test ends. Its log
// is discarded unless opts sets a Logger.
func serve(t testing.TB, path string, opts *ServerOptions) *running {
	t.Helper()
	if opts == nil {
		opts = &ServerOptions{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	srv, err := NewServer(path, opts)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Server: srv, cancel: cancel, done: make(chan struct{})}
	go func() {
		r.err = srv.Serve(ctx)
		close(r.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

func dial(t testing.TB, path string) *Client {
	t.Helper()
	c, err := Dial(context.Background(), path)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitFor polls cond until it holds or the deadline passes; the deadline is
// generous because only a broken implementation reaches it.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func remoteErr(t testing.TB, err error) *RemoteError {
	t.Helper()
	var re *RemoteError
	if !errors.As(err, &re) {
		t.Fatalf("error %v (%T) is not a *RemoteError", err, err)
	}
	return re
}
