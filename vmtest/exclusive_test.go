package vmtest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestGuestsLock checks how guests take the lock Config.Exclusive relies
// on (privdir's tests cover the lock itself): ordinary guests share the
// one in the cache directory, and an exclusive one cannot take it while
// any of them holds it, nor they while it does. Each attempt here runs
// with a context that is already done, so an attempt that would wait
// fails at once instead (a free lock is taken regardless).
func TestGuestsLock(t *testing.T) {
	cache := t.TempDir()
	t.Setenv(EnvCache, cache)
	done, cancel := context.WithCancel(context.Background())
	cancel()
	ordinary, exclusive := &VM{}, &VM{Exclusive: true}

	shared1, err := ordinary.lockGuests(done)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(cache, "guests.lock")); err != nil {
		t.Errorf("the guests' lock is not in the cache directory: %v", err)
	}
	shared2, err := ordinary.lockGuests(done)
	if err != nil {
		t.Fatalf("a second ordinary guest: %v", err)
	}
	if unlock, err := exclusive.lockGuests(done); !errors.Is(err, context.Canceled) {
		if err == nil {
			unlock()
		}
		t.Errorf("an exclusive guest beside two ordinary ones: %v, want it to wait", err)
	}
	shared1()
	if unlock, err := exclusive.lockGuests(done); !errors.Is(err, context.Canceled) {
		if err == nil {
			unlock()
		}
		t.Errorf("an exclusive guest beside an ordinary one: %v, want it to wait", err)
	}
	shared2()
	excl, err := exclusive.lockGuests(done)
	if err != nil {
		t.Fatalf("an exclusive guest alone: %v", err)
	}
	if unlock, err := ordinary.lockGuests(done); !errors.Is(err, context.Canceled) {
		if err == nil {
			unlock()
		}
		t.Errorf("an ordinary guest beside an exclusive one: %v, want it to wait", err)
	}
	excl()
	unlock, err := ordinary.lockGuests(done)
	if err != nil {
		t.Fatalf("an ordinary guest after the exclusive one ended: %v", err)
	}
	unlock()
}
