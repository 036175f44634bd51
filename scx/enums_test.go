package scx

import (
	"errors"
	"math/bits"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf/btf"
	"github.com/google/go-cmp/cmp"
)

func TestEnumsZero(t *testing.T) {
	var e Enums
	if _, err := e.Value("SCX_DSQ_LOCAL"); !errors.Is(err, ErrNotSupported) {
		t.Errorf("Value on zero Enums: got %v, want an error wrapping ErrNotSupported", err)
	}
	if v, ok := e.Lookup("SCX_DSQ_LOCAL"); ok || v != 0 {
		t.Errorf("Lookup on zero Enums = %d, %t", v, ok)
	}
	if names := e.Names(""); len(names) != 0 {
		t.Errorf("Names on zero Enums = %v", names)
	}
	if e.Len() != 0 {
		t.Errorf("Len on zero Enums = %d", e.Len())
	}
}

func TestEnums(t *testing.T) {
	minusTwo := int32(-2)
	spec := fakeKernelBTF(t, []string{"enqueue"}, nil,
		&btf.Enum{Name: "scx_kick_flags", Size: 4, Values: []btf.EnumValue{
			{Name: "SCX_KICK_IDLE", Value: 1},
			{Name: "SCX_KICK_PREEMPT", Value: 2},
			{Name: "SCX_KICK_WAIT", Value: 4},
		}},
		&btf.Enum{Name: "scx_consts", Size: 4, Signed: true, Values: []btf.EnumValue{
			{Name: "SCX_NEGATIVE", Value: uint64(int64(minusTwo))},
		}},
		// Anonymous enums are not read: none declares SCX_ names in any
		// supported kernel (TestEnumTypesComplete).
		&btf.Enum{Name: "", Size: 8, Values: []btf.EnumValue{
			{Name: "SCX_ANON", Value: 1 << 40},
			{Name: "OTHER_ANON", Value: 3},
		}},
		// A second enum of the same name that repeats an enumerator: the
		// first value stays.
		&btf.Enum{Name: "scx_kick_flags", Size: 4, Values: []btf.EnumValue{
			{Name: "SCX_KICK_IDLE", Value: 99},
			{Name: "SCX_KICK_EXTRA", Value: 8},
		}},
		&btf.Enum{Name: "unrelated", Size: 4, Values: []btf.EnumValue{
			{Name: "TASK_RUNNING", Value: 0},
			{Name: "scx_lowercase", Value: 1},
		}},
	)
	k, err := Probe(&ProbeOptions{KernelBTF: spec, Release: "test", SysFS: sysfsFiles(nil)})
	if err != nil {
		t.Fatal(err)
	}
	e := k.Enums

	for name, want := range map[string]uint64{
		"SCX_KICK_IDLE":    1,
		"SCX_KICK_PREEMPT": 2,
		"SCX_KICK_WAIT":    4,
		"SCX_KICK_EXTRA":   8,
		"SCX_NEGATIVE":     0xffff_ffff_ffff_fffe, // sign-extended bits of -2
	} {
		got, err := e.Value(name)
		if err != nil || got != want {
			t.Errorf("Value(%q) = %#x, %v; want %#x", name, got, err, want)
		}
		if got, ok := e.Lookup(name); !ok || got != want {
			t.Errorf("Lookup(%q) = %#x, %t; want %#x", name, got, ok, want)
		}
	}
	for name, want := range map[string]string{
		"SCX_KICK_IDLE":  "scx_kick_flags",
		"SCX_KICK_EXTRA": "scx_kick_flags",
		"SCX_NEGATIVE":   "scx_consts",
	} {
		if got, ok := e.typeOf(name); !ok || got != want {
			t.Errorf("typeOf(%q) = %q, %t; want %q", name, got, ok, want)
		}
	}
	for _, name := range []string{"TASK_RUNNING", "SCX_ANON", "OTHER_ANON", "scx_lowercase", "SCX_FOO", ""} {
		if v, ok := e.Lookup(name); ok {
			t.Errorf("Lookup(%q) = %d, true; want absent", name, v)
		}
		_, err := e.Value(name)
		if !errors.Is(err, ErrNotSupported) {
			t.Errorf("Value(%q): got %v, want an error wrapping ErrNotSupported", name, err)
		} else if !strings.Contains(err.Error(), "kernel has no enumerator "+name) {
			t.Errorf("Value(%q): error %q does not name the enumerator", name, err)
		}
	}
	if e.Len() != 5 {
		t.Errorf("Len() = %d, want 5", e.Len())
	}
	if diff := cmp.Diff([]string{"SCX_KICK_EXTRA", "SCX_KICK_IDLE", "SCX_KICK_PREEMPT", "SCX_KICK_WAIT"}, e.Names("SCX_KICK_")); diff != "" {
		t.Errorf("Names(SCX_KICK_) mismatch (-want +got):\n%s", diff)
	}
	if all := e.Names(""); len(all) != e.Len() {
		t.Errorf("Names(\"\") = %v, want all %d", all, e.Len())
	}
	if got := e.Names("SCX_NOPE_"); len(got) != 0 {
		t.Errorf("Names(SCX_NOPE_) = %v", got)
	}
}

