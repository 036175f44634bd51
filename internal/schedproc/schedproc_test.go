package schedproc

import (
	"bytes"
	"testing"
)

func TestPrefixWriter(t *testing.T) {
	var buf bytes.Buffer
	w := NewPrefixWriter(&SyncWriter{W: &buf}, "simple: ")
	for _, s := range []string{"one\ntw", "o\r\n", "", "three\nfour\nfi", "ve"} {
		if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	w.Flush()
	w.Flush()
	want := "simple: one\nsimple: two\nsimple: three\nsimple: four\nsimple: five\n"
	if buf.String() != want {
		t.Errorf("output %q, want %q", buf.String(), want)
	}

	buf.Reset()
	w.Write(bytes.Repeat([]byte("x"), MaxLine+1))
	if got := buf.Len(); got != len("simple: ")+MaxLine+1+1 {
		t.Errorf("an overlong partial line wrote %d bytes, want it written out whole", got)
	}
}
