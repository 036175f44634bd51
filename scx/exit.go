package scx

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/cilium/ebpf/btf"
)

// ErrRestart is matched (errors.Is) by the *ExitError of an exit whose code
// asks userspace to load the scheduler again, as the kernel does when a CPU
// goes on- or offline under a scheduler without hotplug callbacks.
var ErrRestart = errors.New("scheduler asked to be restarted")

// ExitKind is the kind of a scheduler exit: the kernel's enum scx_exit_kind
// enumerator without its SCX_EXIT_ prefix, in lower case ("unreg",
// "error_bpf", "error_stall", ...).
type ExitKind string

// ExitInfo says why and how a scheduler stopped, as the kernel told ops.exit.
type ExitInfo struct {
	Kind      ExitKind
	KindValue int64  // the raw enum scx_exit_kind value
	Code      int64  // exit code: SCX_ECODE_* bits, or the code of sk_exit()
	CPU       int    // CPU that triggered the exit, -1 when unknown
	Flags     uint64 // scx_exit_info.flags, where the kernel has them
	Reason    string // the kernel's summary, e.g. "runnable task stall"
	Message   string // details, e.g. the message given to sk_error
	Dump      string // the kernel's debug dump, for error exits

	isError bool
	restart bool
}

// IsError reports whether the exit is an error (kind at or above
// SCX_EXIT_ERROR): a failed scheduler, not an orderly unregistration.
func (e *ExitInfo) IsError() bool { return e.isError }

// ShouldRestart reports whether the exit code carries SCX_ECODE_ACT_RESTART:
// the scheduler was removed for a reason that loading it again fixes, such
// as CPU hotplug.
func (e *ExitInfo) ShouldRestart() bool { return e.restart }

// String returns a one-line summary.
func (e *ExitInfo) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "exit %s", e.Kind)
	if e.Code != 0 {
		fmt.Fprintf(&b, " code %#x", uint64(e.Code))
	}
	if e.Reason != "" {
		fmt.Fprintf(&b, ": %s", e.Reason)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	return b.String()
}