// TestEnumsMatrix checks the enumerators every scheduler relies on against
// what their meaning implies, on each kernel of the matrix.
func TestEnumsMatrix(t *testing.T) {
	forEachMatrixKernel(t, func(t *testing.T, name string, p *matrixProbe) {
		e := p.kernel.Enums
		value := func(name string) uint64 {
			t.Helper()
			v, err := e.Value(name)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		const (
			builtin = uint64(1) << 63 // built-in DSQ ids have bit 63 set
			localOn = uint64(1) << 62 // LOCAL_ON ids also bit 62, the CPU below
		)

		local, global, localOnID := value("SCX_DSQ_LOCAL"), value("SCX_DSQ_GLOBAL"), value("SCX_DSQ_LOCAL_ON")
		for n, v := range map[string]uint64{"SCX_DSQ_LOCAL": local, "SCX_DSQ_GLOBAL": global} {
			if v&builtin == 0 || v&localOn != 0 {
				t.Errorf("%s = %#x: want a built-in DSQ id (bit 63) that is not LOCAL_ON (bit 62)", n, v)
			}
			if v == builtin {
				t.Errorf("%s = %#x: the bare built-in flag is the invalid DSQ id", n, v)
			}
		}
		if local == global {
			t.Errorf("SCX_DSQ_LOCAL = SCX_DSQ_GLOBAL = %#x", local)
		}
		if localOnID&(builtin|localOn) != builtin|localOn || uint32(localOnID) != 0 {
			t.Errorf("SCX_DSQ_LOCAL_ON = %#x: want bits 63 and 62 set and room for a CPU number in the low 32 bits", localOnID)
		}
		if typ, _ := e.typeOf("SCX_DSQ_LOCAL"); typ != "scx_dsq_id_flags" {
			t.Logf("SCX_DSQ_LOCAL is in enum %q", typ)
		}

		// A default slice is a few milliseconds, in nanoseconds.
		if slice := time.Duration(value("SCX_SLICE_DFL")); slice < time.Millisecond || slice > time.Second {
			t.Errorf("SCX_SLICE_DFL = %v: not a plausible default time slice", slice)
		}

		// Error exit kinds sit above the graceful ones.
		exitErr, stall := value("SCX_EXIT_ERROR"), value("SCX_EXIT_ERROR_STALL")
		if stall <= exitErr {
			t.Errorf("SCX_EXIT_ERROR_STALL = %d, not above SCX_EXIT_ERROR = %d", stall, exitErr)
		}
		for _, graceful := range []string{"SCX_EXIT_NONE", "SCX_EXIT_DONE", "SCX_EXIT_UNREG", "SCX_EXIT_SYSRQ"} {
			if v, ok := e.Lookup(graceful); ok && v >= exitErr {
				t.Errorf("%s = %d, not below SCX_EXIT_ERROR = %d", graceful, v, exitErr)
			}
		}

		// Flags are single bits, distinct within their family.
		for _, family := range []struct{ prefix, flag string }{
			{"SCX_ENQ_", "SCX_ENQ_WAKEUP"},
			{"SCX_KICK_", "SCX_KICK_PREEMPT"},
			{"SCX_OPS_", "SCX_OPS_KEEP_BUILTIN_IDLE"},
		} {
			v := value(family.flag)
			if bits.OnesCount64(v) != 1 {
				t.Errorf("%s = %#x: want a single-bit flag", family.flag, v)
			}
			typ, _ := e.typeOf(family.flag)
			for _, other := range e.Names(family.prefix) {
				if otyp, _ := e.typeOf(other); other != family.flag && otyp == typ && value(other) == v {
					t.Errorf("%s and %s (enum %s) are both %#x", family.flag, other, typ, v)
				}
			}
		}

		if _, err := e.Value("SCX_NO_SUCH_ENUMERATOR"); !errors.Is(err, ErrNotSupported) {
			t.Errorf("Value of an unknown name: got %v, want an error wrapping ErrNotSupported", err)
		}
		if len(e.Names("SCX_DSQ_")) < 4 || e.Len() < 50 {
			t.Errorf("only %d enumerators (%d SCX_DSQ_)", e.Len(), len(e.Names("SCX_DSQ_")))
		}
	})
}
