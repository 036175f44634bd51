package scx

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/rlimit"

	"github.com/scxkit/scxkit/internal/privilege"
)

// LoadOptions steers Load. A nil *LoadOptions uses the defaults.
type LoadOptions struct {
	// Kernel is the kernel to load for; nil probes the running one.
	Kernel *Kernel
	// Logger receives what Load decides on the caller's behalf, such as
	// callbacks dropped because the kernel lacks them, and its progress:
	// at Info, every VerifierNotice, that the kernel's verifier is still
	// running; at Debug, that it started, how long it took, and each
	// program loaded with the instructions the verifier went through.
	// nil means slog.Default().
	Logger *slog.Logger
	// Context bounds the wait for the verifier, which can take minutes
	// on a program whose loops it cannot bound (see the package doc).
	// When it ends, Load returns an error wrapping its cause at once; the
	// kernel cannot interrupt a program load, so what the verifier goes
	// on to load is freed as soon as it finishes. nil means no bound.
	Context context.Context
}

// VerifierNotice is how often Load says that the kernel's verifier is
// still checking the scheduler's programs.
const VerifierNotice = 10 * time.Second

// ErrPermission is wrapped by the error Load returns when the kernel
// refuses to raise the memlock limit or to load the scheduler for want of
// privileges. It wraps os.ErrPermission, so errors.Is(err,
// os.ErrPermission) holds too. The message says which capabilities are
// needed and how to get them.
var ErrPermission = fmt.Errorf("scx: %w", os.ErrPermission)

// privilegesHint says what Load and Attach need and how to get it.
const privilegesHint = "loading a sched_ext scheduler needs CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN, and CAP_SYS_RESOURCE " +
	"to raise the memlock limit on kernels that charge BPF memory to it: run as root (sudo), or give the program those " +
	"capabilities with sudo setcap cap_bpf,cap_perfmon,cap_sys_admin,cap_sys_resource+ep PROGRAM"

// permissionError wraps err with ErrPermission and privilegesHint when
// the kernel refused for want of privileges (EPERM), and returns it
// unchanged otherwise.
func permissionError(err error) error {
	return privilege.Wrap(err, ErrPermission, privilegesHint)
}

// LoadError is returned when the kernel rejects the object, most often its
// verifier. Tail holds the last lines of the verifier log, which is where
// the reason is; errors.As(err, new(*ebpf.VerifierError)) reaches the whole
// log.
type LoadError struct {
	Name string   // the scheduler
	Gen  KfuncGen // the object that was loaded
	Tail []string // last lines of the verifier log, if any
	Err  error
}

func (e *LoadError) Error() string {
	msg := fmt.Sprintf("load %s (%s kfuncs): %v", e.Name, e.Gen, e.Err)
	if len(e.Tail) > 0 {
		msg += "\nverifier log (tail):\n\t" + strings.Join(e.Tail, "\n\t")
	}
	return msg
}

func (e *LoadError) Unwrap() error { return e.Err }

// How much of the verifier log LoadError keeps.
const (
	verifierTailLines   = 20 // classic logs: the error is the last line but one
	verifierReportLines = 60 // logs with a "Verification failed" report
)

// verifierTail picks the part of a verifier log that says why it failed.
// Classic logs end with the error line and "processed N insns"; newer
// kernels (7.3) follow the error line with a structured report (reason,
// source context, causal path) that would push it out of a plain tail, so
// there the tail starts at the error line before the report.
func verifierTail(log []string) []string {
	for i, line := range log {
		if !strings.HasPrefix(line, "Verification failed") {
			continue
		}
		start := i - 1
		for start > 0 && strings.TrimSpace(log[start]) == "" {
			start--
		}
		return log[max(start, 0):min(len(log), max(start, 0)+verifierReportLines)]
	}
	return log[max(0, len(log)-verifierTailLines):]
}

