// Package cpio writes the "newc" (SVR4, no checksum) cpio format that the
// Linux kernel unpacks as an initramfs.
//
// It writes only what an initramfs needs: directories, regular files,
// symbolic links and device nodes. The format is described in the kernel's
// Documentation/driver-api/early-userspace/buffer-format.rst.
package cpio

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
)

// Mode bits of the newc format (the st_mode layout of Linux).
const (
	modeDir     = 0o040000
	modeChar    = 0o020000
	modeRegular = 0o100000
	modeSymlink = 0o120000
)

// trailer names the entry that ends an archive.
const trailer = "TRAILER!!!"

// maxField is the largest value an 8-digit hexadecimal header field holds.
const maxField = 1<<32 - 1

// Writer writes a newc archive. Entries are written in call order; the
// kernel creates them in that order, so a directory must precede its files.
// The zero value is not usable: call NewWriter.
type Writer struct {
	w      io.Writer
	ino    uint32
	err    error
	closed bool
}

// NewWriter returns a Writer that writes an archive to w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w}
}

// Dir adds a directory.
func (w *Writer) Dir(name string, perm fs.FileMode) error {
	return w.entry(name, modeDir|uint32(perm.Perm()), 0, 0, nil)
}

// File adds a regular file of size bytes read from r.
func (w *Writer) File(name string, perm fs.FileMode, size int64, r io.Reader) error {
	if size < 0 || size > maxField {
		return w.fail(fmt.Errorf("cpio: %s: size %d does not fit the newc format", name, size))
	}
	if err := w.entry(name, modeRegular|uint32(perm.Perm()), 0, uint32(size), nil); err != nil {
		return err
	}
	n, err := io.CopyN(w.w, r, size)
	if err != nil {
		return w.fail(fmt.Errorf("cpio: %s: copied %d of %d bytes: %w", name, n, size, err))
	}
	return w.pad(size)
}

// Symlink adds a symbolic link name that points at target.
func (w *Writer) Symlink(name, target string) error {
	return w.entry(name, modeSymlink|0o777, 0, uint32(len(target)), []byte(target))
}

// CharDevice adds a character device node with the given major and minor
// numbers, such as /dev/console (5, 1), which the kernel opens for init
// before any devtmpfs is mounted.
func (w *Writer) CharDevice(name string, perm fs.FileMode, major, minor uint32) error {
	return w.entry(name, modeChar|uint32(perm.Perm()), major<<8|minor, 0, nil)
}

// Close writes the trailer. It does not close the underlying writer.
func (w *Writer) Close() error {
	if w.closed {
		return w.err
	}
	err := w.entry(trailer, 0, 0, 0, nil)
	w.closed = true
	return err
}

func (w *Writer) fail(err error) error {
	if w.err == nil {
		w.err = err
	}
	return w.err
}

// entry writes a header, the name, and body (which must be size bytes when
// given; regular files write their body themselves).
func (w *Writer) entry(name string, mode, rdev, size uint32, body []byte) error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return w.fail(errors.New("cpio: write after close"))
	}
	name = strings.TrimPrefix(name, "/")
	if name == "" || strings.IndexByte(name, 0) >= 0 {
		return w.fail(fmt.Errorf("cpio: invalid entry name %q", name))
	}
	nlink := uint32(1)
	if mode&modeDir != 0 {
		nlink = 2
	}
	var ino uint32
	if name != trailer {
		w.ino++
		ino = w.ino
	}
	// Fields in order: magic, ino, mode, uid, gid, nlink, mtime, filesize,
	// devmajor, devminor, rdevmajor, rdevminor, namesize, check. The mtime
	// is 0 so that equal inputs give byte-identical archives.
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		ino, mode, 0, 0, nlink, 0, size, 0, 0, rdev>>8, rdev&0xff, len(name)+1, 0)
	if _, err := io.WriteString(w.w, hdr); err != nil {
		return w.fail(err)
	}
	if _, err := io.WriteString(w.w, name+"\x00"); err != nil {
		return w.fail(err)
	}
	if err := w.pad(int64(len(hdr) + len(name) + 1)); err != nil {
		return err
	}
	if body != nil {
		if _, err := w.w.Write(body); err != nil {
			return w.fail(err)
		}
		return w.pad(int64(len(body)))
	}
	return nil
}

// pad writes the zeros that align the stream to 4 bytes after n bytes.
func (w *Writer) pad(n int64) error {
	var zeros [3]byte
	if p := (4 - n%4) % 4; p > 0 {
		if _, err := w.w.Write(zeros[:p]); err != nil {
			return w.fail(err)
		}
	}
	return nil
}
