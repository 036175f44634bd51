package main

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
)

// latencyObjects returns the ids of the BPF programs and maps of package
// latency (programs lat_*, maps sk_lat_*) that exist now, as "prog N" and
// "map N".
func latencyObjects(t *testing.T) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	for id := ebpf.ProgramID(0); ; {
		next, err := ebpf.ProgramGetNextID(id)
		if err != nil {
			break
		}
		id = next
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue // gone meanwhile
		}
		if info, err := p.Info(); err == nil && strings.HasPrefix(info.Name, "lat_") {
			ids["prog "+strconv.FormatUint(uint64(id), 10)] = true
		}
		p.Close()
	}
	for id := ebpf.MapID(0); ; {
		next, err := ebpf.MapGetNextID(id)
		if err != nil {
			break
		}
		id = next
		m, err := ebpf.NewMapFromID(id)
		if err != nil {
			continue
		}
		if info, err := m.Info(); err == nil && strings.HasPrefix(info.Name, "sk_lat_") {
			ids["map "+strconv.FormatUint(uint64(id), 10)] = true
		}
		m.Close()
	}
	return ids
}

// TestLatencyLeavesNothing runs scxkit latency in another process, ends
// it with SIGINT, SIGTERM or SIGKILL, and waits until the BPF programs and
// maps it loaded are gone (the kernel frees them shortly after the last
// reference goes).
func TestLatencyLeavesNothing(t *testing.T) {
	requireLatencyRoot(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			before := latencyObjects(t)
			cmd := exec.Command(os.Args[0], "latency", "--interval", "50ms", "--json", "--outlier", "1ms", "--listen", "127.0.0.1:0")
			cmd.Env = append(os.Environ(), mainEnv+"=1")
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			// The metrics address is printed once the programs are attached.
			sc := bufio.NewScanner(stderr)
			for sc.Scan() && !strings.HasPrefix(sc.Text(), "serving metrics at ") {
			}
			go func() {
				for sc.Scan() {
				}
			}()
			ours := map[string]bool{}
			for id := range latencyObjects(t) {
				if !before[id] {
					ours[id] = true
				}
			}
			if len(ours) == 0 {
				t.Fatal("no BPF program or map of scxkit latency found while it runs")
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			err = cmd.Wait()
			var ee *exec.ExitError
			switch {
			case sig == syscall.SIGKILL:
			case err != nil:
				t.Errorf("after %v: %v, want exit status 0", sig, err)
			}
			if sig == syscall.SIGKILL && !errors.As(err, &ee) {
				t.Errorf("after SIGKILL: %v", err)
			}
			deadline := time.Now().Add(hangLimit)
			for {
				now := latencyObjects(t)
				var left []string
				for id := range ours {
					if now[id] {
						left = append(left, id)
					}
				}
				if len(left) == 0 {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("%v after %v: %s still exist", hangLimit, sig, strings.Join(left, ", "))
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}
