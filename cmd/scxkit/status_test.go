package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"maps"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/cilium/ebpf/btf"
	"github.com/google/go-cmp/cmp"

	"github.com/scxkit/scxkit/scx"
)

// withProbeOptions makes the status command probe opts for the rest of the
// test.
func withProbeOptions(t *testing.T, opts *scx.ProbeOptions) {
	t.Helper()
	old := statusProbeOptions
	statusProbeOptions = opts
	t.Cleanup(func() { statusProbeOptions = old })
}

// decodeStatus decodes status --json output, failing on anything but
// exactly one JSON object, and returns the object and its keys.
func decodeStatus(t *testing.T, out string) (map[string]json.RawMessage, []string) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(out))
	var obj map[string]json.RawMessage
	if err := dec.Decode(&obj); err != nil {
		t.Fatalf("decode status --json output: %v\n%s", err, out)
	}
	if dec.More() {
		t.Fatalf("status --json printed more than one JSON value:\n%s", out)
	}
	return obj, slices.Sorted(maps.Keys(obj))
}

// TestStatusHost runs status on this machine, which normally has no
// sched_ext: that is a normal answer with exit status 0.
func TestStatusHost(t *testing.T) {
	_, hostErr := scx.Probe(nil)
	if hostErr != nil && !errors.Is(hostErr, scx.ErrNotSupported) {
		t.Fatalf("probe the host: %v", hostErr)
	}
	release := unameRelease()
	if release == "" {
		t.Fatal("uname gave no release")
	}

	code, stdout, stderr := runArgs(t, "status")
	if code != 0 || stderr != "" {
		t.Fatalf("status: exit status %d, stderr:\n%s", code, stderr)
	}
	t.Logf("status:\n%s", stdout)
	if !strings.Contains(stdout, "kernel:       "+release+"\n") {
		t.Errorf("output does not name the kernel %s:\n%s", release, stdout)
	}

	code, jsonOut, stderr := runArgs(t, "status", "--json")
	if code != 0 || stderr != "" {
		t.Fatalf("status --json: exit status %d, stderr:\n%s", code, stderr)
	}
	obj, keys := decodeStatus(t, jsonOut)
	var got statusReport
	if err := json.Unmarshal([]byte(jsonOut), &got); err != nil {
		t.Fatal(err)
	}
	if got.Release != release {
		t.Errorf("release = %q, want %q", got.Release, release)
	}

	if hostErr == nil {
		// A host with sched_ext, or the tests run in a guest.
		if !got.Supported || got.KernelStatus == nil || len(got.OpsMembers) == 0 || len(got.Enums) == 0 {
			t.Errorf("sched_ext host: got %s", jsonOut)
		}
		if !strings.Contains(stdout, "sched_ext:    available\n") {
			t.Errorf("sched_ext host: output does not say available:\n%s", stdout)
		}
		return
	}
	for _, want := range []string{"sched_ext:    not available\n", "reason:       " + hostErr.Error() + "\n", "scxkit demo"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "state:") {
		t.Errorf("output of an unsupported host shows a state:\n%s", stdout)
	}
	if diff := cmp.Diff([]string{"reason", "release", "supported"}, keys); diff != "" {
		t.Errorf("JSON keys of an unsupported host (-want +got):\n%s\n%s", diff, jsonOut)
	}
	if string(obj["supported"]) != "false" {
		t.Errorf("supported = %s, want false", obj["supported"])
	}
	if got.Reason != hostErr.Error() || !strings.Contains(got.Reason, "sched_ext") {
		t.Errorf("reason = %q, want Probe's error %q", got.Reason, hostErr)
	}
}

// fakeKernel is a kernel with sched_ext for scx.Probe: BTF and sysfs.
type fakeKernel struct {
	ops   []string
	funcs []string
	enums []*btf.Enum
	sysfs map[string]string // files under kernel/sched_ext; nil: no such directory
}

