package smt

import (
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
}
