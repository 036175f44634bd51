package scxstats

import (
	"errors"
	"fmt"
	"syscall"
)

// ErrInvalid is wrapped by errors about arguments this package rejects: a
// bad scheduler name, an over-long socket path, a path that exists and is
// not a socket, or malformed metas.
var ErrInvalid = errors.New("invalid argument")

// ErrBusy is wrapped by the error NewServer returns when another live
// server already listens on the socket path.
var ErrBusy = errors.New("socket in use")

// RemoteError is a request the server answered with a non-zero errno.
//
// Errno is a Linux errno value; the Rust server sends EINVAL for almost
// everything (unknown request, unknown target, unparsable line, failing
// handler). Unwrap returns it as a syscall.Errno, so errors.Is(err,
// syscall.EINVAL) works, and so does errors.Is(err, fs.ErrNotExist) for
// ENOENT.
type RemoteError struct {
	// Req is the request that failed, e.g. "stats".
	Req string
	// Errno is the errno the server sent.
	Errno int
	// Msg is the server's description: the reply's "resp" when that is a
	// string, its JSON text otherwise, empty if missing or null.
	Msg string
}

// Error formats the request, errno and message.
func (e *RemoteError) Error() string {
	return fmt.Sprintf("scxstats: %q request failed: %v (errno %d): %s", e.Req, syscall.Errno(e.Errno), e.Errno, e.Msg)
}

// Unwrap returns the errno as a syscall.Errno.
func (e *RemoteError) Unwrap() error { return syscall.Errno(e.Errno) }