// fakeBTF builds the kernel's BTF: struct sched_ext_ops with one pointer
// member per op, a function per kfunc, and the enums.
func (k *fakeKernel) fakeBTF(t *testing.T) *btf.Spec {
	t.Helper()
	ptr := &btf.Pointer{Target: &btf.Void{}}
	ops := &btf.Struct{Name: "sched_ext_ops", Size: uint32(8 * len(k.ops))}
	for i, name := range k.ops {
		ops.Members = append(ops.Members, btf.Member{Name: name, Type: ptr, Offset: btf.Bits(64 * i)})
	}
	types := []btf.Type{ops}
	proto := &btf.FuncProto{Return: &btf.Void{}}
	for _, name := range k.funcs {
		types = append(types, &btf.Func{Name: name, Type: proto, Linkage: btf.GlobalFunc})
	}
	for _, e := range k.enums {
		types = append(types, e)
	}
	b, err := btf.NewBuilder(types, nil)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := b.Spec()
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

func (k *fakeKernel) options(t *testing.T) *scx.ProbeOptions {
	t.Helper()
	sysfs := fstest.MapFS{}
	if k.sysfs != nil {
		sysfs["kernel/sched_ext"] = &fstest.MapFile{Mode: fs.ModeDir | 0o755}
		for name, content := range k.sysfs {
			sysfs["kernel/sched_ext/"+name] = &fstest.MapFile{Data: []byte(content), Mode: 0o444}
		}
	}
	return &scx.ProbeOptions{KernelBTF: k.fakeBTF(t), Release: "7.3.4-test", SysFS: sysfs}
}

const (
	dsqBuiltin = uint64(1) << 63
	dsqLocalOn = uint64(1) << 62
)

// attachedKernel is a v2 kernel with a scheduler called simple attached.
func attachedKernel() *fakeKernel {
	return &fakeKernel{
		ops: []string{"select_cpu", "enqueue", "dequeue", "dispatch", "init", "exit", "dispatch_max_batch", "flags", "timeout_ms", "name", "hotplug_seq"},
		funcs: []string{"scx_bpf_dsq_insert", "scx_bpf_dsq_insert___v2", "scx_bpf_dsq_move_to_local",
			"scx_bpf_dsq_move_to_local___v2", "bpf_task_acquire"},
		enums: []*btf.Enum{
			{Name: "scx_dsq_id_flags", Size: 8, Values: []btf.EnumValue{
				{Name: "SCX_DSQ_FLAG_BUILTIN", Value: dsqBuiltin},
				{Name: "SCX_DSQ_FLAG_LOCAL_ON", Value: dsqLocalOn},
				{Name: "SCX_DSQ_INVALID", Value: dsqBuiltin},
				{Name: "SCX_DSQ_GLOBAL", Value: dsqBuiltin | 1},
				{Name: "SCX_DSQ_LOCAL", Value: dsqBuiltin | 2},
				{Name: "SCX_DSQ_LOCAL_ON", Value: dsqBuiltin | dsqLocalOn},
			}},
			{Name: "scx_public_consts", Size: 8, Values: []btf.EnumValue{
				{Name: "SCX_OPS_NAME_LEN", Value: 128},
				{Name: "SCX_SLICE_DFL", Value: 20000000},
			}},
			// Not a sched_ext enum type: Probe ignores it.
			{Name: "other_consts", Size: 4, Values: []btf.EnumValue{{Name: "SCX_NOT_MINE", Value: 7}}},
		},
		sysfs: map[string]string{
			"state":       "enabled\n",
			"root/ops":    "simple\n",
			"enable_seq":  "3\n",
			"hotplug_seq": "1\n",
			"nr_rejected": "2\n",
			"switch_all":  "1\n",
		},
	}
}

func TestStatusFakeAttached(t *testing.T) {
	withProbeOptions(t, attachedKernel().options(t))

	code, stdout, stderr := runArgs(t, "status")
	if code != 0 || stderr != "" {
		t.Fatalf("status: exit status %d, stderr:\n%s", code, stderr)
	}
	t.Logf("status:\n%s", stdout)
	for _, want := range []string{
		"kernel:       7.3.4-test\n",
		"sched_ext:    available\n",
		"state:        enabled\n",
		"scheduler:    simple\n",
		"enable_seq:   3\n",
		"hotplug_seq:  1\n",
		"nr_rejected:  2\n",
		"switch_all:   true\n",
		"kfuncs:       v2\n",
		"ops members:  11\n",
		"  select_cpu, enqueue, dequeue, dispatch, init, exit,\n",
		"  dispatch_max_batch, flags, timeout_ms, name, hotplug_seq\n",
		"enums:        8 SCX_ enumerators",
		"  SCX_DSQ_LOCAL     0x8000000000000002 (9223372036854775810)\n",
		"  SCX_DSQ_GLOBAL    0x8000000000000001 (9223372036854775809)\n",
		"  SCX_DSQ_LOCAL_ON  0xc000000000000000 (13835058055282163712)\n",
		"  SCX_SLICE_DFL     0x1312d00 (20000000)\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q", want)
		}
	}

	code, jsonOut, stderr := runArgs(t, "status", "--json")
	if code != 0 || stderr != "" {
		t.Fatalf("status --json: exit status %d, stderr:\n%s", code, stderr)
	}
	t.Logf("status --json:\n%s", jsonOut)
	_, keys := decodeStatus(t, jsonOut)
	wantKeys := []string{"enable_seq", "enums", "hotplug_seq", "kfunc_gen", "nr_rejected", "ops", "ops_members", "release", "state", "supported", "switch_all"}
	if diff := cmp.Diff(wantKeys, keys); diff != "" {
		t.Errorf("JSON keys (-want +got):\n%s", diff)
	}
	// Decode into a type of the test's own, so that the check does not
	// depend on the command's types, and the enums as uint64 to catch any
	// loss of precision.
	var got struct {
		Release    string            `json:"release"`
		Supported  bool              `json:"supported"`
		State      string            `json:"state"`
		Ops        string            `json:"ops"`
		EnableSeq  uint64            `json:"enable_seq"`
		HotplugSeq uint64            `json:"hotplug_seq"`
		NrRejected uint64            `json:"nr_rejected"`
		SwitchAll  bool              `json:"switch_all"`
		KfuncGen   string            `json:"kfunc_gen"`
		OpsMembers []string          `json:"ops_members"`
		Enums      map[string]uint64 `json:"enums"`
	}
	if err := json.Unmarshal([]byte(jsonOut), &got); err != nil {
		t.Fatal(err)
	}
	want := got
	want.Release, want.Supported, want.State, want.Ops = "7.3.4-test", true, "enabled", "simple"
	want.EnableSeq, want.HotplugSeq, want.NrRejected, want.SwitchAll = 3, 1, 2, true
	want.KfuncGen = "v2"
	want.OpsMembers = attachedKernel().ops
	want.Enums = map[string]uint64{
		"SCX_DSQ_FLAG_BUILTIN":  dsqBuiltin,
		"SCX_DSQ_FLAG_LOCAL_ON": dsqLocalOn,
		"SCX_DSQ_INVALID":       dsqBuiltin,
		"SCX_DSQ_GLOBAL":        dsqBuiltin | 1,
		"SCX_DSQ_LOCAL":         dsqBuiltin | 2,
		"SCX_DSQ_LOCAL_ON":      dsqBuiltin | dsqLocalOn,
		"SCX_OPS_NAME_LEN":      128,
		"SCX_SLICE_DFL":         20000000,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("status --json (-want +got):\n%s", diff)
	}
}

