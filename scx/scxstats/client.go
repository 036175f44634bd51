package scxstats

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// maxReplyBytes bounds one reply line read by a Client. Stats replies of
// large machines run to hundreds of KiB; this leaves ample room while
// keeping a confused peer from exhausting memory.
const maxReplyBytes = 64 << 20

// request is the request envelope: {"req":"NAME","args":{...}}.
type request struct {
	Req  string            `json:"req"`
	Args map[string]string `json:"args"`
}

// Client is a connection to a stats server, Rust or Go. It is safe for
// concurrent use; requests on one Client are sent one at a time.
type Client struct {
	conn   net.Conn
	br     *bufio.Reader
	turn   chan struct{} // holds a token while a request is in flight
	closed atomic.Bool
	broken error // set, under turn, once the stream is out of step
}

// Dial connects to the stats server listening at path (see DefaultPath).
func Dial(ctx context.Context, path string) (*Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("scxstats: connect to stats server: %w", err)
	}
	return &Client{
		conn: conn,
		br:   bufio.NewReader(conn),
		turn: make(chan struct{}, 1),
	}, nil
}

// Request sends the request req with args (nil for none) and decodes the
// reply's value into out (a pointer, or nil to discard it). The protocol's
// requests are "stats_meta" (out: *map[string]Meta) and "stats" (out: the
// top-level struct, or *map[string]any; args {"target": "top"} is the
// default).
//
// An error reply comes back as a *RemoteError; the Client stays usable
// after one. ctx bounds the whole exchange; if it ends, or the connection
// fails, midway, the Client is unusable afterwards (the reply may still be
// in flight) and should be closed.
func (c *Client) Request(ctx context.Context, req string, args map[string]string, out any) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("scxstats: %q request: %w", req, err)
	}
	select {
	case c.turn <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("scxstats: %q request: %w", req, ctx.Err())
	}
	defer func() { <-c.turn }()
	if c.closed.Load() {
		return fmt.Errorf("scxstats: %q request: %w", req, net.ErrClosed)
	}
	if c.broken != nil {
		return fmt.Errorf("scxstats: %q request: connection unusable after an earlier failure: %w", req, c.broken)
	}
	if args == nil {
		args = map[string]string{}
	}
	line, err := marshal(request{Req: req, Args: args})
	if err != nil {
		return fmt.Errorf("scxstats: encode %q request: %w", req, err)
	}
	line = append(line, '\n')

	// Bound the exchange by ctx: its deadline, or an immediate one when
	// it is cancelled. The mutex keeps a late cancellation from touching
	// the deadline after Request returned.
	dl, _ := ctx.Deadline()
	c.conn.SetDeadline(dl)
	var mu sync.Mutex
	finished := false
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if !finished {
			c.conn.SetDeadline(time.Unix(1, 0))
		}
	})
	defer func() {
		mu.Lock()
		finished = true
		mu.Unlock()
		stop()
	}()

	if _, err := c.conn.Write(line); err != nil {
		return c.fail(ctx, req, "send", err)
	}
	reply, n, tooLong, err := readLine(c.br, maxReplyBytes, nil)
	switch {
	case err != nil && (n == 0 || !errors.Is(err, io.EOF)):
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("server closed the connection: %w", io.ErrUnexpectedEOF)
		}
		return c.fail(ctx, req, "read reply", err)
	case tooLong:
		return fmt.Errorf("scxstats: %q request: reply longer than %d bytes", req, maxReplyBytes)
	}

	var env struct {
		Errno *int                       `json:"errno"`
		Args  map[string]json.RawMessage `json:"args"`
	}
	if err := json.Unmarshal(reply, &env); err != nil {
		return fmt.Errorf("scxstats: %q request: malformed reply: %w", req, err)
	}
	if env.Errno == nil {
		return fmt.Errorf("scxstats: %q request: malformed reply: no errno", req)
	}
	resp, ok := env.Args["resp"]
	if !ok {
		resp = json.RawMessage("null")
	}
	if *env.Errno != 0 {
		msg := string(resp)
		var s string
		if json.Unmarshal(resp, &s) == nil {
			msg = s
		}
		return &RemoteError{Req: req, Errno: *env.Errno, Msg: msg}
	}
	if out != nil {
		if err := json.Unmarshal(resp, out); err != nil {
			return fmt.Errorf("scxstats: decode %q reply: %w", req, err)
		}
	}
	return nil
}

// fail marks the connection unusable after an I/O error and reports it,
// as ctx's error if ctx ended.
func (c *Client) fail(ctx context.Context, req, op string, err error) error {
	c.broken = err
	c.conn.Close()
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// Only ctx sets deadlines: it has ended, or its timer is about
		// to fire.
		<-ctx.Done()
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("scxstats: %q request: %w", req, ctxErr)
	}
	if c.closed.Load() {
		return fmt.Errorf("scxstats: %q request: %w", req, net.ErrClosed)
	}
	return fmt.Errorf("scxstats: %q request: %s: %w", req, op, err)
}

// Close closes the connection, interrupting a request in flight.
func (c *Client) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	return c.conn.Close()
}
