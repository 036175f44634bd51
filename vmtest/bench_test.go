package vmtest

import (
	"context"
	"slices"
	"testing"
	"time"
)

// BenchmarkBoot measures, per pinned kernel, the time from starting qemu to
// the payload starting (boot-ms) and to qemu exiting (total-ms), medians in
// milliseconds, for a
// payload that does nothing, in the default 2-vCPU machine. One iteration is
// one whole VM run, so use -benchtime=5x or so.
func BenchmarkBoot(b *testing.B) {
	for _, k := range Matrix {
		b.Run(k.Name, func(b *testing.B) {
			if _, err := k.Vmlinuz(context.Background()); err != nil {
				b.Skip(err)
			}
			var boot, total []time.Duration
			for b.Loop() {
				res, err := (&VM{Kernel: k}).Run(context.Background(), &Command{Argv: []string{"true"}})
				if err != nil {
					b.Fatal(err)
				}
				boot = append(boot, res.Boot)
				total = append(total, res.Duration)
			}
			b.ReportMetric(median(boot), "boot-ms")
			b.ReportMetric(median(total), "total-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// median returns the median of ds in milliseconds.
func median(ds []time.Duration) float64 {
	s := slices.Clone(ds)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return float64(s[n/2].Milliseconds())
	}
	return float64((s[n/2-1] + s[n/2]).Milliseconds()) / 2
}