// Report returns a readable multi-line report: the summary, the CPU, and the
// debug dump if there is one.
func (e *ExitInfo) Report() string {
	var b strings.Builder
	b.WriteString(e.String())
	b.WriteByte('\n')
	if e.CPU >= 0 {
		fmt.Fprintf(&b, "cpu: %d\n", e.CPU)
	}
	if e.ShouldRestart() {
		b.WriteString("action: restart the scheduler\n")
	}
	if e.Dump != "" {
		b.WriteString("debug dump:\n")
		b.WriteString(e.Dump)
		if !strings.HasSuffix(e.Dump, "\n") {
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// Err returns nil for an orderly exit (the loader detached, or BPF called
// sk_exit with code 0) and an *ExitError otherwise.
func (e *ExitInfo) Err() error {
	if !e.isError && !e.restart && e.Code == 0 {
		return nil
	}
	return &ExitError{Info: e}
}

// ExitError is the error of a scheduler that the kernel removed, or that
// exited on its own with a non-zero code. errors.Is(err, ErrRestart) holds
// when ShouldRestart does.
type ExitError struct {
	Info *ExitInfo
}

func (e *ExitError) Error() string { return "scheduler stopped: " + e.Info.String() }

// Is matches ErrRestart for restartable exits.
func (e *ExitError) Is(target error) bool {
	return target == ErrRestart && e.Info.ShouldRestart()
}

// exitLayout locates the fields of struct sk_exit_info (exit.bpf.h) in the
// raw bytes of the global, by name from the object's BTF, so Go never
// mirrors the C layout by hand.
type exitLayout struct {
	size                   int
	kind, cpu, code, flags field
	reason, msg, dump      field
}

type field struct{ off, size int }

func (f field) in(raw []byte) []byte {
	if f.size == 0 || f.off+f.size > len(raw) {
		return nil
	}
	return raw[f.off : f.off+f.size]
}

// newExitLayout reads the layout of struct sk_exit_info from typ.
func newExitLayout(typ btf.Type) (*exitLayout, error) {
	st, ok := btf.As[*btf.Struct](typ)
	if !ok {
		return nil, fmt.Errorf("sk_exit_info is a %T, not a struct: include scxkit/exit.bpf.h", typ)
	}
	l := &exitLayout{size: int(st.Size)}
	want := map[string]*field{
		"kind": &l.kind, "exit_cpu": &l.cpu, "exit_code": &l.code, "flags": &l.flags,
		"reason": &l.reason, "msg": &l.msg, "dump": &l.dump,
	}
	for _, m := range st.Members {
		f, ok := want[m.Name]
		if !ok {
			continue
		}
		size, err := btf.Sizeof(m.Type)
		if err != nil {
			return nil, fmt.Errorf("sk_exit_info.%s: %w", m.Name, err)
		}
		*f = field{off: int(m.Offset.Bytes()), size: size}
		delete(want, m.Name)
	}
	for _, name := range []string{"kind", "exit_code", "reason", "msg"} {
		if _, missing := want[name]; missing {
			return nil, fmt.Errorf("struct sk_exit_info has no field %s: rebuild the object against scxkit/exit.bpf.h", name)
		}
	}
	for _, f := range []field{l.kind, l.cpu} {
		if f.size != 0 && f.size != 4 {
			return nil, fmt.Errorf("struct sk_exit_info: 32-bit kind and exit_cpu expected, got %d bytes", f.size)
		}
	}
	if l.code.size != 8 || (l.flags.size != 0 && l.flags.size != 8) {
		return nil, fmt.Errorf("struct sk_exit_info: 64-bit exit_code and flags expected")
	}
	return l, nil
}

// exitConsts are the enum values needed to interpret an exit, read from
// the kernel's BTF.
type exitConsts struct {
	kinds      map[int64]ExitKind
	errorKind  int64  // SCX_EXIT_ERROR
	restartBit uint64 // SCX_ECODE_ACT_RESTART
}

func newExitConsts(e Enums) (*exitConsts, error) {
	c := &exitConsts{kinds: make(map[int64]ExitKind)}
	for _, name := range e.Names("SCX_EXIT_") {
		v, _ := e.Lookup(name)
		kind := strings.ToLower(strings.TrimPrefix(name, "SCX_EXIT_"))
		switch kind {
		case "msg_len", "bt_len", "dump_dfl_len":
			continue // sizes that share the prefix, not kinds
		}
		c.kinds[int64(v)] = ExitKind(kind)
	}
	errKind, err := e.Value("SCX_EXIT_ERROR")
	if err != nil {
		return nil, err
	}
	c.errorKind = int64(errKind)
	if c.restartBit, err = e.Value("SCX_ECODE_ACT_RESTART"); err != nil {
		return nil, err
	}
	return c, nil
}

// decode turns the raw bytes of sk_exit_info into an ExitInfo. It reports
// false while kind is still zero (the scheduler has not exited).
func (l *exitLayout) decode(raw []byte, c *exitConsts) (*ExitInfo, bool) {
	kind := int64(int32(binary.NativeEndian.Uint32(l.kind.in(raw))))
	if kind == 0 {
		return nil, false
	}
	e := &ExitInfo{
		KindValue: kind,
		Code:      int64(binary.NativeEndian.Uint64(l.code.in(raw))),
		CPU:       -1,
		Reason:    cString(l.reason.in(raw)),
		Message:   cString(l.msg.in(raw)),
		Dump:      cString(l.dump.in(raw)),
	}
	if b := l.cpu.in(raw); b != nil {
		e.CPU = int(int32(binary.NativeEndian.Uint32(b)))
	}
	if b := l.flags.in(raw); b != nil {
		e.Flags = binary.NativeEndian.Uint64(b)
	}
	e.Kind = c.kinds[kind]
	if e.Kind == "" {
		e.Kind = ExitKind(fmt.Sprintf("kind_%d", kind))
	}
	e.isError = kind >= c.errorKind
	e.restart = uint64(e.Code)&c.restartBit != 0
	return e, true
}

func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
