package scxtest

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

const sample = `cpu  100 0 100 800 0 0 0 0 0 0
cpu0 60 0 40 100 0 0 0 0 0 0
cpu2 10 0 0 190 0 0 0 0 0 0
intr 12345
`

func TestParseCPUTimes(t *testing.T) {
	got, err := parseCPUTimes(sample)
	if err != nil {
		t.Fatal(err)
	}
	want := []CPUTimes{{Busy: 100, Total: 200}, {}, {Busy: 10, Total: 200}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseCPUTimes (-want +got):\n%s", diff)
	}
	later := []CPUTimes{{Busy: 150, Total: 300}, {}, {Busy: 10, Total: 300}}
	if diff := cmp.Diff([]float64{0.5, 0, 0}, BusyFraction(got, later)); diff != "" {
		t.Errorf("BusyFraction (-want +got):\n%s", diff)
	}
}

func TestParseCPUTimesErrors(t *testing.T) {
	for _, text := range []string{"", "cpu0 1 2 x 4 5", "cpux 1 2 3 4 5", "intr 1\n"} {
		if _, err := parseCPUTimes(text); err == nil {
			t.Errorf("parseCPUTimes(%q): no error", text)
		}
	}
}

func TestReadCPUTimes(t *testing.T) {
	v, err := ReadCPUTimes()
	if err != nil {
		t.Fatal(err)
	}
	if len(v) == 0 || v[0].Total == 0 {
		t.Errorf("ReadCPUTimes: %+v", v)
	}
}
