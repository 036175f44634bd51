package scx

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
)

// sysfsFiles builds a MapFS rooted like /sys from files under
// kernel/sched_ext.
func sysfsFiles(files map[string]string) fstest.MapFS {
	m := fstest.MapFS{
		"kernel/sched_ext": &fstest.MapFile{Mode: fs.ModeDir | 0o755},
	}
	for name, content := range files {
		m["kernel/sched_ext/"+name] = &fstest.MapFile{Data: []byte(content), Mode: 0o444}
	}
	return m
}

func TestReadStatus(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  Status
	}{
		{
			name: "disabled",
			files: map[string]string{
				"state":       "disabled\n",
				"switch_all":  "0\n",
				"nr_rejected": "0\n",
				"hotplug_seq": "0\n",
				"enable_seq":  "0\n",
			},
			want: Status{State: StateDisabled},
		},
		{
			name: "disabled after a run",
			files: map[string]string{
				"state":       "disabled\n",
				"switch_all":  "0\n",
				"nr_rejected": "0\n",
				"hotplug_seq": "2\n",
				"enable_seq":  "3\n",
			},
			want: Status{State: StateDisabled, EnableSeq: 3, HotplugSeq: 2},
		},
		{
			name: "enabled",
			files: map[string]string{
				"state":       "enabled\n",
				"switch_all":  "1\n",
				"nr_rejected": "7\n",
				"hotplug_seq": "1\n",
				"enable_seq":  "4\n",
				"root/ops":    "simple\n",
				"root/events": "SCX_EV_SELECT_CPU_FALLBACK: 0\n",
			},
			want: Status{State: StateEnabled, Ops: "simple", EnableSeq: 4, HotplugSeq: 1, NrRejected: 7, SwitchAll: true},
		},
		{
			name: "enabling, partial switch",
			files: map[string]string{
				"state":      "enabling\n",
				"switch_all": "0\n",
				"enable_seq": "18446744073709551615\n",
				"root/ops":   "qmap\n",
			},
			want: Status{State: StateEnabling, Ops: "qmap", EnableSeq: 1<<64 - 1},
		},
		{
			name:  "only state",
			files: map[string]string{"state": "disabling"},
			want:  Status{State: StateDisabling},
		},
		{
			name:  "unknown state kept",
			files: map[string]string{"state": "prepping\n"},
			want:  Status{State: "prepping"},
		},
		{
			name:  "empty ops",
			files: map[string]string{"state": "enabled\n", "root/ops": "\n"},
			want:  Status{State: StateEnabled},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadStatus(sysfsFiles(tt.files))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ReadStatus mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadStatusNoSchedExt(t *testing.T) {
	for name, sysfs := range map[string]fs.FS{
		"empty": fstest.MapFS{},
		"no sched_ext": fstest.MapFS{
			"kernel/mm/transparent_hugepage/enabled": &fstest.MapFile{Data: []byte("always [madvise] never\n")},
		},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ReadStatus(sysfs)
			if !errors.Is(err, ErrNotSupported) {
				t.Fatalf("ReadStatus: got error %v, want one wrapping ErrNotSupported", err)
			}
			if !strings.Contains(err.Error(), "kernel/sched_ext") {
				t.Errorf("error %q does not name kernel/sched_ext", err)
			}
		})
	}
}

