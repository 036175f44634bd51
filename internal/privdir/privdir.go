// Package privdir makes and checks directories and lock files that only
// this user can change. vmtest boots the kernels it caches and peers runs
// the schedulers it builds, both as root, so the folders that hold them
// must be out of other users' reach, and the locks that order the
// processes filling them must not follow a link planted by someone else.
package privdir

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"time"
)

// ErrUnsafe is wrapped by Ensure's errors about a directory another user
// could change: a symbolic link, not a directory, owned by another user,
// or writable by group or others.
var ErrUnsafe = errors.New("directory another user could change")

// unsafeError says what is wrong with a directory. Its text is the
// directory and the problem, so that callers can put it in a sentence of
// their own; it matches ErrUnsafe.
type unsafeError struct {
	dir, problem string
}

func (e *unsafeError) Error() string { return e.dir + " " + e.problem }
func (e *unsafeError) Unwrap() error { return ErrUnsafe }

// Ensure creates dir (and missing parents) with mode 0700 and checks that
// dir itself is a directory, not a symbolic link, owned by this user and
// writable by nobody else. An existing directory is checked, not changed.
// When the check fails the error reads "<dir> <problem>" (for example
// "/tmp/x is a symbolic link") and matches ErrUnsafe; callers wrap it with
// what the directory is for and how to fix it.
func Ensure(dir string) error {
	mkErr := os.MkdirAll(dir, 0o700)
	fi, err := os.Lstat(dir)
	if err != nil {
		if mkErr != nil {
			return mkErr
		}
		return err
	}
	if problem := check(fi); problem != "" {
		return &unsafeError{dir: dir, problem: problem}
	}
	return mkErr
}

// check returns what makes fi, from Lstat, unfit as a private directory,
// or "" if nothing does.
func check(fi fs.FileInfo) string {
	st, _ := fi.Sys().(*syscall.Stat_t)
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return "is a symbolic link"
	case !fi.IsDir():
		return "is not a directory"
	case st != nil && int(st.Uid) != os.Geteuid():
		return fmt.Sprintf("is owned by uid %d, not by this user (uid %d)", st.Uid, os.Geteuid())
	case fi.Mode().Perm()&0o022 != 0:
		return fmt.Sprintf("is writable by other users (mode %v)", fi.Mode().Perm())
	}
	return ""
}

// pollInterval is how often Lock tries again for a lock another process
// holds. flock(2) offers no blocking wait that a context can end, so Lock
// polls.
const pollInterval = 250 * time.Millisecond

// Lock takes a flock(2) lock of kind how, syscall.LOCK_SH (shared) or
// syscall.LOCK_EX (exclusive), on the file name, creating it (0600) if
// need be but never following a symbolic link in its place. While
// another open file description holds a conflicting lock, Lock calls
// waiting (if not nil) once, so the caller can say why it stalls, and
// tries again every 250ms until it gets the lock or ctx is done; then the
// error wraps ctx.Err(). A lock that is free is taken even if ctx is done.
// Errors name the file. unlock releases the lock and closes the file.
func Lock(ctx context.Context, name string, how int, waiting func()) (unlock func(), err error) {
	if how != syscall.LOCK_SH && how != syscall.LOCK_EX {
		return nil, fmt.Errorf("lock %s: kind %d is neither LOCK_SH nor LOCK_EX", name, how)
	}
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err) // a *PathError: it names the file
	}
	said := false
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", name, err)
		}
		if !said && waiting != nil {
			waiting()
		}
		said = true
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("wait for lock %s: %w", name, ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}
