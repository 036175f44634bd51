package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/scxkit/scxkit/internal/sysfstest"
)

// TestTopologyFixtures prints every real machine's snapshot as a tree and
// as JSON, and checks the JSON against the tree's counts.
func TestTopologyFixtures(t *testing.T) {
	for _, name := range sysfstest.Names(t) {
		t.Run(name, func(t *testing.T) {
			root := sysfstest.Unpack(t, name)
			code, out, errOut := runArgs(t, "topology", "--sysfs", root)
			if code != 0 || out == "" {
				t.Fatalf("topology --sysfs: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
			}
			t.Logf("\n%s", out)
			code, out, errOut = runArgs(t, "topology", "--sysfs", root, "--json")
			if code != 0 {
				t.Fatalf("topology --json: exit %d: %s", code, errOut)
			}
			var r struct {
				Possible, Online string
				Nodes            []struct {
					ID        int    `json:"id"`
					CPUs      string `json:"cpus"`
					Distances []int  `json:"distances"`
				}
				LLCs []struct {
					ID   int    `json:"id"`
					Node int    `json:"node"`
					CPUs string `json:"cpus"`
				} `json:"llcs"`
				Cores []struct {
					ID   int    `json:"id"`
					LLC  int    `json:"llc"`
					CPUs string `json:"cpus"`
					Type string `json:"type"`
				}
				CPUs []struct {
					ID       int `json:"id"`
					KernelID int `json:"kernel_id"`
					Core     int `json:"core"`
					LLC      int `json:"llc"`
					Node     int `json:"node"`
					Package  int `json:"package"`
					Capacity int `json:"capacity"`
				} `json:"cpus"`
			}
			if err := json.Unmarshal([]byte(out), &r); err != nil {
				t.Fatalf("topology --json is not JSON: %v\n%s", err, out)
			}
			if r.Online == "" || len(r.Nodes) == 0 || len(r.LLCs) == 0 || len(r.Cores) == 0 || len(r.CPUs) == 0 {
				t.Fatalf("topology --json lacks parts:\n%s", out)
			}
			for i, c := range r.CPUs {
				if c.ID != i || c.Core >= len(r.Cores) || c.LLC >= len(r.LLCs) || c.Node >= len(r.Nodes) || c.Capacity < 1 || c.Capacity > 1024 {
					t.Errorf("cpu %+v: ids out of range or capacity not in 1..1024", c)
				}
				if r.Cores[c.Core].LLC != c.LLC {
					t.Errorf("cpu %d: llc %d, but its core is in llc %d", c.KernelID, c.LLC, r.Cores[c.Core].LLC)
				}
			}
			for _, c := range r.Cores {
				if c.Type == "" {
					t.Errorf("core %d has no type", c.ID)
				}
			}
		})
	}
}

func TestTopologyThisMachine(t *testing.T) {
	code, out, errOut := runArgs(t, "topology")
	if code != 0 || !strings.Contains(out, "cpu") {
		t.Fatalf("topology on this machine: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	t.Logf("\n%s", out)
}

func TestTopologyBadRoot(t *testing.T) {
	code, _, errOut := runArgs(t, "topology", "--sysfs", t.TempDir())
	if code != 1 || !strings.Contains(errOut, "sys/devices/system/cpu") {
		t.Errorf("topology on an empty root: exit %d, stderr %q; want 1 and a message naming the missing directory", code, errOut)
	}
	code, _, _ = runArgs(t, "topology", "--llc-cores", "-1")
	if code != 2 {
		t.Errorf("--llc-cores -1: exit %d, want 2", code)
	}
}
