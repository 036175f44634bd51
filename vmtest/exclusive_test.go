package vmtest

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestGuestsLock checks the lock Config.Exclusive relies on: guests of
// ordinary packages share it, and an exclusive one cannot take it while
// any of them holds it, nor they while it does.
func TestGuestsLock(t *testing.T) {
	name := filepath.Join(t.TempDir(), "guests.lock")
	tryLock := func(how int) error {
		f, err := os.OpenFile(name, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		return syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
	}
	shared1, err := flockFile(name, syscall.LOCK_SH)
	if err != nil {
		t.Fatal(err)
	}
	shared2, err := flockFile(name, syscall.LOCK_SH)
	if err != nil {
		t.Fatalf("a second shared lock: %v", err)
	}
	if err := tryLock(syscall.LOCK_EX); !errors.Is(err, syscall.EWOULDBLOCK) {
		t.Errorf("exclusive beside two shared: %v, want EWOULDBLOCK", err)
	}
	shared1()
	if err := tryLock(syscall.LOCK_EX); !errors.Is(err, syscall.EWOULDBLOCK) {
		t.Errorf("exclusive beside one shared: %v, want EWOULDBLOCK", err)
	}
	shared2()
	excl, err := flockFile(name, syscall.LOCK_EX)
	if err != nil {
		t.Fatal(err)
	}
	if err := tryLock(syscall.LOCK_SH); !errors.Is(err, syscall.EWOULDBLOCK) {
		t.Errorf("shared beside exclusive: %v, want EWOULDBLOCK", err)
	}
	excl()
	if err := tryLock(syscall.LOCK_SH); err != nil {
		t.Errorf("shared after the exclusive one ended: %v", err)
	}
}
