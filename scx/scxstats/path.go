package scxstats

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// DefaultDir is the directory the Rust crate puts stats sockets under.
const DefaultDir = "/var/run/scx"

// DefaultName is the scheduler name the Rust crate uses when none is set.
// Every scx scheduler and tool (scxtop, scx_* --monitor,
// scxstats_to_openmetrics.py) uses it, so a server at DefaultPath("root")
// is the one they find without flags.
const DefaultName = "root"

// maxPathLen is the longest socket path the kernel takes: sun_path is 108
// bytes and we keep room for the terminating NUL.
const maxPathLen = 107

// ValidateName checks that name can be the directory of a stats socket
// under DefaultDir: non-empty, without '/', NUL or "..". Errors wrap
// ErrInvalid.
func ValidateName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("scxstats: empty scheduler name: %w", ErrInvalid)
	case strings.ContainsRune(name, '/'):
		return fmt.Errorf("scxstats: scheduler name %q contains '/': %w", name, ErrInvalid)
	case strings.ContainsRune(name, 0):
		return fmt.Errorf("scxstats: scheduler name %q contains NUL: %w", name, ErrInvalid)
	case name == "." || strings.Contains(name, ".."):
		return fmt.Errorf("scxstats: scheduler name %q is or contains a relative directory: %w", name, ErrInvalid)
	}
	return nil
}

// DefaultPath returns the socket path of the scheduler called name,
// DefaultDir/name/stats, the layout of the Rust crate. It fails, wrapping
// ErrInvalid, when ValidateName does or the path is too long for a socket.
func DefaultPath(name string) (string, error) {
	if err := ValidateName(name); err != nil {
		return "", err
	}
	p := filepath.Join(DefaultDir, name, "stats")
	if len(p) > maxPathLen {
		return "", fmt.Errorf("scxstats: socket path %s is %d bytes, the limit is %d: %w", p, len(p), maxPathLen, ErrInvalid)
	}
	return p, nil
}

// listen binds a unix socket at path. It creates the parent directory
// (0755), replaces a stale socket nobody listens on, and refuses to touch a
// live socket (ErrBusy) or anything that is not a socket (ErrInvalid). It
// returns the socket file's info so the server can later remove only its
// own file.
//
// Two servers starting at the same instant on the same stale path can race
// between the probe and the bind; the loser of the bind gets ErrBusy, but
// one may unlink the other's fresh socket. Servers of one scheduler are not
// expected to start concurrently.
func listen(ctx context.Context, path string) (*net.UnixListener, fs.FileInfo, error) {
	if path == "" {
		return nil, nil, fmt.Errorf("scxstats: empty socket path: %w", ErrInvalid)
	}
	if len(path) > maxPathLen {
		return nil, nil, fmt.Errorf("scxstats: socket path %s is %d bytes, the limit is %d: %w", path, len(path), maxPathLen, ErrInvalid)
	}
	if strings.ContainsRune(path, 0) {
		return nil, nil, fmt.Errorf("scxstats: socket path %q contains NUL: %w", path, ErrInvalid)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, nil, fmt.Errorf("scxstats: create socket directory: %w", err)
	}
	if err := removeStale(ctx, path); err != nil {
		return nil, nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, nil, fmt.Errorf("scxstats: %s: another server bound it first: %w", path, ErrBusy)
		}
		return nil, nil, fmt.Errorf("scxstats: listen: %w", err)
	}
	// We unlink the file ourselves, and only if it is still ours.
	ln.SetUnlinkOnClose(false)
	fi, err := os.Lstat(path)
	if err != nil {
		ln.Close()
		return nil, nil, fmt.Errorf("scxstats: stat new socket: %w", err)
	}
	return ln, fi, nil
}

// removeStale makes path free for bind: nothing there, or a socket nobody
// listens on (removed).
func removeStale(ctx context.Context, path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("scxstats: check socket path: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("scxstats: %s exists and is a %v, not a socket; refusing to remove it: %w", path, fi.Mode().Type(), ErrInvalid)
	}
	d := net.Dialer{Timeout: 2 * time.Second}
	c, err := d.DialContext(ctx, "unix", path)
	switch {
	case err == nil:
		c.Close()
		return fmt.Errorf("scxstats: %s: another stats server is listening there: %w", path, ErrBusy)
	case errors.Is(err, syscall.ECONNREFUSED):
		// Stale: its server died without removing it.
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("scxstats: remove stale socket: %w", err)
		}
		return nil
	case errors.Is(err, syscall.ENOENT):
		return nil // removed meanwhile
	default:
		return fmt.Errorf("scxstats: %s: cannot tell whether a server listens there: %w", path, err)
	}
}
