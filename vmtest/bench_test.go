package vmtest

import (
	"context"
	"testing"
	"time"
)

// BenchmarkBoot measures, per pinned kernel, the time from starting qemu to
// the payload starting (boot-ms) and to qemu exiting (total-ms) for a
// payload that does nothing, in the default 2-vCPU machine. One iteration is
// one whole VM run, so use -benchtime=5x or so.
func BenchmarkBoot(b *testing.B) {
	for _, k := range Matrix {
		b.Run(k.Name, func(b *testing.B) {
			if _, err := k.Vmlinuz(context.Background()); err != nil {
				b.Skip(err)
			}
			var boot, total time.Duration
			for b.Loop() {
				res, err := (&VM{Kernel: k}).Run(context.Background(), &Command{Argv: []string{"true"}})
				if err != nil {
					b.Fatal(err)
				}
				boot += res.Boot
				total += res.Duration
			}
			b.ReportMetric(float64(boot.Milliseconds())/float64(b.N), "boot-ms")
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "total-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}
