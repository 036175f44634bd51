package peers

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/scxkit/scxkit/internal/privdir"
	"github.com/scxkit/scxkit/scxtest"
)

// TestUnsafeCacheRefused: a cache folder others can write is refused with
// an error that names it, says what is wrong and how to fix it.
func TestUnsafeCacheRefused(t *testing.T) {
	cache := filepath.Join(t.TempDir(), "peers")
	if err := os.Mkdir(cache, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(cache, 0o777); err != nil {
		t.Fatal(err)
	}
	_, err := cachedSet(context.Background(), &Options{CacheDir: cache}, "key")
	if !errors.Is(err, privdir.ErrUnsafe) {
		t.Fatalf("cachedSet in a world-writable folder: %v, want privdir.ErrUnsafe", err)
	}
	for _, want := range []string{cache, "is writable by other users", "remove it, or set SCXKIT_CACHE"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// cancelOnWrite is a log that ends a context when something is written
// to it.
type cancelOnWrite struct {
	scxtest.Buffer
	cancel context.CancelFunc
}

func (w *cancelOnWrite) Write(p []byte) (int, error) {
	defer w.cancel()
	return w.Buffer.Write(p)
}

// TestCacheLockWait: while another process holds the lock of the set,
// cachedSet says on the log that it waits, and stops waiting when ctx
// ends.
func TestCacheLockWait(t *testing.T) {
	cache := t.TempDir()
	unlock, err := privdir.Lock(context.Background(), filepath.Join(cache, "key.lock"), syscall.LOCK_EX, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := &cancelOnWrite{cancel: cancel}
	_, err = cachedSet(ctx, &Options{CacheDir: cache, Log: log}, "key")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cachedSet while the lock is held and after ctx ended: %v, want context.Canceled", err)
	}
	if got := log.String(); strings.Count(got, "another process is building the same peers") != 1 {
		t.Errorf("log %q: want one line saying it waits for another process", got)
	}
}
