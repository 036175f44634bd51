//go:build linux

package workload

import (
	"fmt"
	"io"
	"sync/atomic"
	"syscall"
)

// pipePair is the two pipes of a ping-pong pair: ab carries the byte from
// the sender (even thread) to the echoer (odd thread), ba carries it back.
// Index 0 of each is the read end, index 1 the write end.
//
// The descriptors are plain blocking ones, not registered with the Go
// runtime's poller: a read puts the OS thread itself to sleep in the kernel,
// and the write that follows wakes it, so every round trip is two kernel
// sleeps and wakeups between the pair's two threads. The runtime hands a
// thread's P to another thread while it blocks, so the blocked threads
// cannot starve the rest of the program.
type pipePair struct {
	ab, ba [2]int
}

// newPipePair creates the two pipes of a pair.
func newPipePair() (pipePair, error) {
	var p pipePair
	if err := syscall.Pipe2(p.ab[:], syscall.O_CLOEXEC); err != nil {
		return p, fmt.Errorf("workload: create pipe: %w", err)
	}
	if err := syscall.Pipe2(p.ba[:], syscall.O_CLOEXEC); err != nil {
		syscall.Close(p.ab[0])
		syscall.Close(p.ab[1])
		return p, fmt.Errorf("workload: create pipe: %w", err)
	}
	return p, nil
}

// close closes the four descriptors of p. Only call it when no thread uses
// them any more: closing a descriptor does not wake a thread blocked in
// read on it, and the number could be reused by the time a thread uses it.
func (p pipePair) close() {
	for _, fd := range [...]int{p.ab[0], p.ab[1], p.ba[0], p.ba[1]} {
		syscall.Close(fd)
	}
}

// wake writes a byte into both pipes of p, so that a thread blocked in
// read on either returns and sees that it has to stop. A pipe holds at most
// three bytes at any time, so the writes never block.
func (p pipePair) wake() {
	writeByte(p.ab[1])
	writeByte(p.ba[1])
}

// pingPong does t.want round trips through p, or fewer if stop is set,
// counting them in t.done. The sender writes first and then reads the echo;
// the echoer reads and then writes back. Only an unexpected pipe failure
// returns an error.
func (t *thread) pingPong(stop *atomic.Bool, p pipePair, sender bool) error {
	in, out := p.ab[0], p.ba[1]
	if sender {
		in, out = p.ba[0], p.ab[1]
	}
	for n := 0; n < t.want && !stop.Load(); {
		if sender {
			if err := writeByte(out); err != nil {
				return err
			}
		}
		if err := readByte(in); err != nil {
			return err
		}
		if stop.Load() { // the byte may be a wakeup from Run
			return nil
		}
		if !sender {
			if err := writeByte(out); err != nil {
				return err
			}
		}
		n++
		t.done.Store(int64(n))
	}
	return nil
}

// readByte reads one byte from fd, blocking until there is one.
func readByte(fd int) error {
	var b [1]byte
	for {
		n, err := syscall.Read(fd, b[:])
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			return fmt.Errorf("read pipe: %w", err)
		case n == 0:
			return fmt.Errorf("read pipe: %w", io.ErrUnexpectedEOF)
		}
		return nil
	}
}

// writeByte writes one byte to fd.
func writeByte(fd int) error {
	b := [1]byte{'x'}
	for {
		n, err := syscall.Write(fd, b[:])
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			return fmt.Errorf("write pipe: %w", err)
		case n != 1:
			return fmt.Errorf("write pipe: %w", io.ErrShortWrite)
		}
		return nil
	}
}