// TestStatusFakeIdle covers a sched_ext kernel with no scheduler attached,
// an older kernel's files and generation, and a missing key enumerator.
func TestStatusFakeIdle(t *testing.T) {
	k := attachedKernel()
	k.funcs = []string{"scx_bpf_dsq_insert", "scx_bpf_dsq_move_to_local"}
	k.enums = k.enums[:1]
	k.sysfs = map[string]string{"state": "disabled\n", "enable_seq": "0\n"}
	withProbeOptions(t, k.options(t))

	code, stdout, stderr := runArgs(t, "status")
	if code != 0 || stderr != "" {
		t.Fatalf("status: exit status %d, stderr:\n%s", code, stderr)
	}
	for _, want := range []string{"state:        disabled\n", "scheduler:    none\n", "switch_all:   false\n",
		"kfuncs:       base\n", "  SCX_SLICE_DFL     missing\n"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	code, jsonOut, _ := runArgs(t, "status", "--json")
	if code != 0 {
		t.Fatalf("status --json: exit status %d", code)
	}
	obj, _ := decodeStatus(t, jsonOut)
	for key, want := range map[string]string{"ops": `""`, "state": `"disabled"`, "kfunc_gen": `"base"`, "switch_all": "false"} {
		if got := string(obj[key]); got != want {
			t.Errorf("%s = %s, want %s", key, got, want)
		}
	}
}

// TestStatusFakeNoSysfs covers BTF with sched_ext but no
// /sys/kernel/sched_ext: not supported, which is no error.
func TestStatusFakeNoSysfs(t *testing.T) {
	k := attachedKernel()
	k.sysfs = nil
	withProbeOptions(t, k.options(t))

	code, jsonOut, stderr := runArgs(t, "status", "--json")
	if code != 0 || stderr != "" {
		t.Fatalf("status --json: exit status %d, stderr:\n%s", code, stderr)
	}
	var got statusReport
	if err := json.Unmarshal([]byte(jsonOut), &got); err != nil {
		t.Fatal(err)
	}
	if got.Supported || got.KernelStatus != nil || got.Release != "7.3.4-test" || !strings.Contains(got.Reason, "/sys/kernel/sched_ext") {
		t.Errorf("status --json = %s, want unsupported with a reason naming /sys/kernel/sched_ext", jsonOut)
	}
}

// TestStatusErrors covers failures to find out: exit status 1 and a message
// that names the problem.
func TestStatusErrors(t *testing.T) {
	tests := []struct {
		name  string
		sysfs fstest.MapFS
		want  string
	}{
		{
			name:  "sched_ext is a file",
			sysfs: fstest.MapFS{"kernel/sched_ext": &fstest.MapFile{Data: []byte("x")}},
			want:  "/sys/kernel/sched_ext is not a directory",
		},
		{
			name: "no state file",
			sysfs: fstest.MapFS{
				"kernel/sched_ext":            &fstest.MapFile{Mode: fs.ModeDir | 0o755},
				"kernel/sched_ext/enable_seq": &fstest.MapFile{Data: []byte("1\n")},
			},
			want: "kernel/sched_ext/state",
		},
		{
			name: "malformed counter",
			sysfs: fstest.MapFS{
				"kernel/sched_ext":             &fstest.MapFile{Mode: fs.ModeDir | 0o755},
				"kernel/sched_ext/state":       &fstest.MapFile{Data: []byte("enabled\n")},
				"kernel/sched_ext/nr_rejected": &fstest.MapFile{Data: []byte("many\n")},
			},
			want: `nr_rejected: malformed number "many"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := attachedKernel().options(t)
			opts.SysFS = tt.sysfs
			withProbeOptions(t, opts)
			for _, args := range [][]string{{"status"}, {"status", "--json"}} {
				code, stdout, stderr := runArgs(t, args...)
				if code != 1 {
					t.Errorf("%v: exit status %d, want 1", args, code)
				}
				if stdout != "" {
					t.Errorf("%v: printed a status:\n%s", args, stdout)
				}
				if !strings.HasPrefix(stderr, "scxkit status: ") || !strings.Contains(stderr, tt.want) {
					t.Errorf("%v: stderr %q does not name the problem (%q)", args, stderr, tt.want)
				}
			}
		})
	}
}

func TestWrap(t *testing.T) {
	tests := []struct {
		words []string
		width int
		want  []string
	}{
		{nil, 10, nil},
		{[]string{"a"}, 10, []string{"a"}},
		{[]string{"aa", "bb", "cc"}, 7, []string{"aa, bb,", "cc"}},
		{[]string{"longer_than_width", "x"}, 5, []string{"longer_than_width,", "x"}},
	}
	for _, tt := range tests {
		if got := wrap(tt.words, tt.width); !slices.Equal(got, tt.want) {
			t.Errorf("wrap(%q, %d) = %q, want %q", tt.words, tt.width, got, tt.want)
		}
	}
}

func TestStatusJSONUnsupportedShape(t *testing.T) {
	var buf bytes.Buffer
	k := attachedKernel()
	k.ops = nil
	opts := k.options(t)
	// BTF without struct sched_ext_ops: build it by hand.
	b, err := btf.NewBuilder([]btf.Type{&btf.Struct{Name: "task_struct"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if opts.KernelBTF, err = b.Spec(); err != nil {
		t.Fatal(err)
	}
	if err := status(&buf, opts, true); err != nil {
		t.Fatal(err)
	}
	_, keys := decodeStatus(t, buf.String())
	if diff := cmp.Diff([]string{"reason", "release", "supported"}, keys); diff != "" {
		t.Errorf("JSON keys (-want +got):\n%s\n%s", diff, buf.String())
	}
	if !strings.Contains(buf.String(), `"release": "7.3.4-test"`) || !strings.Contains(buf.String(), "CONFIG_SCHED_CLASS_EXT") {
		t.Errorf("unexpected output:\n%s", buf.String())
	}
}
