package scx_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/scxkit/scxkit/scx"
	"github.com/scxkit/scxkit/scx/internal/attachtest"
)

func TestConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  scx.Config
		want string // substring of the error; "" means valid
	}{
		{"minimal", scx.Config{Name: "simple"}, ""},
		{"full", scx.Config{Name: "simple", NameSuffix: "_fifo.v1", Timeout: 5 * time.Second, Flags: []scx.OpsFlag{scx.KeepBuiltinIdle, scx.EnqLast},
			DispatchMaxBatch: 16, ExitDumpLen: 4096, Slice: 5 * time.Millisecond, Constants: map[string]any{"fifo": true}}, ""},
		{"no name", scx.Config{}, "Name is empty"},
		{"name too long", scx.Config{Name: strings.Repeat("n", 120), NameSuffix: "_suffix_"}, "is 128 bytes long: the kernel allows at most 127"},
		{"space in name", scx.Config{Name: "my sched"}, `invalid character ' ' at byte 2`},
		{"dash in suffix", scx.Config{Name: "simple", NameSuffix: "-fifo"}, `invalid character '-' at byte 6`},
		{"non-ASCII name", scx.Config{Name: "sché"}, "invalid character"},
		{"negative timeout", scx.Config{Name: "s", Timeout: -time.Second}, "Timeout is negative"},
		{"timeout too long", scx.Config{Name: "s", Timeout: time.Minute}, "exceeds the kernel's maximum of 30s"},
		{"sub-ms timeout", scx.Config{Name: "s", Timeout: 1500 * time.Microsecond}, "not a whole number of milliseconds"},
		{"negative slice", scx.Config{Name: "s", Slice: -time.Millisecond}, "Slice is negative"},
		{"tiny slice", scx.Config{Name: "s", Slice: time.Nanosecond}, "shorter than 1µs"},
		{"dump too long", scx.Config{Name: "s", ExitDumpLen: 1 << 20}, "ExitDumpLen 1048576 exceeds 32768"},
		{"unknown flag", scx.Config{Name: "s", Flags: []scx.OpsFlag{"SCX_OPS_TURBO"}}, `unknown flag "SCX_OPS_TURBO": known flags are SCX_OPS_KEEP_BUILTIN_IDLE`},
		{"empty constant name", scx.Config{Name: "s", Constants: map[string]any{"": uint32(1)}}, "empty name"},
		{"int constant", scx.Config{Name: "s", Constants: map[string]any{"nr": 3}}, `Constants["nr"] = 3 (int): int has no fixed size: use the sized type of the C global, e.g. int32 or uint32`},
		{"string constant", scx.Config{Name: "s", Constants: map[string]any{"tag": "x"}}, `string has no fixed size: use bool, a sized integer`},
		{"nil constant", scx.Config{Name: "s", Constants: map[string]any{"tag": nil}}, `Constants["tag"] = <nil> (<nil>)`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, scx.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate: %v; want ErrInvalid containing %q", err, tt.want)
			}
		})
	}
}

// TestOpen checks what Open finds wrong in objects and options, without a
// sched_ext kernel.
func TestOpen(t *testing.T) {
	fifo := attachtest.Fifo
	for _, tt := range []struct {
		name string
		objs scx.Objects
		cfg  scx.Config
		want string
	}{
		{"ok", fifo, scx.Config{Name: "fifo", Slice: time.Millisecond}, ""},
		{"ok with constant", attachtest.Fail, scx.Config{Name: "fail", Constants: map[string]any{"mode": uint32(2)}}, ""},
		{"invalid config", fifo, scx.Config{Name: "bad name"}, "invalid character"},
		{"swapped objects", scx.Objects{Base: fifo.V2, V2: fifo.Base}, scx.Config{Name: "fifo"}, "object was compiled for kfunc generation v2, not base"},
		{"missing V2", scx.Objects{Base: fifo.Base}, scx.Config{Name: "fifo"}, "no object for kfunc generation v2: set Objects.V2"},
		{"unknown constant", fifo, scx.Config{Name: "fifo", Constants: map[string]any{"fifo": true}}, `Constants["fifo"]: the object has no global of that name`},
		{"constant of the wrong size", attachtest.Fail, scx.Config{Name: "fail", Constants: map[string]any{"mode": true}}, `Constants["mode"] = true (bool): bool is 1 bytes, the global mode 4: use a 4-byte type`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			spec, err := scx.Open(tt.objs, tt.cfg)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				if got := spec.Config().OpsName(); got != tt.cfg.Name {
					t.Errorf("OpsName = %q", got)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Open: %v; want an error containing %q", err, tt.want)
			}
		})
	}
}
