package preempt

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scxkit/scxkit/scx"
)

// parseFileDone runs ParseFile(path) and returns its error, failing the
// test if the call blocks: a FIFO without a writer blocks open(2) unless
// O_NONBLOCK is given. After the deadline the FIFO is opened for writing,
// which releases a blocked open so that the test ends either way.
func parseFileDone(t *testing.T, path string) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := ParseFile(path)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		// A writer that comes and goes releases open(2), and a read
		// then finds the end of the file.
		if w, err := os.OpenFile(path, os.O_RDWR, 0); err == nil {
			w.Close()
		}
		<-done
		t.Fatalf("ParseFile(%s) blocked until the FIFO got a writer", path)
		return nil
	}
}

func TestParseFileRefuses(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.conf")
	if err := os.WriteFile(big, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// Sparse: no disk space, and a read of it all would allocate.
	if err := os.Truncate(big, MaxFileSize+1); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path string
		is   error
		want string
	}{
		{"/dev/zero", ErrNotRegular, "/dev/zero: not a regular file (a character device)"},
		{fifo, ErrNotRegular, fifo + ": not a regular file (a FIFO"},
		{dir, ErrNotRegular, dir + ": not a regular file (a directory)"},
		{big, ErrTooBig, "1048577 bytes: too big: at most 1048576"},
	} {
		err := parseFileDone(t, c.path)
		if err == nil {
			t.Errorf("ParseFile(%s): no error", c.path)
			continue
		}
		if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseFile(%s): %v, want an error wrapping %v containing %q", c.path, err, c.is, c.want)
		}
	}

	// A file of exactly MaxFileSize bytes is read (and then parsed).
	edge := filepath.Join(dir, "edge.conf")
	var text strings.Builder
	text.WriteString("web cgroup=/web\n")
	for text.Len() < MaxFileSize {
		text.WriteString(strings.Repeat("#", min(1023, MaxFileSize-text.Len()-1)) + "\n")
	}
	if err := os.WriteFile(edge, []byte(text.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if cfg, err := ParseFile(edge); err != nil || cfg.Class("web") == nil {
		t.Errorf("ParseFile of %d bytes: %v, %v; want the class web", text.Len(), cfg, err)
	}
}

// TestWatchRefuses checks that the watcher (Controller.poll, which Work
// runs every WatchInterval) reports a config file replaced by a bad
// config, a huge file, a FIFO or a device as an error, once, without
// writing anything, and without blocking; and that a file holding the
// Config in force writes nothing. The Controller is not bound: a Config
// it would write fails with scx.ErrNotBound.
func TestWatchRefuses(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "classes.conf")
	if err := os.WriteFile(path, []byte("web cgroup=/web\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := New(nil, &Options{ConfigFile: path, WatchInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if w := c.Work(); len(w) != 1 || w[0].Every != time.Millisecond {
		t.Fatalf("Work() = %+v, want one periodic every 1ms", w)
	}
	// poll runs c.poll, failing the test if it blocks.
	poll := func(what string) (*Config, error) {
		t.Helper()
		type result struct {
			cfg *Config
			err error
		}
		done := make(chan result, 1)
		go func() {
			cfg, err := c.poll()
			done <- result{cfg, err}
		}()
		select {
		case r := <-done:
			if r.cfg != nil {
				t.Errorf("%s: the watcher wrote %v", what, r.cfg)
			}
			return r.cfg, r.err
		case <-time.After(30 * time.Second):
			// A FIFO blocks open(2) without O_NONBLOCK: a writer that
			// comes and goes releases it.
			if w, err := os.OpenFile(path, os.O_RDWR|syscall.O_NONBLOCK, 0); err == nil {
				w.Close()
			}
			<-done
			t.Fatalf("%s: the watcher blocked", what)
			return nil, nil
		}
	}
	replace := func(make func(tmp string) error) {
		t.Helper()
		tmp := path + ".new"
		os.Remove(tmp)
		if err := make(tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	// once checks that the error just reported is not reported again
	// while the file stays as it is.
	once := func(what string) {
		t.Helper()
		if _, err := poll(what + ", again"); err != nil {
			t.Errorf("%s: reported again: %v", what, err)
		}
	}

	if _, err := poll("a new config"); !errors.Is(err, scx.ErrNotBound) || !strings.Contains(err.Error(), path) {
		t.Errorf("a new config: %v, want an error wrapping scx.ErrNotBound naming %s", err, path)
	}
	once("a new config")

	replace(func(tmp string) error { return os.WriteFile(tmp, []byte("bad\n"), 0o600) }) // matches no task
	if _, err := poll("a bad config"); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `"bad"`) {
		t.Errorf("a bad config: %v, want an error wrapping ErrInvalid naming class \"bad\"", err)
	}
	once("a bad config")

	replace(func(tmp string) error {
		if err := os.WriteFile(tmp, nil, 0o600); err != nil {
			return err
		}
		return os.Truncate(tmp, 64<<30) // sparse, 64 GiB
	})
	if _, err := poll("huge file"); !errors.Is(err, ErrTooBig) || !strings.Contains(err.Error(), path) {
		t.Errorf("huge file: %v, want an error wrapping ErrTooBig naming %s", err, path)
	}
	once("huge file")

	replace(func(tmp string) error { return syscall.Mkfifo(tmp, 0o600) })
	if _, err := poll("FIFO"); !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), path) {
		t.Errorf("FIFO: %v, want an error wrapping ErrNotRegular naming %s", err, path)
	}
	once("FIFO")

	replace(func(tmp string) error { return os.Symlink("/dev/zero", tmp) })
	if _, err := poll("/dev/zero"); !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), "character device") {
		t.Errorf("/dev/zero: %v, want an error wrapping ErrNotRegular", err)
	}
	once("/dev/zero")

	// The Config in force (New's: the default class only), in other
	// words: nothing to write.
	replace(func(tmp string) error {
		return os.WriteFile(tmp, []byte("# nothing but the default class\ndefault\n"), 0o600)
	})
	if _, err := poll("the config in force"); err != nil {
		t.Errorf("the config in force: %v, want nothing written and no error", err)
	}
}
