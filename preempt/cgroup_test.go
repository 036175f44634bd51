package preempt

import (
	"errors"
	"strings"
	"testing"

	"github.com/scxkit/scxkit/internal/cgroupfs"
)

// TestCheckCgroupsErrors: a cgroup that is missing, or is no cgroup
// directory, is refused by preempt in preempt's words, wrapping preempt's
// sentinel (the cgroup lookup is shared with other packages, their
// wording is not).
func TestCheckCgroupsErrors(t *testing.T) {
	if _, err := cgroupfs.Mount(); err != nil {
		t.Skipf("no cgroup2 mount: %v", err)
	}
	for _, c := range []struct {
		text string
		is   error
		want string
	}{
		{"web cgroup=/scxkit-no-such-cgroup\n", nil, `preempt config: class "web": cgroup /scxkit-no-such-cgroup does not exist`},
		// Every cgroup2 root has this file.
		{"web cgroup=/cgroup.procs\n", cgroupfs.ErrNotCgroup, `preempt: class "web": cgroup /cgroup.procs: not a cgroup v2 directory:`},
	} {
		cfg, err := Parse([]byte(c.text))
		if err != nil {
			t.Fatal(err)
		}
		err = cfg.CheckCgroups()
		if !errors.Is(err, ErrInvalid) || (c.is != nil && !errors.Is(err, c.is)) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: CheckCgroups() = %v; want an error wrapping ErrInvalid (and %v) containing %q", c.text, err, c.is, c.want)
		}
		if strings.Contains(err.Error(), "latency") {
			t.Errorf("%q: %v names package latency", c.text, err)
		}
	}
}
