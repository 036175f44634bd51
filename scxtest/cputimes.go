package scxtest

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// CPUTimes is one CPU's time since boot, in clock ticks (USER_HZ).
type CPUTimes struct {
	Busy  uint64 // every state but idle and iowait
	Total uint64
}

// ReadCPUTimes returns the times of each CPU, indexed by CPU id, from /proc/stat.
// A CPU that is offline has no line; its entry stays zero.
func ReadCPUTimes() ([]CPUTimes, error) {
	return readCPUTimes("/proc/stat")
}

func readCPUTimes(path string) ([]CPUTimes, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseCPUTimes(string(b))
}

// parse reads the cpuN lines of a /proc/stat text.
func parseCPUTimes(text string) ([]CPUTimes, error) {
	var v []CPUTimes
	for _, l := range strings.Split(text, "\n") {
		f := strings.Fields(l)
		if len(f) < 5 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
			continue
		}
		cpu, err := strconv.Atoi(f[0][3:])
		if err != nil || cpu < 0 || cpu > 1<<16 {
			return nil, fmt.Errorf("scxtest: line %q: bad CPU number", l)
		}
		var t CPUTimes
		for i, s := range f[1:] {
			x, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("scxtest: line %q: field %d: %w", l, i+1, err)
			}
			t.Total += x
			if i != 3 && i != 4 { // idle, iowait
				t.Busy += x
			}
		}
		for len(v) <= cpu {
			v = append(v, CPUTimes{})
		}
		v[cpu] = t
	}
	if len(v) == 0 {
		return nil, fmt.Errorf("scxtest: no cpuN lines")
	}
	return v, nil
}

// BusyFraction returns, for each CPU, the fraction of the time between
// two readings that it was busy: 0 for a CPU missing from either.
func BusyFraction(before, after []CPUTimes) []float64 {
	f := make([]float64, min(len(before), len(after)))
	for c := range f {
		if after[c].Total > before[c].Total {
			f[c] = float64(after[c].Busy-before[c].Busy) / float64(after[c].Total-before[c].Total)
		}
	}
	return f
}

// SampleBusy returns how busy each CPU was, as BusyFraction, over d from
// now; it returns early with ctx's error if ctx ends first. d should span
// many clock ticks (USER_HZ is 100: 1s is 100 ticks per CPU) for the
// fractions to mean much.
func SampleBusy(ctx context.Context, d time.Duration) ([]float64, error) {
	before, err := ReadCPUTimes()
	if err != nil {
		return nil, err
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-timer.C:
	}
	after, err := ReadCPUTimes()
	if err != nil {
		return nil, err
	}
	return BusyFraction(before, after), nil
}
