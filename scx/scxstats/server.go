package scxstats

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"syscall"
	"time"
)

// HandlerFunc answers one request. args are the request's "args" (never
// nil). The result is sent as the reply's "resp" and may be any value
// encoding/json can marshal (beware: it rejects NaN and ±Inf floats, which
// then turn the reply into an EINVAL error). A non-nil error is sent as an
// error reply with the errno of the syscall.Errno (or *RemoteError) it
// wraps, EINVAL if it wraps none.
//
// Handlers run on connection goroutines, so a HandlerFunc shared by
// connections must be safe for concurrent use.
type HandlerFunc func(args map[string]string) (any, error)

// Defaults for ServerOptions fields left zero.
const (
	DefaultMaxConns     = 64
	DefaultMaxLineBytes = 64 << 10
	DefaultWriteTimeout = 10 * time.Second
)

// ServerOptions configures a Server. The zero value is a server with no
// metas and no stats, which answers every "stats" request with an error.
type ServerOptions struct {
	// Metas describe the stats structs, answered to "stats_meta". At most
	// one may be the top (Meta.Top); every struct a field refers to must
	// be among them.
	Metas []Meta
	// Stats returns the current top-level stats value, answered to
	// "stats" (target "top", the default). Set Stats or OpenStats, not
	// both.
	Stats HandlerFunc
	// OpenStats is called on a connection's first "stats" request and
	// returns the function that answers that connection's "stats"
	// requests from then on. It lets a scheduler report, like the Rust
	// ones do, counters as deltas since the same client's previous read.
	// The returned function is only called from its connection's
	// goroutine.
	OpenStats func() (HandlerFunc, error)
	// MaxConns bounds the connections served at once
	// (DefaultMaxConns if 0). Extra clients get an EAGAIN error reply to
	// their first request and are disconnected.
	MaxConns int
	// MaxLineBytes bounds a request line, without its newline
	// (DefaultMaxLineBytes if 0). Longer lines are discarded and answered
	// with EMSGSIZE; the connection stays usable.
	MaxLineBytes int
	// WriteTimeout bounds writing one reply (DefaultWriteTimeout if 0), so
	// a client that stops reading cannot hold a connection forever.
	WriteTimeout time.Duration
	// Logger receives connection-level events; nil means slog.Default().
	Logger *slog.Logger
}

// Server serves the stats protocol on a unix socket: one goroutine per
// connection, one JSON reply line per JSON request line.
type Server struct {
	path     string
	ln       *net.UnixListener
	sockInfo fs.FileInfo // the socket file we created, removed on exit
	log      *slog.Logger

	metaJSON     json.RawMessage
	stats        HandlerFunc
	openStats    func() (HandlerFunc, error)
	maxLine      int
	writeTimeout time.Duration
	slots        chan struct{} // one token per served connection
	rejectSlots  chan struct{} // one token per connection being turned away

	hmu      sync.RWMutex
	handlers map[string]HandlerFunc

	mu       sync.Mutex
	started  bool // Serve has run
	closed   bool // Close has run
	closing  bool // connections are being closed; accept no more
	conns    map[net.Conn]struct{}
	wg       sync.WaitGroup
	stopOnce sync.Once
	quit     chan struct{} // closed when Serve must stop
	finished chan struct{} // closed when Serve has cleaned up
}

// rejectTimeout bounds how long a turned-away connection is kept to read
// its first request and send the EAGAIN reply.
const rejectTimeout = 2 * time.Second

