// Package percpu reads per-CPU BPF array and hash maps without allocating.
//
// cilium/ebpf's Map.Lookup allocates a buffer and decodes it through
// reflection on every per-CPU lookup. The components' stats are read
// every stats interval and on every scrape, so they read through a Reader,
// which keeps one buffer of a value per possible CPU and fills it with
// one BPF_MAP_LOOKUP_ELEM.
package percpu

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// ErrLayout is wrapped by New's errors about a map whose type or value
// does not match T.
var ErrLayout = errors.New("map layout does not match")

// Key is the type of a map's key: 4 bytes (arrays, small ids) or 8
// (cgroup ids).
type Key interface{ ~uint32 | ~uint64 }

// Reader reads the values of one per-CPU map with keys of type K and
// values of type T, a plain struct (or integer) without pointers whose
// size is a multiple of 8 bytes: the kernel copies per-CPU values at a
// stride of the value size rounded up to 8.
type Reader[K Key, T any] struct {
	m   *ebpf.Map
	key K
	buf []T // one per possible CPU
}

// New returns a Reader of m, which must be a per-CPU array or hash with
// keys of K's size and values of T's size. cpus is the number of possible
// CPUs (ebpf.PossibleCPU).
func New[K Key, T any](m *ebpf.Map, cpus int) (*Reader[K, T], error) {
	var zero T
	var zeroKey K
	size := unsafe.Sizeof(zero)
	switch {
	case m == nil:
		return nil, fmt.Errorf("percpu: nil map: %w", ErrLayout)
	case m.Type() != ebpf.PerCPUArray && m.Type() != ebpf.PerCPUHash:
		return nil, fmt.Errorf("percpu: %v is a %v, want a per-CPU array or hash: %w", m, m.Type(), ErrLayout)
	case uintptr(m.KeySize()) != unsafe.Sizeof(zeroKey):
		return nil, fmt.Errorf("percpu: %v has %d-byte keys, want %d: %w", m, m.KeySize(), unsafe.Sizeof(zeroKey), ErrLayout)
	case uintptr(m.ValueSize()) != size || size%8 != 0:
		return nil, fmt.Errorf("percpu: %v has %d-byte values, want %d (%T, a multiple of 8): rebuild the object against this version's headers: %w",
			m, m.ValueSize(), size, zero, ErrLayout)
	case cpus < 1:
		return nil, fmt.Errorf("percpu: %d possible CPUs: %w", cpus, ErrLayout)
	}
	return &Reader[K, T]{m: m, buf: make([]T, cpus)}, nil
}

// mapElemAttr is the attribute of BPF_MAP_LOOKUP_ELEM. Its pointers are
// 64-bit integers whatever the pointer's size; what they point to is in
// the heap (fields of a Reader), which the garbage collector does not
// move, and is kept alive until the syscall returns.
type mapElemAttr struct {
	fd    uint32
	_     uint32
	key   uint64
	value uint64
	flags uint64
}

const bpfMapLookupElem = 1 // BPF_MAP_LOOKUP_ELEM

// Lookup reads the value of key on every possible CPU. The slice is the
// Reader's own buffer, valid until the next Lookup: sum it, don't keep
// it. A Reader is not safe for concurrent use.
func (r *Reader[K, T]) Lookup(key K) ([]T, error) {
	r.key = key
	attr := mapElemAttr{
		fd:    uint32(r.m.FD()),
		key:   uint64(uintptr(unsafe.Pointer(&r.key))),
		value: uint64(uintptr(unsafe.Pointer(&r.buf[0]))),
	}
	_, _, errno := unix.Syscall(unix.SYS_BPF, bpfMapLookupElem, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	runtime.KeepAlive(r)
	if errno != 0 {
		return nil, fmt.Errorf("lookup %v[%d]: %w", r.m, key, errno)
	}
	return r.buf, nil
}

// Raw reads a per-CPU array with 4-byte keys whose value layout is known
// only at run time (from BTF), as raw bytes.
type Raw struct {
	m      *ebpf.Map
	key    uint32
	stride int
	buf    []byte // stride bytes per possible CPU, 8-byte aligned
	words  []uint64
}

// NewRaw returns a Raw reader of m, a per-CPU array with 4-byte keys.
func NewRaw(m *ebpf.Map, cpus int) (*Raw, error) {
	switch {
	case m == nil:
		return nil, fmt.Errorf("percpu: nil map: %w", ErrLayout)
	case m.Type() != ebpf.PerCPUArray:
		return nil, fmt.Errorf("percpu: %v is a %v, want a per-CPU array: %w", m, m.Type(), ErrLayout)
	case m.KeySize() != 4:
		return nil, fmt.Errorf("percpu: %v has %d-byte keys, want 4: %w", m, m.KeySize(), ErrLayout)
	case cpus < 1:
		return nil, fmt.Errorf("percpu: %d possible CPUs: %w", cpus, ErrLayout)
	}
	stride := (int(m.ValueSize()) + 7) &^ 7
	r := &Raw{m: m, stride: stride, words: make([]uint64, stride/8*cpus)}
	r.buf = unsafe.Slice((*byte)(unsafe.Pointer(&r.words[0])), len(r.words)*8)
	return r, nil
}

// Stride is the distance in bytes between two CPUs' values in Lookup's
// result: the value size rounded up to 8.
func (r *Raw) Stride() int { return r.stride }

// Lookup reads the value of key on every possible CPU, CPU i's at
// [i*Stride(), i*Stride()+value size). The slice is the reader's own
// buffer, valid until the next Lookup.
func (r *Raw) Lookup(key uint32) ([]byte, error) {
	r.key = key
	attr := mapElemAttr{
		fd:    uint32(r.m.FD()),
		key:   uint64(uintptr(unsafe.Pointer(&r.key))),
		value: uint64(uintptr(unsafe.Pointer(&r.words[0]))),
	}
	_, _, errno := unix.Syscall(unix.SYS_BPF, bpfMapLookupElem, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	runtime.KeepAlive(r)
	if errno != 0 {
		return nil, fmt.Errorf("lookup %v[%d]: %w", r.m, key, errno)
	}
	return r.buf, nil
}
