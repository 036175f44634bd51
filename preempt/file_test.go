package preempt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
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
		{big, ErrTooLarge, "1048577 bytes, at most 1048576"},
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

// TestWatchRefuses checks that Watch reports a config file replaced by a
// huge file, a FIFO or a device as an error, without applying anything
// (the zero Controller would fail on an Apply), and goes on watching.
func TestWatchRefuses(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "classes.conf")
	if err := os.WriteFile(path, []byte("web cgroup=/web\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	reports := make(chan error, 16)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		err := (&Controller{}).Watch(ctx, path, time.Millisecond, func(cfg *Config, err error) {
			if cfg != nil {
				t.Errorf("Watch applied %v", cfg)
			}
			reports <- err
		})
		if err != nil {
			t.Errorf("Watch: %v", err)
		}
	}()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			wg.Wait()
		}
	}
	defer stop()

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
	// next waits for Watch's next report; Watch reports each new error
	// once.
	next := func(what string) error {
		t.Helper()
		select {
		case err := <-reports:
			return err
		case <-time.After(30 * time.Second):
			// A FIFO blocks open(2) without O_NONBLOCK: a writer that
			// comes and goes releases it, so that Watch can end.
			if w, err := os.OpenFile(path, os.O_RDWR|syscall.O_NONBLOCK, 0); err == nil {
				w.Close()
			}
			stop()
			t.Fatalf("%s: no report from Watch", what)
			return nil
		}
	}

	// Watch compares with the file as it is when Watch starts: make
	// sure it has started, by changes until it reports the last one.
	for i := 0; ; i++ {
		bad := fmt.Sprintf("bad%d", i) // a class that matches no task
		replace(func(tmp string) error { return os.WriteFile(tmp, []byte(bad+"\n"), 0o600) })
		var err error
		select {
		case err = <-reports:
		case <-time.After(100 * time.Millisecond):
			continue // before Watch's first reading: change again
		}
		for !strings.Contains(err.Error(), `"`+bad+`"`) {
			err = next("a bad config")
		}
		break
	}

	replace(func(tmp string) error {
		if err := os.WriteFile(tmp, nil, 0o600); err != nil {
			return err
		}
		return os.Truncate(tmp, 64<<30) // sparse, 64 GiB
	})
	if err := next("huge file"); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), path) {
		t.Errorf("huge file: %v, want an error wrapping ErrTooLarge naming %s", err, path)
	}

	replace(func(tmp string) error { return syscall.Mkfifo(tmp, 0o600) })
	if err := next("FIFO"); !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), path) {
		t.Errorf("FIFO: %v, want an error wrapping ErrNotRegular naming %s", err, path)
	}

	replace(func(tmp string) error { return os.Symlink("/dev/zero", tmp) })
	if err := next("/dev/zero"); !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), "character device") {
		t.Errorf("/dev/zero: %v, want an error wrapping ErrNotRegular", err)
	}
	stop()
}