// NewServer validates the options and binds the socket at path (see
// DefaultPath), ready for Serve: clients may connect as soon as it
// returns. It creates the socket's directory (0755) if needed and replaces
// a stale socket nobody listens on. It fails with an error wrapping ErrBusy
// if a live server listens at path, and ErrInvalid for bad options or if
// path exists and is not a socket.
//
// The socket file gets the process umask, as with the Rust crate: with the
// usual 022, only its owner can connect.
//
// Call Serve, or Close if Serve will not run, to release the socket.
func NewServer(path string, opts *ServerOptions) (*Server, error) {
	if opts == nil {
		opts = &ServerOptions{}
	}
	if opts.Stats != nil && opts.OpenStats != nil {
		return nil, fmt.Errorf("scxstats: both Stats and OpenStats set: %w", ErrInvalid)
	}
	if opts.MaxConns < 0 || opts.MaxLineBytes < 0 || opts.WriteTimeout < 0 {
		return nil, fmt.Errorf("scxstats: negative limit in options: %w", ErrInvalid)
	}
	byName, err := validateMetas(opts.Metas)
	if err != nil {
		return nil, err
	}
	metaJSON, err := marshal(byName)
	if err != nil {
		return nil, fmt.Errorf("scxstats: encode metas: %w", err)
	}
	s := &Server{
		path:         path,
		log:          opts.Logger,
		metaJSON:     metaJSON,
		stats:        opts.Stats,
		openStats:    opts.OpenStats,
		maxLine:      opts.MaxLineBytes,
		writeTimeout: opts.WriteTimeout,
		handlers:     make(map[string]HandlerFunc),
		conns:        make(map[net.Conn]struct{}),
		quit:         make(chan struct{}),
		finished:     make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.maxLine == 0 {
		s.maxLine = DefaultMaxLineBytes
	}
	if s.writeTimeout == 0 {
		s.writeTimeout = DefaultWriteTimeout
	}
	maxConns := opts.MaxConns
	if maxConns == 0 {
		maxConns = DefaultMaxConns
	}
	s.slots = make(chan struct{}, maxConns)
	s.rejectSlots = make(chan struct{}, maxConns)
	s.ln, s.sockInfo, err = listen(context.Background(), path)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Path returns the socket path the server listens on.
func (s *Server) Path() string { return s.path }

// Handle makes the server answer requests named req with h, for requests
// beyond the protocol's "stats" and "stats_meta" (registering those names
// replaces the built-in answers). It may be called while serving. It
// panics if req is empty or h is nil, which are programming errors.
func (s *Server) Handle(req string, h HandlerFunc) {
	if req == "" || h == nil {
		panic("scxstats: Handle with empty request name or nil handler")
	}
	s.hmu.Lock()
	s.handlers[req] = h
	s.hmu.Unlock()
}

// Serve accepts connections until ctx is done or Close is called, serving
// each on its own goroutine. Before returning it closes every connection,
// waits for running handlers to finish, and removes the socket file (if it
// is still the one NewServer created). It returns nil after such an orderly
// stop, or the error that made accepting impossible. Serve may be called
// once.
func (s *Server) Serve(ctx context.Context) error {
	s.mu.Lock()
	switch {
	case s.started:
		s.mu.Unlock()
		return errors.New("scxstats: Serve called twice")
	case s.closed:
		s.mu.Unlock()
		return fmt.Errorf("scxstats: serve %s: %w", s.path, net.ErrClosed)
	}
	s.started = true
	s.mu.Unlock()
	defer close(s.finished)

	stopWatch := context.AfterFunc(ctx, s.stop)
	defer stopWatch()
	err := s.acceptLoop()
	s.stop()
	s.closeConns()
	s.wg.Wait()
	s.removeSocket()
	return err
}

// Close stops the server: it makes a running Serve return and waits until
// it has (so it must not be called from a handler), or, if Serve never
// ran, closes the listener and removes the socket file. It is safe to call
// more than once and concurrently with Serve.
func (s *Server) Close() error {
	s.mu.Lock()
	started, first := s.started, !s.closed
	s.closed = true
	s.mu.Unlock()
	s.stop()
	if started {
		<-s.finished
	} else if first {
		s.removeSocket()
	}
	return nil
}

// stop closes the listener, which unblocks Accept.
func (s *Server) stop() {
	s.stopOnce.Do(func() {
		close(s.quit)
		s.ln.Close()
	})
}

func (s *Server) acceptLoop() error {
	var backoff time.Duration
	for {
		c, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.quit:
				return nil
			default:
			}
			if !isTemporary(err) {
				return fmt.Errorf("scxstats: accept on %s: %w", s.path, err)
			}
			// Out of file descriptors and the like: wait and retry,
			// as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("scxstats: accept failed, retrying", "path", s.path, "err", err, "delay", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-s.quit:
				t.Stop()
				return nil
			case <-t.C:
			}
			continue
		}
		backoff = 0
		select {
		case s.slots <- struct{}{}:
			if s.track(c) {
				go s.serveConn(c)
			} else {
				<-s.slots
			}
		default:
			select {
			case s.rejectSlots <- struct{}{}:
				if s.track(c) {
					go s.reject(c)
				} else {
					<-s.rejectSlots
				}
			default:
				c.Close()
			}
		}
	}
}

