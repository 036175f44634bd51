package cpustat

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

const sample = `cpu  100 0 100 800 0 0 0 0 0 0
cpu0 60 0 40 100 0 0 0 0 0 0
cpu2 10 0 0 190 0 0 0 0 0 0
intr 12345
`

func TestParse(t *testing.T) {
	got, err := parse(sample)
	if err != nil {
		t.Fatal(err)
	}
	want := []Times{{Busy: 100, Total: 200}, {}, {Busy: 10, Total: 200}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parse (-want +got):\n%s", diff)
	}
	later := []Times{{Busy: 150, Total: 300}, {}, {Busy: 10, Total: 300}}
	if diff := cmp.Diff([]float64{0.5, 0, 0}, BusyFraction(got, later)); diff != "" {
		t.Errorf("BusyFraction (-want +got):\n%s", diff)
	}
}

func TestParseErrors(t *testing.T) {
	for _, text := range []string{"", "cpu0 1 2 x 4 5", "cpux 1 2 3 4 5", "intr 1\n"} {
		if _, err := parse(text); err == nil {
			t.Errorf("parse(%q): no error", text)
		}
	}
}

func TestRead(t *testing.T) {
	v, err := Read()
	if err != nil {
		t.Fatal(err)
	}
	if len(v) == 0 || v[0].Total == 0 {
		t.Errorf("Read: %+v", v)
	}
}
