package energy

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/scxkit/scxkit/topology"
)

// knobTree writes files (path relative to root -> content) under a new
// temporary root. A content starting with "->" makes a symbolic link to
// the rest.
func knobTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for rel, content := range files {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(content, "->"); ok {
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// knobIntelFiles is an intel_pstate machine in active mode with HWP: one
// policy per CPU, with EPP. Policy 1 holds a raw EPP, and policy 3's
// governor has no trailing newline, to check that Restore puts back the
// exact bytes.
func knobIntelFiles(n int) map[string]string {
	f := map[string]string{}
	for c := range n {
		d := fmt.Sprintf("sys/devices/system/cpu/cpufreq/policy%d/", c)
		f[fmt.Sprintf("sys/devices/system/cpu/cpu%d/cpufreq", c)] = fmt.Sprintf("->../cpufreq/policy%d", c)
		f[d+"affected_cpus"] = fmt.Sprintf("%d\n", c)
		f[d+"related_cpus"] = fmt.Sprintf("%d\n", c)
		f[d+"scaling_driver"] = "intel_pstate\n"
		f[d+"scaling_available_governors"] = "performance powersave\n"
		f[d+"scaling_governor"] = "powersave\n"
		f[d+"energy_performance_available_preferences"] = "default performance balance_performance balance_power power \n"
		f[d+"energy_performance_preference"] = "balance_performance\n"
		f[d+"cpuinfo_min_freq"] = "800000\n"
		f[d+"cpuinfo_max_freq"] = "4700000\n"
		f[d+"scaling_min_freq"] = "800000\n"
		f[d+"scaling_max_freq"] = "4700000\n"
	}
	if n > 1 {
		f["sys/devices/system/cpu/cpufreq/policy1/energy_performance_preference"] = "102\n"
	}
	if n > 3 {
		f["sys/devices/system/cpu/cpufreq/policy3/scaling_governor"] = "powersave"
	}
	return f
}

// knobACPIFiles is an acpi-cpufreq machine with one policy for 4 CPUs and no
// EPP.
func knobACPIFiles() map[string]string {
	d := "sys/devices/system/cpu/cpufreq/policy0/"
	f := map[string]string{
		d + "affected_cpus":                 "0 1 2 3\n",
		d + "related_cpus":                  "0 1 2 3\n",
		d + "scaling_driver":                "acpi-cpufreq\n",
		d + "scaling_available_governors":   "conservative ondemand userspace powersave performance schedutil\n",
		d + "scaling_governor":              "schedutil\n",
		d + "cpuinfo_min_freq":              "800000\n",
		d + "cpuinfo_max_freq":              "2200000\n",
		d + "scaling_min_freq":              "800000\n",
		d + "scaling_max_freq":              "2200000\n",
		d + "scaling_available_frequencies": "2200000 1800000 1400000 800000\n",
	}
	for c := range 4 {
		f[fmt.Sprintf("sys/devices/system/cpu/cpu%d/cpufreq", c)] = "->../cpufreq/policy0"
	}
	return f
}

// knobBareFiles is a machine without cpufreq, as a virtual machine.
func knobBareFiles() map[string]string {
	f := map[string]string{"sys/devices/system/cpu/online": "0-3\n"}
	for c := range 4 {
		f[fmt.Sprintf("sys/devices/system/cpu/cpu%d/topology/core_id", c)] = fmt.Sprintf("%d\n", c)
	}
	return f
}

// knobSnapshot returns every file under root with its content, every
// directory as "dir" and every symbolic link as "->target".
func knobSnapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			m[rel] = "->" + target
		case d.IsDir():
			m[rel] = "dir"
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			m[rel] = string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func knobOpen(t *testing.T, root string) *Knobs {
	t.Helper()
	k, err := OpenKnobs(&KnobOptions{Root: root, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func knobRead(t *testing.T, root, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const knobPol = "sys/devices/system/cpu/cpufreq/policy"

// knobCountWrites makes k count its writes per path.
func knobCountWrites(k *Knobs) map[string]int {
	n := map[string]int{}
	k.write = func(name string, data []byte) error {
		n[name]++
		return writeKnobFile(name, data)
	}
	return n
}

func TestKnobPolicies(t *testing.T) {
	oldKernel := map[string]string{
		"sys/devices/system/cpu/cpu0/cpufreq/affected_cpus":  "0 1\n",
		"sys/devices/system/cpu/cpu0/cpufreq/scaling_driver": "acpi-cpufreq\n",
		"sys/devices/system/cpu/cpu1/cpufreq":                "->../cpu0/cpufreq",
		"sys/devices/system/cpu/cpu2/cpufreq/affected_cpus":  "2 3\n",
		"sys/devices/system/cpu/cpu2/cpufreq/scaling_driver": "acpi-cpufreq\n",
		"sys/devices/system/cpu/cpu3/cpufreq":                "->../cpu2/cpufreq",
	}
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"intel", knobIntelFiles(4), []string{
			knobPol + "0 0 intel_pstate", knobPol + "1 1 intel_pstate", knobPol + "2 2 intel_pstate", knobPol + "3 3 intel_pstate"}},
		{"acpi", knobACPIFiles(), []string{knobPol + "0 0-3 acpi-cpufreq"}},
		{"bare", knobBareFiles(), []string{}},
		{"old-kernel", oldKernel, []string{
			"sys/devices/system/cpu/cpu0/cpufreq 0-1 acpi-cpufreq",
			"sys/devices/system/cpu/cpu2/cpufreq 2-3 acpi-cpufreq"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := knobOpen(t, knobTree(t, tc.files))
			got := []string{}
			for _, p := range k.Policies() {
				got = append(got, fmt.Sprintf("%s %s %s", p.Dir, p.CPUs, p.Driver))
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("policies (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("overlap", func(t *testing.T) {
		f := knobIntelFiles(2)
		f[knobPol+"1/related_cpus"] = "0 1\n"
		_, err := OpenKnobs(&KnobOptions{Root: knobTree(t, f)})
		if err == nil || !strings.Contains(err.Error(), "cpu 0 is in both") {
			t.Fatalf("OpenKnobs: %v, want an error about cpu 0 in two policies", err)
		}
	})
}

func TestKnobSetRestore(t *testing.T) {
	root := knobTree(t, knobIntelFiles(4))
	before := knobSnapshot(t, root)
	var logBuf bytes.Buffer
	k, err := OpenKnobs(&KnobOptions{Root: root, Logger: slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(k.SetEPP(topology.MaskOf(0, 1), "power"))
	must(k.SetEPP(topology.MaskOf(2), "64"))
	must(k.SetGovernor(topology.MaskOf(2, 3), "performance"))
	must(k.SetMaxFreq(topology.MaskOf(0), 2000000))
	must(k.SetMinFreq(topology.MaskOf(0), 1200000))
	must(k.SetEPP(topology.MaskOf(0), "balance_power")) // second write: keeps the first original

	for rel, want := range map[string]string{
		knobPol + "0/energy_performance_preference": "balance_power\n",
		knobPol + "1/energy_performance_preference": "power\n",
		knobPol + "2/energy_performance_preference": "64\n",
		knobPol + "3/energy_performance_preference": "balance_performance\n",
		knobPol + "0/scaling_governor":              "powersave\n",
		knobPol + "2/scaling_governor":              "performance\n",
		knobPol + "3/scaling_governor":              "performance\n",
		knobPol + "0/scaling_max_freq":              "2000000\n",
		knobPol + "0/scaling_min_freq":              "1200000\n",
	} {
		if got := knobRead(t, root, rel); got != want {
			t.Errorf("%s = %q, want %q", rel, got, want)
		}
	}

	var changed []string
	for _, c := range k.Changed() {
		changed = append(changed, c.String())
	}
	want := []string{
		"policy0/energy_performance_preference (cpus 0): balance_performance -> balance_power",
		"policy1/energy_performance_preference (cpus 1): 102 -> power",
		"policy2/energy_performance_preference (cpus 2): balance_performance -> 64",
		"policy2/scaling_governor (cpus 2): powersave -> performance",
		"policy3/scaling_governor (cpus 3): powersave -> performance",
		"policy0/scaling_max_freq (cpus 0): 4700000 -> 2000000",
		"policy0/scaling_min_freq (cpus 0): 800000 -> 1200000",
	}
	if diff := cmp.Diff(want, changed); diff != "" {
		t.Errorf("Changed (-want +got):\n%s", diff)
	}

	// Restore in reverse order: record the order of the writes.
	var order []string
	k.write = func(name string, data []byte) error {
		rel, _ := filepath.Rel(root, name)
		order = append(order, strings.TrimPrefix(rel, knobPol))
		return writeKnobFile(name, data)
	}
	must(k.Restore())
	wantOrder := []string{
		"0/scaling_min_freq", "0/scaling_max_freq", "3/scaling_governor", "2/scaling_governor",
		"2/energy_performance_preference", "1/energy_performance_preference", "0/energy_performance_preference",
	}
	if diff := cmp.Diff(wantOrder, order); diff != "" {
		t.Errorf("restore order (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(before, knobSnapshot(t, root)); diff != "" {
		t.Errorf("after Restore (-before +after):\n%s", diff)
	}
	if c := k.Changed(); len(c) != 0 {
		t.Errorf("Changed after Restore = %v, want none", c)
	}

	// A second Restore, and Close, write nothing.
	order = nil
	must(k.Restore())
	must(k.Close())
	if len(order) != 0 {
		t.Errorf("second Restore wrote %v", order)
	}
	if diff := cmp.Diff(before, knobSnapshot(t, root)); diff != "" {
		t.Errorf("after second Restore (-before +after):\n%s", diff)
	}

	log := logBuf.String()
	for _, s := range []string{"set cpufreq knob", "restored cpufreq knob", "policy1/energy_performance_preference"} {
		if !strings.Contains(log, s) {
			t.Errorf("log lacks %q:\n%s", s, log)
		}
	}
}

func TestKnobOneWritePerPolicy(t *testing.T) {
	root := knobTree(t, knobACPIFiles())
	k := knobOpen(t, root)
	writes := knobCountWrites(k)
	if err := k.SetGovernor(topology.MaskOf(1, 2, 3), "powersave"); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{filepath.Join(root, knobPol+"0/scaling_governor"): 1}
	if diff := cmp.Diff(want, writes); diff != "" {
		t.Errorf("writes (-want +got):\n%s", diff)
	}
	c := k.Changed()
	if len(c) != 1 || c[0].CPUs.String() != "0-3" || c[0].Old != "schedutil" || c[0].New != "powersave" {
		t.Errorf("Changed = %v, want one change of cpus 0-3 from schedutil to powersave", c)
	}
	if err := k.Restore(); err != nil {
		t.Fatal(err)
	}
	if got := knobRead(t, root, knobPol+"0/scaling_governor"); got != "schedutil\n" {
		t.Errorf("restored governor %q", got)
	}
}

func TestKnobUnchangedValues(t *testing.T) {
	root := knobTree(t, knobIntelFiles(2))
	before := knobSnapshot(t, root)
	k := knobOpen(t, root)
	writes := knobCountWrites(k)

	// The current value: no write, nothing to restore.
	if err := k.SetGovernor(topology.MaskOf(0, 1), "powersave"); err != nil {
		t.Fatal(err)
	}
	if len(writes) != 0 || len(k.Changed()) != 0 {
		t.Errorf("setting the current value wrote %v, Changed %v", writes, k.Changed())
	}
	// Away and back: the knob is forgotten.
	if err := k.SetGovernor(topology.MaskOf(0), "performance"); err != nil {
		t.Fatal(err)
	}
	if err := k.SetGovernor(topology.MaskOf(0), "powersave"); err != nil {
		t.Fatal(err)
	}
	if c := k.Changed(); len(c) != 0 {
		t.Errorf("Changed after setting the original back = %v", c)
	}
	if diff := cmp.Diff(before, knobSnapshot(t, root)); diff != "" {
		t.Errorf("(-before +after):\n%s", diff)
	}
}

func TestKnobInvalidValues(t *testing.T) {
	f := knobIntelFiles(4)
	// Policy 3 lacks performance: the check of policy 3 must stop the
	// writes to policies 0-2 as well.
	f[knobPol+"3/scaling_available_governors"] = "powersave\n"
	root := knobTree(t, f)
	before := knobSnapshot(t, root)
	all := topology.MaskOf(0, 1, 2, 3)

	for _, tc := range []struct {
		name string
		set  func(k *Knobs) error
		want []string
	}{
		{"governor", func(k *Knobs) error { return k.SetGovernor(all, "turbo") },
			[]string{`"turbo"`, "available: performance powersave", "modprobe cpufreq_turbo"}},
		{"governor-one-policy", func(k *Knobs) error { return k.SetGovernor(all, "performance") },
			[]string{`governor "performance": invalid input: not available for policy3 (cpus 3); available: powersave`}},
		{"epp-name", func(k *Knobs) error { return k.SetEPP(all, "fast") },
			[]string{`"fast"`, "available: default performance balance_performance balance_power power or a number from 0 to 255"}},
		{"epp-number", func(k *Knobs) error { return k.SetEPP(all, "256") }, []string{"256: invalid input: out of range 0-255"}},
		{"epp-negative", func(k *Knobs) error { return k.SetEPP(all, "-1") }, []string{"-1: invalid input: out of range 0-255"}},
		{"epp-space", func(k *Knobs) error { return k.SetEPP(all, "balance power") }, []string{"white space"}},
		{"max-freq", func(k *Knobs) error { return k.SetMaxFreq(all, 5000000) },
			[]string{"5000000 kHz: invalid input: outside the hardware range 800000-4700000 kHz of policy0 (cpus 0)"}},
		{"min-freq", func(k *Knobs) error { return k.SetMinFreq(all, 0) }, []string{"not positive"}},
		{"empty-mask", func(k *Knobs) error { return k.SetGovernor(topology.Cpumask{}, "powersave") }, []string{"empty CPU mask"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := knobOpen(t, root)
			writes := knobCountWrites(k)
			err := tc.set(k)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if errors.Is(err, ErrNoKnob) || errors.Is(err, ErrReadOnly) || !errors.Is(err, ErrInvalid) {
				t.Errorf("invalid value error %q matches ErrNoKnob or ErrReadOnly, or not ErrInvalid", err)
			}
			if len(writes) != 0 || len(k.Changed()) != 0 {
				t.Errorf("wrote %v, Changed %v", writes, k.Changed())
			}
			if diff := cmp.Diff(before, knobSnapshot(t, root)); diff != "" {
				t.Errorf("(-before +after):\n%s", diff)
			}
		})
	}
}

func TestKnobMissing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		set   func(k *Knobs) error
		want  []string
	}{
		{"epp-acpi", knobACPIFiles(), func(k *Knobs) error { return k.SetEPP(topology.MaskOf(0), "power") },
			[]string{knobPol + "0/energy_performance_preference", "no such cpufreq knob", "driver acpi-cpufreq has no energy performance preference"}},
		{"no-cpufreq", knobBareFiles(), func(k *Knobs) error { return k.SetGovernor(topology.MaskOf(0, 1), "powersave") },
			[]string{"no cpufreq policy for cpus 0-1", "no cpufreq driver, as usual in a virtual machine"}},
		{"cpu-without-policy", knobIntelFiles(2), func(k *Knobs) error { return k.SetGovernor(topology.MaskOf(0, 9), "powersave") },
			[]string{"no such cpufreq knob: no cpufreq policy for cpus 9 ", "the CPUs do not exist"}},
		{"max-freq-missing", func() map[string]string {
			f := knobACPIFiles()
			delete(f, knobPol+"0/scaling_max_freq")
			return f
		}(), func(k *Knobs) error { return k.SetMaxFreq(topology.MaskOf(0), 1000000) },
			[]string{knobPol + "0/scaling_max_freq", "driver acpi-cpufreq does not provide it"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := knobTree(t, tc.files)
			before := knobSnapshot(t, root)
			k := knobOpen(t, root)
			err := tc.set(k)
			if !errors.Is(err, ErrNoKnob) || !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("error %v: want ErrNoKnob and fs.ErrNotExist", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if diff := cmp.Diff(before, knobSnapshot(t, root)); diff != "" {
				t.Errorf("(-before +after):\n%s", diff)
			}
		})
	}
	if !errors.Is(ErrNoKnob, fs.ErrNotExist) || !errors.Is(ErrReadOnly, fs.ErrPermission) {
		t.Error("the sentinels do not match the fs errors")
	}
}

// TestKnobUnreadable: a knob that cannot be read (here a directory where
// a file should be) stops the Set method before any write.
func TestKnobUnreadable(t *testing.T) {
	f := knobIntelFiles(4)
	delete(f, knobPol+"2/scaling_governor")
	f[knobPol+"2/scaling_governor/x"] = ""
	root := knobTree(t, f)
	before := knobSnapshot(t, root)
	k := knobOpen(t, root)
	err := k.SetGovernor(topology.MaskOf(0, 1, 2, 3), "performance")
	if !errors.Is(err, syscall.EISDIR) || !strings.Contains(err.Error(), "read "+filepath.Join(root, knobPol+"2/scaling_governor")) {
		t.Fatalf("error %v: want EISDIR reading policy2/scaling_governor", err)
	}
	if diff := cmp.Diff(before, knobSnapshot(t, root)); diff != "" {
		t.Errorf("(-before +after):\n%s", diff)
	}
}

// TestKnobWriteFailsMidway: a write that fails after others leaves them
// changed and recorded, and Restore undoes them.
func TestKnobWriteFailsMidway(t *testing.T) {
	root := knobTree(t, knobIntelFiles(4))
	before := knobSnapshot(t, root)
	k := knobOpen(t, root)
	bad := filepath.Join(root, knobPol+"2/scaling_governor")
	k.write = func(name string, data []byte) error {
		if name == bad {
			return &fs.PathError{Op: "write", Path: name, Err: syscall.EIO}
		}
		return writeKnobFile(name, data)
	}
	err := k.SetGovernor(topology.MaskOf(0, 1, 2, 3), "performance")
	if !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), `write "performance" to `+bad) {
		t.Fatalf("error %v: want EIO writing %s", err, bad)
	}
	if strings.Count(err.Error(), bad) != 1 {
		t.Errorf("error %q names the path more than once", err)
	}
	for c, want := range []string{"performance\n", "performance\n", "powersave\n", "powersave"} {
		if got := knobRead(t, root, fmt.Sprintf("%s%d/scaling_governor", knobPol, c)); got != want {
			t.Errorf("policy%d governor %q, want %q", c, got, want)
		}
	}
	if n := len(k.Changed()); n != 2 {
		t.Errorf("Changed has %d knobs, want 2", n)
	}
	if err := k.Restore(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, knobSnapshot(t, root)); diff != "" {
		t.Errorf("(-before +after):\n%s", diff)
	}
}

// TestKnobRestoreContinues: a knob that cannot be restored does not stop
// the others, stays recorded, and a later Restore retries it.
func TestKnobRestoreContinues(t *testing.T) {
	root := knobTree(t, knobIntelFiles(4))
	before := knobSnapshot(t, root)
	k := knobOpen(t, root)
	all := topology.MaskOf(0, 1, 2, 3)
	if err := k.SetGovernor(all, "performance"); err != nil {
		t.Fatal(err)
	}
	if err := k.SetEPP(all, "performance"); err != nil {
		t.Fatal(err)
	}

	// Replace policy1's governor by a directory: its restore fails for
	// real, with EISDIR.
	gov1 := filepath.Join(root, knobPol+"1/scaling_governor")
	if err := os.Remove(gov1); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(gov1, 0o755); err != nil {
		t.Fatal(err)
	}
	err := k.Restore()
	if !errors.Is(err, syscall.EISDIR) || !strings.Contains(err.Error(), fmt.Sprintf("restore %s to %q", gov1, "powersave")) {
		t.Fatalf("Restore: %v, want EISDIR restoring %s", err, gov1)
	}
	after := knobSnapshot(t, root)
	for rel, b := range before {
		if rel == filepath.FromSlash(knobPol+"1/scaling_governor") {
			continue
		}
		if after[rel] != b {
			t.Errorf("%s = %q after Restore, want %q", rel, after[rel], b)
		}
	}
	c := k.Changed()
	if len(c) != 1 || c[0].Path != knobPol+"1/scaling_governor" {
		t.Fatalf("Changed after a failed Restore = %v, want policy1's governor", c)
	}

	// Repair the file: the next Restore restores it.
	if err := os.Remove(gov1); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(gov1, []byte("performance\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := k.Restore(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, knobSnapshot(t, root)); diff != "" {
		t.Errorf("(-before +after):\n%s", diff)
	}
}

// TestKnobRestoreJoinsErrors: every failure of Restore is in its error.
func TestKnobRestoreJoinsErrors(t *testing.T) {
	root := knobTree(t, knobIntelFiles(4))
	k := knobOpen(t, root)
	if err := k.SetGovernor(topology.MaskOf(0, 1, 2, 3), "performance"); err != nil {
		t.Fatal(err)
	}
	k.write = func(name string, data []byte) error {
		if strings.Contains(name, "policy0") || strings.Contains(name, "policy2") {
			return &fs.PathError{Op: "open", Path: name, Err: syscall.EROFS}
		}
		return writeKnobFile(name, data)
	}
	err := k.Restore()
	if !errors.Is(err, ErrReadOnly) || !errors.Is(err, syscall.EROFS) {
		t.Fatalf("Restore: %v, want ErrReadOnly", err)
	}
	for _, p := range []string{"policy0", "policy2"} {
		if !strings.Contains(err.Error(), p+"/scaling_governor") {
			t.Errorf("error %q does not name %s", err, p)
		}
	}
	for c, want := range []string{"performance\n", "powersave\n", "performance\n", "powersave"} {
		if got := knobRead(t, root, fmt.Sprintf("%s%d/scaling_governor", knobPol, c)); got != want {
			t.Errorf("policy%d governor %q, want %q", c, got, want)
		}
	}
}

// TestKnobRestoreOnPanic: the deferred Restore runs while a panic
// unwinds.
func TestKnobRestoreOnPanic(t *testing.T) {
	root := knobTree(t, knobACPIFiles())
	before := knobSnapshot(t, root)
	func() {
		defer func() { _ = recover() }()
		k := knobOpen(t, root)
		defer k.Restore()
		if err := k.SetGovernor(topology.MaskOf(0), "powersave"); err != nil {
			t.Fatal(err)
		}
		if err := k.SetMaxFreq(topology.MaskOf(0), 1400000); err != nil {
			t.Fatal(err)
		}
		panic("scheduler failed")
	}()
	if diff := cmp.Diff(before, knobSnapshot(t, root)); diff != "" {
		t.Errorf("(-before +after):\n%s", diff)
	}
}

// TestKnobEPPBusy: under the performance governor the kernel refuses EPP
// writes with EBUSY; the error says why.
func TestKnobEPPBusy(t *testing.T) {
	f := knobIntelFiles(2)
	f[knobPol+"0/scaling_governor"] = "performance\n"
	root := knobTree(t, f)
	k := knobOpen(t, root)
	k.write = func(name string, data []byte) error {
		if strings.HasSuffix(name, "energy_performance_preference") {
			return &fs.PathError{Op: "write", Path: name, Err: syscall.EBUSY}
		}
		return writeKnobFile(name, data)
	}
	err := k.SetEPP(topology.MaskOf(0), "power")
	if !errors.Is(err, syscall.EBUSY) {
		t.Fatalf("error %v, want EBUSY", err)
	}
	for _, w := range []string{`the governor of policy0 is "performance"`, "intel_pstate refuses", "set another governor"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
}

// TestKnobErrorClasses checks how knobError classifies errnos. As root,
// file modes do not stop writes, so EACCES and EPERM cannot be produced
// with files; TestKnobReadOnlyMount produces EROFS for real.
func TestKnobErrorClasses(t *testing.T) {
	root := knobTree(t, knobIntelFiles(1))
	k := knobOpen(t, root)
	p := &k.policies[0]
	name := filepath.Join(root, knobPol+"0/scaling_governor")
	for _, tc := range []struct {
		errno    syscall.Errno
		readOnly bool
		noKnob   bool
	}{
		{syscall.EACCES, true, false},
		{syscall.EPERM, true, false},
		{syscall.EROFS, true, false},
		{syscall.ENOENT, false, true},
		{syscall.EIO, false, false},
		{syscall.EINVAL, false, false},
	} {
		err := k.knobError("write", p, knobGovernor, "performance", &fs.PathError{Op: "open", Path: name, Err: tc.errno})
		if errors.Is(err, ErrReadOnly) != tc.readOnly || errors.Is(err, fs.ErrPermission) != tc.readOnly {
			t.Errorf("%v: %q: ErrReadOnly %v, fs.ErrPermission %v, want %v",
				tc.errno, err, errors.Is(err, ErrReadOnly), errors.Is(err, fs.ErrPermission), tc.readOnly)
		}
		if errors.Is(err, ErrNoKnob) != tc.noKnob || errors.Is(err, fs.ErrNotExist) != tc.noKnob {
			t.Errorf("%v: %q: ErrNoKnob %v, want %v", tc.errno, err, errors.Is(err, ErrNoKnob), tc.noKnob)
		}
		if !errors.Is(err, tc.errno) || !strings.Contains(err.Error(), name) {
			t.Errorf("%v: %q does not wrap the errno or name the path", tc.errno, err)
		}
	}
}

// TestKnobReadOnlyMount writes to knobs on a read-only bind mount, which
// fails with EROFS even for root. It needs CAP_SYS_ADMIN, and skips
// without it.
func TestKnobReadOnlyMount(t *testing.T) {
	root := knobTree(t, knobIntelFiles(4))
	before := knobSnapshot(t, root)
	dir := filepath.Join(root, knobPol+"2")
	if err := syscall.Mount(dir, dir, "", syscall.MS_BIND, ""); err != nil {
		t.Skipf("cannot bind-mount (needs CAP_SYS_ADMIN): %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	if err := syscall.Mount("", dir, "", syscall.MS_REMOUNT|syscall.MS_BIND|syscall.MS_RDONLY, ""); err != nil {
		t.Skipf("cannot remount read-only: %v", err)
	}

	k := knobOpen(t, root)
	err := k.SetGovernor(topology.MaskOf(0, 1, 2, 3), "performance")
	name := filepath.Join(dir, "scaling_governor")
	if !errors.Is(err, ErrReadOnly) || !errors.Is(err, syscall.EROFS) || !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("error %v: want ErrReadOnly, EROFS and fs.ErrPermission", err)
	}
	if !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "cpufreq knob is read-only") {
		t.Errorf("error %q does not name %s as read-only", err, name)
	}
	if err := k.Restore(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, knobSnapshot(t, root)); diff != "" {
		t.Errorf("(-before +after):\n%s", diff)
	}
}