func isTemporary(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EINTR)
}

// track registers c for closing at shutdown; false (and c closed) if the
// server is already shutting down.
func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		c.Close()
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) untrack(c net.Conn) {
	c.Close()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

// closeConns closes every connection, which unblocks their reads.
func (s *Server) closeConns() {
	s.mu.Lock()
	s.closing = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
}

// removeSocket removes the socket file if it is still the one we bound.
func (s *Server) removeSocket() {
	fi, err := os.Lstat(s.path)
	if err != nil || !os.SameFile(fi, s.sockInfo) {
		return
	}
	if err := os.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("scxstats: remove socket", "path", s.path, "err", err)
	}
}

// connState is what a connection remembers between requests.
type connState struct {
	stats HandlerFunc // from OpenStats, once opened
}

func (s *Server) serveConn(c net.Conn) {
	defer func() { <-s.slots }()
	defer s.untrack(c)
	br := bufio.NewReader(c)
	var cs connState
	var buf []byte
	for {
		line, n, tooLong, err := readLine(br, s.maxLine, buf)
		if err != nil && (n == 0 || !errors.Is(err, io.EOF)) {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				s.log.Debug("scxstats: read request", "err", err)
			}
			return
		}
		var reply []byte
		if tooLong {
			reply = errorReply(syscall.EMSGSIZE, fmt.Sprintf("request line longer than %d bytes", s.maxLine))
		} else {
			reply = s.handleLine(&cs, line)
		}
		buf = line[:0]
		c.SetWriteDeadline(time.Now().Add(s.writeTimeout))
		if _, werr := c.Write(reply); werr != nil {
			s.log.Debug("scxstats: write reply", "err", werr)
			return
		}
		if err != nil {
			return // the last line ended at EOF without a newline
		}
	}
}

// reject answers a connection over the limit: it reads the first request,
// replies EAGAIN and hangs up. Reading first avoids resetting a client
// whose request is still in flight.
func (s *Server) reject(c net.Conn) {
	defer func() { <-s.rejectSlots }()
	defer s.untrack(c)
	c.SetDeadline(time.Now().Add(rejectTimeout))
	// maxLen -1 discards the line without buffering it.
	if _, n, _, err := readLine(bufio.NewReaderSize(c, 512), -1, nil); n == 0 && err != nil {
		return
	}
	c.Write(errorReply(syscall.EAGAIN, fmt.Sprintf("too many connections (limit %d), try again later", cap(s.slots))))
}

// readLine reads one line, returning it without its newline in buf's
// storage. n counts the bytes consumed, so n == 0 with an error means
// nothing was read. A line longer than maxLen is consumed to its end but
// not returned (tooLong); maxLen < 0 discards every line. A last line
// ended by EOF instead of a newline comes back with err io.EOF, as the
// Rust server answers it too.
func readLine(br *bufio.Reader, maxLen int, buf []byte) (line []byte, n int, tooLong bool, err error) {
	buf = buf[:0]
	tooLong = maxLen < 0
	for {
		frag, e := br.ReadSlice('\n')
		n += len(frag)
		if !tooLong {
			if len(buf)+len(frag) > maxLen+1 {
				tooLong = true
				buf = buf[:0]
			} else {
				buf = append(buf, frag...)
			}
		}
		if e == bufio.ErrBufferFull {
			continue
		}
		err = e
		break
	}
	buf = bytes.TrimSuffix(buf, []byte("\n"))
	if len(buf) > maxLen {
		tooLong = true
	}
	if tooLong {
		buf = buf[:0]
	}
	return buf, n, tooLong, err
}

