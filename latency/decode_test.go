package latency

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// TestDecodeOutlier checks the hand-written decoder against
// encoding/binary and the generated layout of struct sk_lat_outlier.
func TestDecodeOutlier(t *testing.T) {
	want := latencybpfSkLatOutlier{Cgid: 1, DelayNs: 2, SameNs: 3, OtherNs: 4, IdleNs: 5, AtNs: 6, Pid: 7, Tgid: 8, Cpu: 9, Kind: 2}
	copy(want.Comm[:], []int8{'s', 'h', 0})
	var buf bytes.Buffer
	if err := binary.Write(&buf, binary.LittleEndian, &want); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != binarySize(&want) {
		t.Fatalf("encoded %d bytes, struct is %d", buf.Len(), binarySize(&want))
	}
	var got latencybpfSkLatOutlier
	decodeOutlier(&got, buf.Bytes())
	if got != want || comm(got.Comm[:]) != "sh" {
		t.Errorf("decoded %+v, want %+v", got, want)
	}
}

// BenchmarkRead measures Read with the dst of the previous call,
// every cgroup profiled.
func BenchmarkRead(b *testing.B) {
	if testing.Short() {
		b.Skip("short")
	}
	p, err := Start(b.Context(), nil)
	if err != nil {
		b.Skip(err)
	}
	defer p.Close()
	s, err := p.Read(nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if s, err = p.Read(s); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(s)), "cgroups")
}
