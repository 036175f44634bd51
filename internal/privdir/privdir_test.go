package privdir

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestEnsureCreates: a missing directory and its missing parents are
// created, the directory itself 0700.
func TestEnsureCreates(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	if err := Ensure(dir); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(dir)
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Fatalf("after Ensure: %v, %v; want a 0700 directory", fi, err)
	}
	// Again, now that it exists.
	if err := Ensure(dir); err != nil {
		t.Errorf("Ensure on the directory it created: %v", err)
	}
}

// TestEnsureExisting: an existing directory of this user's that others
// can read but not write is accepted as it is.
func TestEnsureExisting(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "readable")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Ensure(dir); err != nil {
		t.Fatalf("Ensure on a 0755 directory of this user's: %v", err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("Ensure changed the directory: %v, %v", fi.Mode(), err)
	}
}

// TestEnsureRefuses: what another user could change, or what is not a
// directory, is refused with an error that names it and the problem and
// matches ErrUnsafe.
func TestEnsureRefuses(t *testing.T) {
	base := t.TempDir()
	good := filepath.Join(base, "good")
	if err := os.Mkdir(good, 0o700); err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{} // path -> what the error must say
	link := filepath.Join(base, "link")
	if err := os.Symlink(good, link); err != nil {
		t.Fatal(err)
	}
	cases[link] = "is a symbolic link"
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cases[file] = "is not a directory"
	writable := filepath.Join(base, "group-writable")
	if err := os.Mkdir(writable, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(writable, 0o770); err != nil {
		t.Fatal(err)
	}
	cases[writable] = "is writable by other users (mode -rwxrwx---)"
	if os.Geteuid() == 0 {
		others := filepath.Join(base, "others")
		if err := os.Mkdir(others, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(others, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		cases[others] = "is owned by uid 65534, not by this user (uid 0)"
	} else {
		t.Log("not root: the case of a directory owned by another user is not checked")
	}
	for dir, want := range cases {
		err := Ensure(dir)
		if !errors.Is(err, ErrUnsafe) || err.Error() != dir+" "+want {
			t.Errorf("Ensure(%s) = %v, want an ErrUnsafe saying %q", filepath.Base(dir), err, dir+" "+want)
		}
	}
	// The symbolic link's target is fine: it is the link that is refused.
	if err := Ensure(good); err != nil {
		t.Errorf("Ensure(good) = %v", err)
	}
}

// tryLock tries, without waiting, a lock of kind how on name through a
// file description of its own, and releases it at once.
func tryLock(t *testing.T, name string, how int) error {
	t.Helper()
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
}

// noWait is a waiting func for a Lock that must not wait: it fails the
// test and ends the wait.
func noWait(t *testing.T, cancel context.CancelFunc) func() {
	return func() {
		t.Error("Lock waited for a lock it should have got at once")
		cancel()
	}
}

// TestLockShared: shared locks coexist, and exclude an exclusive one for
// as long as any is held; an exclusive one excludes the others.
func TestLockShared(t *testing.T) {
	name := filepath.Join(t.TempDir(), "guests.lock")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	shared1, err := Lock(ctx, name, syscall.LOCK_SH, noWait(t, cancel))
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(name); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
		t.Errorf("lock file: %v, %v; want a regular 0600 file", fi, err)
	}
	shared2, err := Lock(ctx, name, syscall.LOCK_SH, noWait(t, cancel))
	if err != nil {
		t.Fatalf("a second shared lock: %v", err)
	}
	if err := tryLock(t, name, syscall.LOCK_EX); !errors.Is(err, syscall.EWOULDBLOCK) {
		t.Errorf("exclusive beside two shared: %v, want EWOULDBLOCK", err)
	}
	shared1()
	if err := tryLock(t, name, syscall.LOCK_EX); !errors.Is(err, syscall.EWOULDBLOCK) {
		t.Errorf("exclusive beside one shared: %v, want EWOULDBLOCK", err)
	}
	shared2()
	excl, err := Lock(ctx, name, syscall.LOCK_EX, noWait(t, cancel))
	if err != nil {
		t.Fatal(err)
	}
	if err := tryLock(t, name, syscall.LOCK_SH); !errors.Is(err, syscall.EWOULDBLOCK) {
		t.Errorf("shared beside exclusive: %v, want EWOULDBLOCK", err)
	}
	excl()
	if err := tryLock(t, name, syscall.LOCK_EX); err != nil {
		t.Errorf("exclusive after the others ended: %v", err)
	}
}

// TestLockWaits: an exclusive lock waits for a shared one to end, says so
// once however long it waits, and gets the lock when the shared one ends.
func TestLockWaits(t *testing.T) {
	name := filepath.Join(t.TempDir(), "lock")
	shared, err := Lock(context.Background(), name, syscall.LOCK_SH, nil)
	if err != nil {
		t.Fatal(err)
	}
	waited := make(chan struct{}, 10) // one per call of waiting
	type result struct {
		unlock func()
		err    error
	}
	got := make(chan result, 1)
	go func() {
		unlock, err := Lock(context.Background(), name, syscall.LOCK_EX, func() { waited <- struct{}{} })
		got <- result{unlock, err}
	}()
	<-waited
	// Let it poll a few times: on a slow host it may poll less, which
	// weakens the check of "once" but cannot fail it wrongly.
	time.Sleep(4 * pollInterval)
	select {
	case r := <-got:
		t.Fatalf("Lock(LOCK_EX) returned (%v) while a shared lock was held", r.err)
	default:
	}
	if err := tryLock(t, name, syscall.LOCK_SH); err != nil {
		t.Errorf("while the exclusive one waits, another shared lock: %v (is it held already?)", err)
	}
	shared()
	r := <-got
	if r.err != nil {
		t.Fatalf("Lock(LOCK_EX) after the shared lock ended: %v", r.err)
	}
	if n := 1 + len(waited); n != 1 {
		t.Errorf("waiting was called %d times, want once", n)
	}
	if err := tryLock(t, name, syscall.LOCK_SH); !errors.Is(err, syscall.EWOULDBLOCK) {
		t.Errorf("shared beside the exclusive lock Lock returned: %v, want EWOULDBLOCK", err)
	}
	r.unlock()
	if err := tryLock(t, name, syscall.LOCK_EX); err != nil {
		t.Errorf("after unlock: %v", err)
	}
}

// TestLockCancel: a wait ends when the context does, with an error that
// names the file and matches the context's, and holds no lock after.
func TestLockCancel(t *testing.T) {
	name := filepath.Join(t.TempDir(), "lock")
	excl, err := Lock(context.Background(), name, syscall.LOCK_EX, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	calls := 0
	unlock, err := Lock(ctx, name, syscall.LOCK_SH, func() { calls++; cancel() })
	if err == nil {
		unlock()
		t.Fatal("Lock(LOCK_SH) beside an exclusive lock succeeded")
	}
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), name) {
		t.Errorf("error %q: want one that names %s and matches context.Canceled", err, name)
	}
	if calls != 1 {
		t.Errorf("waiting was called %d times, want once", calls)
	}
	excl()
	if err := tryLock(t, name, syscall.LOCK_EX); err != nil {
		t.Errorf("after the cancelled wait and the exclusive unlock: %v; the failed Lock still holds something", err)
	}
}

// TestLockRefusesLink: a symbolic link planted at the lock's name is not
// followed: Lock fails and the link's target is not created.
func TestLockRefusesLink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "victim")
	lock := filepath.Join(dir, ".lock")
	if err := os.Symlink(target, lock); err != nil {
		t.Fatal(err)
	}
	unlock, err := Lock(context.Background(), lock, syscall.LOCK_EX, nil)
	if err == nil {
		unlock()
		t.Fatal("Lock followed a symbolic link")
	}
	if !strings.Contains(err.Error(), lock) {
		t.Errorf("error %q does not name %s", err, lock)
	}
	if _, err := os.Lstat(target); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the link's target was created (%v)", err)
	}
}

// TestLockKind: anything but LOCK_SH or LOCK_EX is refused.
func TestLockKind(t *testing.T) {
	name := filepath.Join(t.TempDir(), "lock")
	for _, how := range []int{syscall.LOCK_UN, syscall.LOCK_EX | syscall.LOCK_NB, 0} {
		if unlock, err := Lock(context.Background(), name, how, nil); err == nil {
			unlock()
			t.Errorf("Lock with kind %d succeeded", how)
		}
	}
}