func TestReadStatusErrors(t *testing.T) {
	tests := []struct {
		name  string
		sysfs fs.FS
		want  []string // substrings of the error
	}{
		{
			name:  "malformed enable_seq",
			sysfs: sysfsFiles(map[string]string{"state": "enabled\n", "enable_seq": "three\n"}),
			want:  []string{"enable_seq", `"three"`},
		},
		{
			name:  "negative nr_rejected",
			sysfs: sysfsFiles(map[string]string{"state": "enabled\n", "nr_rejected": "-1\n"}),
			want:  []string{"nr_rejected", `"-1"`},
		},
		{
			name:  "overflowing hotplug_seq",
			sysfs: sysfsFiles(map[string]string{"state": "enabled\n", "hotplug_seq": "18446744073709551616\n"}),
			want:  []string{"hotplug_seq", `"18446744073709551616"`},
		},
		{
			name:  "malformed switch_all",
			sysfs: sysfsFiles(map[string]string{"state": "enabled\n", "switch_all": "yes\n"}),
			want:  []string{"switch_all", `"yes"`},
		},
		{
			name:  "empty number",
			sysfs: sysfsFiles(map[string]string{"state": "disabled\n", "nr_rejected": "\n"}),
			want:  []string{"nr_rejected", `""`},
		},
		{
			name:  "empty flag",
			sysfs: sysfsFiles(map[string]string{"state": "disabled\n", "switch_all": ""}),
			want:  []string{"switch_all", `""`},
		},
		{
			name:  "long garbage is shortened",
			sysfs: sysfsFiles(map[string]string{"state": "enabled\n", "enable_seq": strings.Repeat("x", 1000)}),
			want:  []string{"enable_seq", `xxx"...`},
		},
		{
			name:  "oversized file",
			sysfs: sysfsFiles(map[string]string{"state": strings.Repeat("x", maxStatusFile+1)}),
			want:  []string{"state", "larger than"},
		},
		{
			name:  "missing state",
			sysfs: sysfsFiles(map[string]string{"enable_seq": "1\n"}),
			want:  []string{"state"},
		},
		{
			name: "sched_ext not a directory",
			sysfs: fstest.MapFS{
				"kernel/sched_ext": &fstest.MapFile{Data: []byte("x")},
			},
			want: []string{"kernel/sched_ext", "not a directory"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadStatus(tt.sysfs)
			if err == nil {
				t.Fatalf("ReadStatus = %v, want an error", got)
			}
			if errors.Is(err, ErrNotSupported) {
				t.Errorf("error %q wraps ErrNotSupported; the kernel has sched_ext", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if len(err.Error()) > 300 {
				t.Errorf("error is %d bytes long", len(err.Error()))
			}
		})
	}
}

func TestStatusString(t *testing.T) {
	tests := []struct {
		s    Status
		want string
	}{
		{Status{State: StateDisabled}, "disabled switch_all=false enable_seq=0 hotplug_seq=0 nr_rejected=0"},
		{
			Status{State: StateEnabled, Ops: "simple", EnableSeq: 3, HotplugSeq: 1, NrRejected: 2, SwitchAll: true},
			"enabled ops=simple switch_all=true enable_seq=3 hotplug_seq=1 nr_rejected=2",
		},
		{Status{}, "unknown switch_all=false enable_seq=0 hotplug_seq=0 nr_rejected=0"},
	}
	for _, tt := range tests {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.s, got, tt.want)
		}
	}
}

func TestKernelStatus(t *testing.T) {
	k := &Kernel{sysfs: sysfsFiles(map[string]string{"state": "enabled\n", "root/ops": "lb\n"})}
	got, err := k.Status()
	if err != nil {
		t.Fatal(err)
	}
	if want := (Status{State: StateEnabled, Ops: "lb"}); got != want {
		t.Errorf("Status() = %v, want %v", got, want)
	}
}

// FuzzReadStatus checks that ReadStatus never panics on any file contents,
// and that what it accepts is consistent with the files.
func FuzzReadStatus(f *testing.F) {
	f.Add("enabled\n", "simple\n", "1\n", "3\n", "0\n", "0\n")
	f.Add("disabled\n", "", "0\n", "0\n", "0\n", "0\n")
	f.Add("", "\n", "", "", "", "")
	f.Add("enabling", "x y", "2", "-1", "1e3", " 7 ")
	f.Add("disabled\n", "ops\n", "0\n", "18446744073709551616\n", "0x10\n", "+1\n")
	f.Fuzz(func(t *testing.T, state, ops, switchAll, enableSeq, hotplugSeq, nrRejected string) {
		files := map[string]string{
			"state":       state,
			"root/ops":    ops,
			"switch_all":  switchAll,
			"enable_seq":  enableSeq,
			"hotplug_seq": hotplugSeq,
			"nr_rejected": nrRejected,
		}
		s, err := ReadStatus(sysfsFiles(files))
		if err != nil {
			if errors.Is(err, ErrNotSupported) {
				t.Fatalf("error %q wraps ErrNotSupported although kernel/sched_ext exists", err)
			}
			return
		}
		if string(s.State) != strings.TrimSpace(state) {
			t.Errorf("State = %q from %q", s.State, state)
		}
		if s.Ops != strings.TrimSpace(ops) {
			t.Errorf("Ops = %q from %q", s.Ops, ops)
		}
		if s.SwitchAll != (strings.TrimSpace(switchAll) == "1") {
			t.Errorf("SwitchAll = %t from %q", s.SwitchAll, switchAll)
		}
		_ = s.String()
	})
}
