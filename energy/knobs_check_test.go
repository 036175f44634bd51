package energy

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scxkit/scxkit/topology"
)

// TestSetGovernorPathLike checks that a governor name that is not an
// identifier is refused before anything is read, with no module hint
// built from it (the hint once suggested "modprobe cpufreq_../../x").
func TestSetGovernorPathLike(t *testing.T) {
	root := knobTree(t, knobIntelFiles(2))
	before := knobSnapshot(t, root)
	for _, gov := range []string{"../../x", "/etc/passwd", "power save", "schedutil\n", "", "a-b", strings.Repeat("g", 16)} {
		k := knobOpen(t, root)
		writes := knobCountWrites(k)
		err := k.SetGovernor(topology.MaskOf(0, 1), gov)
		if err == nil {
			t.Errorf("SetGovernor(%q): no error", gov)
			continue
		}
		if msg := err.Error(); strings.Contains(msg, "modprobe") || !strings.Contains(msg, "not a cpufreq governor name") || !strings.Contains(msg, "e.g. schedutil") {
			t.Errorf("SetGovernor(%q): %q, want the name refused with an example and no modprobe hint", gov, msg)
		}
		if len(writes) != 0 {
			t.Errorf("SetGovernor(%q) wrote %v", gov, writes)
		}
	}
	if diff := cmp.Diff(before, knobSnapshot(t, root)); diff != "" {
		t.Errorf("(-before +after):\n%s", diff)
	}
}

func TestCheckGovernor(t *testing.T) {
	for _, g := range []string{"performance", "powersave", "schedutil", "conservative", "ondemand", "userspace", "x_1"} {
		if err := CheckGovernor(g); err != nil {
			t.Errorf("CheckGovernor(%q): %v", g, err)
		}
	}
	for _, g := range []string{"", "../x", "a/b", "cpufreq.x", "sched util", strings.Repeat("a", 16)} {
		if err := CheckGovernor(g); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "governor "+strconv.Quote(g)) || !strings.HasPrefix(err.Error(), "energy: ") {
			t.Errorf("CheckGovernor(%q) = %v, want an error naming it", g, err)
		}
	}
}

func TestCheckEPP(t *testing.T) {
	for _, p := range []string{"performance", "balance_power", "default", "0", "255", "128"} {
		if err := CheckEPP(p); err != nil {
			t.Errorf("CheckEPP(%q): %v", p, err)
		}
	}
	for _, c := range []struct{ pref, want string }{
		{"256", "256: invalid input: out of range 0-255"},
		{"-1", "-1: invalid input: out of range 0-255"},
		{"", `preference ""`},
		{"../x", `preference "../x": invalid input: not a preference name`},
		{"balance power", `preference "balance power"`},
	} {
		if err := CheckEPP(c.pref); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "energy: ") {
			t.Errorf("CheckEPP(%q) = %v, want an error containing %q", c.pref, err, c.want)
		}
	}
}
