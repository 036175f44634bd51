package energy_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/scxkit/scxkit/energy"
	"github.com/scxkit/scxkit/topology"
)

// knobsFakeSysfs writes, under root, the cpufreq knobs of a 4-CPU machine
// with intel_pstate in active mode: one policy per CPU.
func knobsFakeSysfs(root string) error {
	for cpu := range 4 {
		dir := filepath.Join(root, fmt.Sprintf("sys/devices/system/cpu/cpufreq/policy%d", cpu))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		for name, content := range map[string]string{
			"related_cpus":                             fmt.Sprint(cpu),
			"scaling_driver":                           "intel_pstate",
			"scaling_available_governors":              "performance powersave",
			"scaling_governor":                         "powersave",
			"energy_performance_available_preferences": "default performance balance_performance balance_power power",
			"energy_performance_preference":            "balance_performance",
		} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content+"\n"), 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

func ExampleKnobs() {
	// On a real machine, call energy.OpenKnobs(nil) as root. Here a copy
	// of sysfs in a temporary directory stands in.
	root, err := os.MkdirTemp("", "knobs")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(root)
	if err := knobsFakeSysfs(root); err != nil {
		log.Fatal(err)
	}

	// Writes and restores are logged to slog.Default(); set
	// KnobOptions.Logger to log elsewhere.
	k, err := energy.OpenKnobs(&energy.KnobOptions{Root: root})
	if err != nil {
		log.Fatal(err)
	}
	// Restore on every return, and while a panic unwinds.
	defer k.Restore()

	// Let CPUs 2-3 save power, and CPU 0 run flat out.
	if err := k.SetEPP(topology.MaskOf(2, 3), "power"); err != nil {
		log.Fatal(err)
	}
	if err := k.SetGovernor(topology.MaskOf(0), "performance"); err != nil {
		log.Fatal(err)
	}
	// Invalid values change nothing.
	err = k.SetGovernor(topology.MaskOf(1), "schedutil")
	fmt.Println(err)

	for _, c := range k.Changed() {
		fmt.Println("changed:", c)
	}
	if err := k.Restore(); err != nil {
		log.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(root, "sys/devices/system/cpu/cpufreq/policy2/energy_performance_preference"))
	fmt.Printf("restored: policy2 EPP %s", b)
	fmt.Println("changed after Restore:", len(k.Changed()))
	// Output:
	// energy: set governor "schedutil" on cpus 1: governor "schedutil": invalid input: not available for policy1 (cpus 1); available: performance powersave (a governor built as a module is listed once loaded: modprobe cpufreq_schedutil)
	// changed: policy2/energy_performance_preference (cpus 2): balance_performance -> power
	// changed: policy3/energy_performance_preference (cpus 3): balance_performance -> power
	// changed: policy0/scaling_governor (cpus 0): powersave -> performance
	// restored: policy2 EPP balance_performance
	// changed after Restore: 0
}
