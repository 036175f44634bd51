package mounts

import "testing"

func TestUnescape(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"/sys/fs/cgroup", "/sys/fs/cgroup"},
		{`/mnt/a\040b`, "/mnt/a b"},
		{`/x\011\012\134y`, "/x\t\n\\y"},
		{`/bad\09`, `/bad\09`},
		{`/big\777`, `/big\777`}, // over 255: not a byte
		{`/sign\+12`, `/sign\+12`},
		{`/end\04`, `/end\04`},
		{`\`, `\`},
		{`/a\9`, `/a\9`},       // too short
		{`/a\400b`, `/a\400b`}, // above 255
		{`/a\08x`, `/a\08x`},   // not octal
		{`/end\040`, "/end "},
	} {
		if got := Unescape(c.in); got != c.want {
			t.Errorf("Unescape(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func FuzzUnescape(f *testing.F) {
	f.Add(`/a\040b`)
	f.Fuzz(func(t *testing.T, s string) {
		if got := Unescape(s); len(got) > len(s) {
			t.Errorf("Unescape(%q) = %q is longer", s, got)
		}
	})
}
