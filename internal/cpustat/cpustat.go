// Package cpustat reads how busy each CPU has been from /proc/stat: the
// kernel's own accounting, which scheduler tests compare against what a
// scheduler claims to have done.
package cpustat

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Times is one CPU's time since boot, in clock ticks (USER_HZ).
type Times struct {
	Busy  uint64 // every state but idle and iowait
	Total uint64
}

// Read returns the times of each CPU, indexed by CPU id, from /proc/stat.
// A CPU that is offline has no line; its entry stays zero.
func Read() ([]Times, error) {
	return read("/proc/stat")
}

func read(path string) ([]Times, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parse(string(b))
}

// parse reads the cpuN lines of a /proc/stat text.
func parse(text string) ([]Times, error) {
	var v []Times
	for _, l := range strings.Split(text, "\n") {
		f := strings.Fields(l)
		if len(f) < 5 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
			continue
		}
		cpu, err := strconv.Atoi(f[0][3:])
		if err != nil || cpu < 0 || cpu > 1<<16 {
			return nil, fmt.Errorf("cpustat: line %q: bad CPU number", l)
		}
		var t Times
		for i, s := range f[1:] {
			x, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("cpustat: line %q: field %d: %w", l, i+1, err)
			}
			t.Total += x
			if i != 3 && i != 4 { // idle, iowait
				t.Busy += x
			}
		}
		for len(v) <= cpu {
			v = append(v, Times{})
		}
		v[cpu] = t
	}
	if len(v) == 0 {
		return nil, fmt.Errorf("cpustat: no cpuN lines")
	}
	return v, nil
}

// BusyFraction returns, for each CPU, the fraction of the time between
// two readings that it was busy: 0 for a CPU missing from either.
func BusyFraction(before, after []Times) []float64 {
	f := make([]float64, min(len(before), len(after)))
	for c := range f {
		if after[c].Total > before[c].Total {
			f[c] = float64(after[c].Busy-before[c].Busy) / float64(after[c].Total-before[c].Total)
		}
	}
	return f
}
