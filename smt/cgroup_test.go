package smt

import (
	"strings"
	"testing"
	"time"
)

func TestCgroupDir(t *testing.T) {
	for _, c := range []struct{ path, want string }{
		{"/batch", "/sys/fs/cgroup/batch"},
		{"batch/a", "/sys/fs/cgroup/batch/a"},
		{"/sys/fs/cgroup/batch", "/sys/fs/cgroup/batch"},
		{"/sys/fs/cgroup", "/sys/fs/cgroup"},
		{"/", "/sys/fs/cgroup"},
		{"/a//b/", "/sys/fs/cgroup/a/b"},
	} {
		got, err := cgroupDir("/sys/fs/cgroup", c.path)
		if err != nil || got != c.want {
			t.Errorf("cgroupDir(%q) = %q, %v; want %q", c.path, got, err, c.want)
		}
	}
	for _, path := range []string{"../../etc", "a/../../etc", "..", "/sys/fs/cgroup/../../../etc", "/a/..", ""} {
		got, err := cgroupDir("/sys/fs/cgroup", path)
		if err == nil {
			t.Errorf("cgroupDir(%q) = %q: no error", path, got)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Isolate: []string{"/a", "../../etc"}}, `smt: isolate "../../etc": ".." is not allowed, as it could leave the cgroup v2 mount /sys/fs/cgroup: give the cgroup's path as /proc/PID/cgroup shows it (e.g. /batch)`},
		{Config{Root: "/mnt/cg", Isolate: []string{"/a/../../b"}}, `cgroup v2 mount /mnt/cg`},
		{Config{Isolate: []string{""}}, `smt: isolate "": empty cgroup path`},
		{Config{Hold: -time.Millisecond}, "Hold -1ms is negative"},
		{Config{Isolate: make([]string, MaxIsolated+1)}, "32 isolated cgroups"},
	} {
		err := c.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: Validate() = %v, want an error containing %q", c.cfg, err, c.want)
		}
		// New refuses the same before it looks at any file.
		if _, err := New(twoCores(), c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: New: %v, want an error containing %q", c.cfg, err, c.want)
		}
	}
	if err := (Config{Isolate: []string{"/a", "b/c", "/sys/fs/cgroup/d"}, Hold: time.Millisecond}).Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
}
