package smt

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		cfg  Options
		want string
	}{
		{Options{Isolate: []string{"/a", "../../etc"}}, `smt: isolate "../../etc": ".." is not allowed, as it could leave the cgroup v2 mount /sys/fs/cgroup: give the cgroup's path as /proc/PID/cgroup shows it (e.g. /batch)`},
		{Options{Root: "/mnt/cg", Isolate: []string{"/a/../../b"}}, `cgroup v2 mount /mnt/cg`},
		{Options{Isolate: []string{""}}, `smt: isolate "": empty cgroup path`},
		{Options{Isolate: []string{"/a\x00b"}}, `smt: isolate "/a\x00b": cgroup path with a NUL byte`},
		{Options{Hold: -time.Millisecond}, "Hold -1ms is negative"},
		{Options{Isolate: make([]string, MaxIsolated+1)}, "32 isolated cgroups"},
		{Options{Groups: [][]int{{1}}}, "smt: 1 Groups without OnDSQ"},
		{Options{OnDSQ: true, Isolate: []string{"/a"}}, `Isolate ["/a"] with OnDSQ`},
		{Options{OnDSQ: true, Groups: [][]int{{1}, {}}}, "group 2 is empty"},
		{Options{OnDSQ: true, Groups: [][]int{{1, 16}}}, "group 1: dsq class 16"},
		{Options{OnDSQ: true, Groups: [][]int{{-1}}}, "dsq class -1"},
		{Options{OnDSQ: true, Groups: [][]int{{1, 2}, {3, 2}}}, "dsq class 2 is in group 1 and group 2"},
		{Options{OnDSQ: true, Groups: make([][]int, MaxIsolated+1)}, "32 groups"},
	} {
		err := c.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: Validate() = %v, want an error containing %q", c.cfg, err, c.want)
		}
		// New refuses the same before it looks at any file.
		if _, err := New(twoCores(), &c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: New: %v, want an error containing %q", c.cfg, err, c.want)
		}
	}
	if err := (Options{Isolate: []string{"/a", "b/c", "/sys/fs/cgroup/d"}, Hold: time.Millisecond}).Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
	l, err := New(twoCores(), &Options{OnDSQ: true, Groups: [][]int{{3, 1}, {2}}})
	if err != nil {
		t.Fatalf("valid groups: %v", err)
	}
	var names []string
	for _, c := range l.Classes {
		names = append(names, c.Name())
	}
	if got := strings.Join(names, " "); got != "system dsq1+3 dsq2" {
		t.Errorf("classes %q, want system dsq1+3 dsq2", got)
	}
	var g smttypesSkSmtGroups
	if err := l.encodeGroups(&g, 4); err != nil {
		t.Fatal(err)
	}
	// Groups {3, 1} and {2}: dsq class 0 is left to the system class.
	if g.Nr != 4 || g.OfClass[1] != 1 || g.OfClass[3] != 1 || g.OfClass[2] != 2 || g.OfClass[0] != 0 ||
		g.Mask[0] != 0b0001 || g.Mask[1] != 0b1010 || g.Mask[2] != 0b0100 {
		t.Errorf("groups encoded as nr %d, of_class %v, masks %b %b %b", g.Nr, g.OfClass[:4], g.Mask[0], g.Mask[1], g.Mask[2])
	}
	if err := l.encodeGroups(&g, 3); !errors.Is(err, ErrInvalid) {
		t.Errorf("group naming dsq class 3 of 3: %v, want ErrInvalid", err)
	}
	if n := l.Needs(); len(n.Owns) != 0 || n.DSQs != 0 || len(n.Requires) != 1 || n.Requires[0] != "dsq" {
		t.Errorf("OnDSQ needs: owns %v, %d DSQs, requires %v; want nothing owned, no DSQ, requires dsq", n.Owns, n.DSQs, n.Requires)
	}
}