// response is the reply envelope: {"errno":N,"args":{"resp":VALUE}}.
type response struct {
	Errno int `json:"errno"`
	Args  struct {
		Resp any `json:"resp"`
	} `json:"args"`
}

// errorReply encodes an error reply line; the Rust server sends the error
// text as "resp".
func errorReply(errno syscall.Errno, msg string) []byte {
	var r response
	r.Errno = int(errno)
	r.Args.Resp = msg
	b, err := marshal(r)
	if err != nil { // cannot happen: a string always encodes
		panic(err)
	}
	return append(b, '\n')
}

// handleLine answers one request line with one reply line. It never
// panics: a panicking handler becomes an error reply.
func (s *Server) handleLine(cs *connState, line []byte) (reply []byte) {
	req, args, err := parseRequest(line)
	if err != nil {
		return errorReply(syscall.EINVAL, "malformed request: "+err.Error())
	}
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("scxstats: handler panicked", "req", req, "panic", p, "stack", string(debug.Stack()))
			reply = errorReply(syscall.EINVAL, fmt.Sprintf("handler for %q failed: internal error", req))
		}
	}()
	resp, err := s.dispatch(cs, req, args)
	if err != nil {
		return errorReply(errnoOf(err), err.Error())
	}
	var r response
	r.Args.Resp = resp
	b, err := marshal(r)
	if err != nil {
		return errorReply(syscall.EINVAL, fmt.Sprintf("encode reply to %q: %v", req, err))
	}
	return append(b, '\n')
}

// dispatch runs the handler for req.
func (s *Server) dispatch(cs *connState, req string, args map[string]string) (any, error) {
	s.hmu.RLock()
	h := s.handlers[req]
	s.hmu.RUnlock()
	if h != nil {
		return h(args)
	}
	switch req {
	case "stats_meta":
		return s.metaJSON, nil
	case "stats":
		target, ok := args["target"]
		if !ok {
			target = "top"
		}
		if target != "top" || (s.stats == nil && s.openStats == nil) {
			return nil, fmt.Errorf("unknown stat target %q", target)
		}
		if s.stats != nil {
			return s.stats(args)
		}
		if cs.stats == nil {
			h, err := s.openStats()
			if err != nil {
				return nil, fmt.Errorf("open stats: %w", err)
			}
			if h == nil {
				return nil, errors.New("open stats: no handler")
			}
			cs.stats = h
		}
		return cs.stats(args)
	}
	return nil, fmt.Errorf("unknown command %q", req)
}

// errnoOf picks the errno an error reply carries.
func errnoOf(err error) syscall.Errno {
	var errno syscall.Errno
	if errors.As(err, &errno) && errno != 0 {
		return errno
	}
	return syscall.EINVAL
}

// parseRequest decodes {"req":"NAME","args":{"K":"V",...}}. Like the Rust
// server (serde), it wants "req" to be a string, "args" (optional) an
// object of strings, and ignores other keys; keys match case-sensitively.
func parseRequest(line []byte) (string, map[string]string, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(line, &raw); err != nil {
		return "", nil, err
	}
	if raw == nil {
		return "", nil, errors.New("request is null, want an object")
	}
	reqRaw, ok := raw["req"]
	if !ok {
		return "", nil, errors.New(`missing field "req"`)
	}
	var req string
	if string(reqRaw) == "null" || json.Unmarshal(reqRaw, &req) != nil {
		return "", nil, errors.New(`field "req" is not a string`)
	}
	args := map[string]string{}
	if a, ok := raw["args"]; ok && string(a) != "null" {
		if err := json.Unmarshal(a, &args); err != nil {
			return "", nil, errors.New(`field "args" is not an object of strings`)
		}
		if args == nil {
			args = map[string]string{}
		}
	}
	return req, args, nil
}