// Load makes every kernel-dependent choice and loads the scheduler into the
// kernel, without attaching it:
//
//   - picks the object compiled for the kernel's kfunc generation;
//   - drops callbacks whose sched_ext_ops member the kernel lacks (each is
//     logged);
//   - writes Config into sched_ext_ops (name, timeout_ms, flags,
//     dispatch_max_batch, exit_dump_len, hotplug_seq) and the constants
//     into .rodata, failing if the kernel lacks a field that is set;
//   - raises RLIMIT_MEMLOCK on kernels that still charge BPF memory to it.
//
// It needs root (CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN); without the
// privileges, the error wraps ErrPermission and says how to get them. The
// returned Scheduler holds kernel resources until Close.
func (s *Spec) Load(opts *LoadOptions) (*Scheduler, error) {
	if opts == nil {
		opts = &LoadOptions{}
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	k := opts.Kernel
	if k == nil {
		var err error
		if k, err = Probe(nil); err != nil {
			return nil, fmt.Errorf("load %s: %w", s.cfg.OpsName(), err)
		}
	}
	name := s.cfg.OpsName()
	spec := s.specs[k.Gen]
	if spec == nil {
		return nil, fmt.Errorf("load %s: no object for kfunc generation %s", name, k.Gen)
	}
	spec = spec.Copy()

	if err := s.prepare(spec, k, log); err != nil {
		return nil, fmt.Errorf("load %s: %w", name, err)
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("load %s: %w", name, permissionError(err))
	}
	coll, err := loadCollection(opts.Context, spec, name, log)
	if err != nil {
		le := &LoadError{Name: name, Gen: k.Gen, Err: permissionError(err)}
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			le.Tail = verifierTail(ve.Log)
		}
		return nil, le
	}
	sched, err := newScheduler(name, k, spec, coll)
	if err != nil {
		coll.Close()
		return nil, fmt.Errorf("load %s: %w", name, err)
	}
	if err := sched.bind(s.comps, log); err != nil {
		sched.Close()
		return nil, fmt.Errorf("load %s: %w", name, err)
	}
	return sched, nil
}

// loadCollection loads spec into the kernel, saying on log that the
// verifier runs and, every VerifierNotice, that it still does, and
// returning when ctx ends without waiting for it.
func loadCollection(ctx context.Context, spec *ebpf.CollectionSpec, name string, log *slog.Logger) (*ebpf.Collection, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("load %s: %w", name, err)
	}
	type result struct {
		coll *ebpf.Collection
		err  error
	}
	done := make(chan result, 1)
	start := time.Now()
	log.Debug("sched_ext: the kernel's verifier checks the scheduler", "scheduler", name, "programs", len(spec.Programs))
	go func() {
		coll, err := ebpf.NewCollection(spec)
		done <- result{coll, err}
	}()
	tick := time.NewTicker(VerifierNotice)
	defer tick.Stop()
	for {
		select {
		case r := <-done:
			if r.err != nil {
				return nil, r.err
			}
			logPrograms(r.coll, name, time.Since(start), log)
			return r.coll, nil
		case <-tick.C:
			log.Info("sched_ext: the verifier is still checking the scheduler", "scheduler", name, "elapsed", time.Since(start).Round(time.Second))
		case <-ctx.Done():
			go func() {
				if r := <-done; r.coll != nil {
					r.coll.Close()
				}
			}()
			return nil, fmt.Errorf("load %s: gave up waiting for the verifier after %v: %w", name, time.Since(start).Round(time.Millisecond), context.Cause(ctx))
		}
	}
}

// logPrograms says at Debug level how long the load took and how many
// instructions the verifier went through for each program of coll (the
// kernel counts them from 5.16), which tells the costly callback.
func logPrograms(coll *ebpf.Collection, name string, took time.Duration, log *slog.Logger) {
	if !log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	log.Debug("sched_ext: loaded", "scheduler", name, "took", took.Round(time.Millisecond))
	for _, prog := range slices.Sorted(maps.Keys(coll.Programs)) {
		info, err := coll.Programs[prog].Info()
		if err != nil {
			log.Debug("sched_ext: program loaded", "scheduler", name, "program", prog, "info", err)
			continue
		}
		insns, _ := info.VerifiedInstructions()
		log.Debug("sched_ext: program loaded", "scheduler", name, "program", prog, "verified_insns", insns)
	}
}

