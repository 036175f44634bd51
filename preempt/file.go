package preempt

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// MaxFileSize is the largest config file ParseFile and the watcher (Work)
// read: 1 MiB, far more than MaxClasses lines of MaxMembers members need.
// A larger file is refused without being read, so that a file replaced
// by something huge cannot exhaust the scheduler's memory.
const MaxFileSize = 1 << 20

// ErrNotRegular is wrapped by the errors of ParseFile and the watcher
// for a config path that names something other than a regular file (a
// FIFO, a device such as /dev/zero, a directory). Like fs.ErrNotExist, it says
// what the path names rather than what is wrong with a config, so it is
// apart from ErrInvalid.
var ErrNotRegular = errors.New("not a regular file")

// readFile reads the config file path: a regular file of at most
// MaxFileSize bytes. It opens with O_NONBLOCK, so that a FIFO or a device
// cannot block it in open(2), and checks the file with fstat before
// reading any of it.
func readFile(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	for err == unix.EINTR {
		fd, err = unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %w (%s): give a regular file of classes", path, ErrNotRegular, fileKind(fi.Mode()))
	}
	if fi.Size() > MaxFileSize {
		return nil, fmt.Errorf("%s: %d bytes: %w: at most %d (1 MiB) are read: is it the right file?", path, fi.Size(), ErrTooBig, MaxFileSize)
	}
	// The file may grow between fstat and read: read at most one byte
	// more than allowed, to tell.
	text, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(text) > MaxFileSize {
		return nil, fmt.Errorf("%s: more than %d bytes: %w: at most %d (1 MiB) are read: is it the right file?", path, MaxFileSize, ErrTooBig, MaxFileSize)
	}
	return text, nil
}

// fileKind names the type of a file that is not regular.
func fileKind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a FIFO, which would block"
	case m&os.ModeCharDevice != 0:
		return "a character device"
	case m&os.ModeDevice != 0:
		return "a block device"
	case m&os.ModeSocket != 0:
		return "a socket"
	}
	return "mode " + m.String()
}

// ParseFile reads and parses the Config in file path, a regular file of
// at most MaxFileSize bytes. A FIFO, a device or a directory is refused
// with an error wrapping ErrNotRegular, and never blocks the call; a
// larger file with one wrapping ErrTooBig. Errors about the config itself
// wrap ErrInvalid (or ErrTooBig), as Parse's.
func ParseFile(path string) (*Config, error) {
	text, err := readFile(path)
	if err != nil {
		return nil, fmt.Errorf("preempt: config file: %w", err)
	}
	cfg, err := Parse(text)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}