// prepare applies the kernel-dependent edits to a copy of the object.
func (s *Spec) prepare(spec *ebpf.CollectionSpec, k *Kernel, log *slog.Logger) error {
	ops, err := opsMap(spec)
	if err != nil {
		return err
	}
	for name, p := range spec.Programs {
		member, ok := strings.CutPrefix(p.AttachTo, opsType+":")
		if p.Type != ebpf.StructOps || !ok || k.HasOp(member) {
			continue
		}
		if member == "exit" {
			return fmt.Errorf("kernel %s has no ops.exit: %w", k.Release, ErrNotSupported)
		}
		log.Warn("sched_ext: dropping callback the kernel lacks", "scheduler", s.cfg.OpsName(), "callback", member, "program", name, "kernel", k.Release)
		delete(spec.Programs, name)
	}

	value, err := opsValue(ops)
	if err != nil {
		return err
	}
	st, _ := btf.As[*btf.Struct](ops.Value)
	w := opsWriter{st: st, buf: value, kernel: k}

	w.bytes("name", []byte(s.cfg.OpsName()))
	w.uint("timeout_ms", uint64(s.cfg.Timeout.Milliseconds()))
	var flags uint64
	for _, f := range s.flags {
		v, err := k.Enums.Value(string(f))
		if err != nil {
			return fmt.Errorf("flag %s: %w", f, err)
		}
		flags |= v
	}
	w.uint("flags", flags)
	w.uint("dispatch_max_batch", uint64(s.cfg.DispatchMaxBatch))
	w.uint("exit_dump_len", uint64(s.cfg.ExitDumpLen))
	if k.HasOp("hotplug_seq") {
		// The kernel compares this with its own counter at attach and
		// refuses with a restart request if a CPU came or went since the
		// scheduler read the topology, i.e. since now.
		if st, err := k.Status(); err == nil {
			w.uint("hotplug_seq", st.HotplugSeq)
		}
	}
	if w.err != nil {
		return w.err
	}

	for name, value := range s.constants {
		if err := spec.Variables[name].Set(value); err != nil {
			return fmt.Errorf("constant %s: %w", name, err)
		}
	}
	for _, b := range s.comps {
		for _, cb := range slices.Concat(b.needs.Callbacks, b.needs.Owns) {
			if !hasCallback(spec, cb) {
				return fmt.Errorf("component %s needs ops.%s, which kernel %s lacks: %w", b.c.Name(), cb, k.Release, ErrNotSupported)
			}
		}
	}
	if s.cfg.Slice > 0 {
		if err := spec.Variables[varSliceNs].Set(uint64(s.cfg.Slice.Nanoseconds())); err != nil {
			return fmt.Errorf("slice: %w", err)
		}
	}
	return nil
}

// opsValue returns the bytes of the struct_ops map's one value, which Load
// edits in place (the spec is a copy).
func opsValue(ops *ebpf.MapSpec) ([]byte, error) {
	if len(ops.Contents) != 1 {
		return nil, fmt.Errorf("struct_ops map %s has %d values, want 1", ops.Name, len(ops.Contents))
	}
	value, ok := ops.Contents[0].Value.([]byte)
	if !ok {
		return nil, fmt.Errorf("struct_ops map %s: value is %T, want []byte", ops.Name, ops.Contents[0].Value)
	}
	return value, nil
}

// opsWriter writes data members of struct sched_ext_ops by name, at the
// offsets of the object's BTF (the kernel-side layout is cilium/ebpf's
// business). It keeps the first error.
type opsWriter struct {
	st     *btf.Struct
	buf    []byte
	kernel *Kernel
	err    error
}

func (w *opsWriter) member(name string, nonzero bool) (btf.Member, int, bool) {
	if w.err != nil {
		return btf.Member{}, 0, false
	}
	i := slices.IndexFunc(w.st.Members, func(m btf.Member) bool { return m.Name == name })
	if i < 0 {
		if nonzero {
			w.err = fmt.Errorf("sched_ext_ops.%s is not in the object's vmlinux.h", name)
		}
		return btf.Member{}, 0, false
	}
	if !w.kernel.HasOp(name) {
		if nonzero {
			w.err = fmt.Errorf("sched_ext_ops.%s: kernel %s lacks it: %w", name, w.kernel.Release, ErrNotSupported)
		}
		return btf.Member{}, 0, false
	}
	m := w.st.Members[i]
	size, err := btf.Sizeof(m.Type)
	if err != nil {
		w.err = fmt.Errorf("sched_ext_ops.%s: %w", name, err)
		return btf.Member{}, 0, false
	}
	if off := int(m.Offset.Bytes()); off+size > len(w.buf) {
		w.err = fmt.Errorf("sched_ext_ops.%s: outside the map value", name)
		return btf.Member{}, 0, false
	}
	return m, size, true
}

func (w *opsWriter) uint(name string, v uint64) {
	m, size, ok := w.member(name, v != 0)
	if !ok {
		return
	}
	dst := w.buf[m.Offset.Bytes():]
	switch size {
	case 4:
		if v > 1<<32-1 {
			w.err = fmt.Errorf("sched_ext_ops.%s: %d does not fit 32 bits", name, v)
			return
		}
		binary.NativeEndian.PutUint32(dst, uint32(v))
	case 8:
		binary.NativeEndian.PutUint64(dst, v)
	default:
		w.err = fmt.Errorf("sched_ext_ops.%s: unexpected size %d", name, size)
	}
}

func (w *opsWriter) bytes(name string, v []byte) {
	m, size, ok := w.member(name, true)
	if !ok {
		return
	}
	if len(v) > size {
		w.err = fmt.Errorf("sched_ext_ops.%s: %d bytes do not fit %d", name, len(v), size)
		return
	}
	dst := w.buf[m.Offset.Bytes() : int(m.Offset.Bytes())+size]
	clear(dst)
	copy(dst, v)
}
