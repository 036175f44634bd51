package topology

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseCPUList(t *testing.T) {
	tests := []struct {
		in   string
		want []int
		list string // String() of the result; in (trimmed) if ""
	}{
		{in: "", want: nil},
		{in: "\n", want: nil},
		{in: "0", want: []int{0}},
		{in: "0\n", want: []int{0}, list: "0"},
		{in: "0-3", want: []int{0, 1, 2, 3}},
		{in: "0-3,8,10-11", want: []int{0, 1, 2, 3, 8, 10, 11}},
		{in: "5-5", want: []int{5}, list: "5"},
		{in: "3,1,2", want: []int{1, 2, 3}, list: "1-3"},
		{in: "0-2,1-4", want: []int{0, 1, 2, 3, 4}, list: "0-4"},
		{in: "0,2,4,6,8,10", want: []int{0, 2, 4, 6, 8, 10}},
		{in: "63-64", want: []int{63, 64}},
		{in: "64-127", want: seq(64, 127)},
		{in: "0-63,128-191", want: append(seq(0, 63), seq(128, 191)...)},
		{in: "0-511", want: seq(0, 511)},
		{in: "65535", want: []int{65535}},
		{in: "007", want: []int{7}, list: "7"},
		{in: "0-7:2/4", want: []int{0, 1, 4, 5}, list: "0-1,4-5"},
		{in: "0-6:2/4", want: []int{0, 1, 4, 5}, list: "0-1,4-5"},
		{in: "0-4:2/4", want: []int{0, 1, 4}, list: "0-1,4"},
		{in: "0-9:1/1", want: seq(0, 9), list: "0-9"},
		{in: "100-300:1/100", want: []int{100, 200, 300}, list: "100,200,300"},
	}
	for _, tt := range tests {
		m, err := ParseCPUList(tt.in)
		if err != nil {
			t.Errorf("ParseCPUList(%q): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, m.Slice()); diff != "" {
			t.Errorf("ParseCPUList(%q) (-want +got):\n%s", tt.in, diff)
		}
		list := tt.list
		if list == "" {
			list = strings.TrimSpace(tt.in)
		}
		if got := m.String(); got != list {
			t.Errorf("ParseCPUList(%q).String() = %q, want %q", tt.in, got, list)
		}
	}
}

func TestParseCPUListErrors(t *testing.T) {
	tests := []struct{ in, token string }{
		{"x", `"x"`},
		{"0-3,x", `"x"`},
		{"0,,1", `""`},
		{"0,", `""`},
		{",0", `""`},
		{"3-1", `"3-1"`},
		{"-1", `"-1"`},
		{"1-", `"1-"`},
		{"+1", `"+1"`},
		{"0 - 3", `"0 - 3"`},
		{"0x10", `"0x10"`},
		{"65536", `"65536"`},
		{"0-99999999999", `"0-99999999999"`},
		{"0-3:2", `"0-3:2"`},
		{"0-3:3/2", `"0-3:3/2"`},
		{"0-3:0/2", `"0-3:0/2"`},
		{"0-3:1/0", `"0-3:1/0"`},
		{"3:1/2", `"3:1/2"`},
		{"1-2-3", `"1-2-3"`},
	}
	for _, tt := range tests {
		m, err := ParseCPUList(tt.in)
		if err == nil {
			t.Errorf("ParseCPUList(%q) = %v, want error", tt.in, m)
			continue
		}
		if !strings.Contains(err.Error(), "token "+tt.token) || !strings.HasPrefix(err.Error(), "topology: parse cpulist ") {
			t.Errorf("ParseCPUList(%q): error %q does not name token %s", tt.in, err, tt.token)
		}
	}
}

func TestParseMask(t *testing.T) {
	tests := []struct {
		in   string
		want []int
		hex  string // HexMask() of the result
	}{
		{in: "", want: nil, hex: "0"},
		{in: "0", want: nil, hex: "0"},
		{in: "00000000,00000000\n", want: nil, hex: "0"},
		{in: "1", want: []int{0}, hex: "1"},
		{in: "ff0f", want: []int{0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 15}, hex: "ff0f"},
		{in: "00000000,0000ff0f\n", want: []int{0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 15}, hex: "ff0f"},
		{in: "fff", want: seq(0, 11), hex: "fff"},
		{in: "FFF", want: seq(0, 11), hex: "fff"},
		{in: "1,00000001", want: []int{0, 32}, hex: "1,00000001"},
		{in: "80000000,00000000", want: []int{63}, hex: "80000000,00000000"},
		{in: "1,00000000,00000000", want: []int{64}, hex: "1,00000000,00000000"},
		{in: "ffffffff,ffffffff,ffffffff,ffffffff", want: seq(0, 127), hex: "ffffffff,ffffffff,ffffffff,ffffffff"},
		{in: "00555555", want: []int{0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22}, hex: "555555"},
	}
	for _, tt := range tests {
		m, err := ParseMask(tt.in)
		if err != nil {
			t.Errorf("ParseMask(%q): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, m.Slice()); diff != "" {
			t.Errorf("ParseMask(%q) (-want +got):\n%s", tt.in, diff)
		}
		if got := m.HexMask(); got != tt.hex {
			t.Errorf("ParseMask(%q).HexMask() = %q, want %q", tt.in, got, tt.hex)
		}
	}
}

func TestParseMaskErrors(t *testing.T) {
	tests := []struct{ in, group string }{
		{"g", `"g"`},
		{"ff,", `""`},
		{",ff", `""`},
		{"123456789", `"123456789"`},
		{"0x1", `"0x1"`},
		{"-1", `"-1"`},
		{"1 ,2", `"1 "`},
		{"1" + strings.Repeat(",00000000", MaxCPUs/32), `"1"`},
	}
	for _, tt := range tests {
		m, err := ParseMask(tt.in)
		if err == nil {
			t.Errorf("ParseMask(%q) = %v, want error", tt.in, m)
			continue
		}
		if !strings.Contains(err.Error(), "group "+tt.group) {
			t.Errorf("ParseMask(%q): error %q does not name group %s", tt.in, err, tt.group)
		}
	}
	// Leading zero groups beyond MaxCPUs are harmless.
	m, err := ParseMask("0" + strings.Repeat(",00000000", MaxCPUs/32) + ",1")
	if err != nil || m.String() != "0" {
		t.Errorf("ParseMask(long zero-padded 1) = %v, %v; want 0", m, err)
	}
}

func TestCpumaskBasics(t *testing.T) {
	var m Cpumask
	if !m.Empty() || m.Weight() != 0 || m.First() != -1 || m.Max() != -1 || m.String() != "" || m.HexMask() != "0" || m.Words() != nil || m.Slice() != nil {
		t.Errorf("zero Cpumask: Empty %t Weight %d First %d Max %d String %q HexMask %q Words %v",
			m.Empty(), m.Weight(), m.First(), m.Max(), m.String(), m.HexMask(), m.Words())
	}
	m.Set(5)
	m.Set(200)
	m.Set(64)
	m.Set(-1)      // ignored
	m.Set(MaxCPUs) // ignored
	if got, want := m.Slice(), []int{5, 64, 200}; !slices.Equal(got, want) {
		t.Errorf("after Set: %v, want %v", got, want)
	}
	if !m.Has(5) || !m.Has(64) || !m.Has(200) || m.Has(6) || m.Has(-1) || m.Has(1000) || m.Has(MaxCPUs) {
		t.Errorf("Has wrong for %v", m)
	}
	if m.First() != 5 || m.Max() != 200 || m.Weight() != 3 {
		t.Errorf("First %d Max %d Weight %d, want 5 200 3", m.First(), m.Max(), m.Weight())
	}
	if diff := cmp.Diff([]uint64{1 << 5, 1, 0, 1 << 8}, m.Words()); diff != "" {
		t.Errorf("Words (-want +got):\n%s", diff)
	}
	w := m.Words()
	w[0] = 0
	if !m.Has(5) {
		t.Error("Words returned the mask's storage, not a copy")
	}
	m.Clear(200)
	m.Clear(1000) // beyond the words: no-op
	m.Clear(-3)
	if got := m.String(); got != "5,64" {
		t.Errorf("after Clear: %q, want 5,64", got)
	}
	if diff := cmp.Diff([]uint64{1 << 5, 1}, m.Words()); diff != "" {
		t.Errorf("Words after Clear (-want +got):\n%s", diff)
	}
	if !m.Equal(MaskOf(64, 5)) {
		t.Errorf("%v not Equal to MaskOf(64, 5) (trailing zero words must not matter)", m)
	}
	c := m.Clone()
	c.Set(7)
	if m.Has(7) {
		t.Error("Clone shares storage")
	}
	if got := slices.Collect(MaskOf(3, 130, 1).All()); !slices.Equal(got, []int{1, 3, 130}) {
		t.Errorf("All = %v", got)
	}
	for c := range MaskOf(1, 2, 3).All() {
		if c == 2 {
			break // early stop must not panic
		}
	}
	if got := MaskFromWords([]uint64{0b1010, 0, 1 << 63, 0}); got.String() != "1,3,191" {
		t.Errorf("MaskFromWords = %q", got)
	}
}

func TestCpumaskAlgebra(t *testing.T) {
	a, _ := ParseCPUList("0-3,64-70,200")
	b, _ := ParseCPUList("2-5,70-80")
	tests := []struct {
		name string
		got  Cpumask
		want string
	}{
		{"And", a.And(b), "2-3,70"},
		{"Or", a.Or(b), "0-5,64-80,200"},
		{"AndNot", a.AndNot(b), "0-1,64-69,200"},
		{"b AndNot a", b.AndNot(a), "4-5,71-80"},
		{"And empty", a.And(Cpumask{}), ""},
		{"Or empty", Cpumask{}.Or(a), a.String()},
		{"AndNot self", a.AndNot(a), ""},
	}
	for _, tt := range tests {
		if got := tt.got.String(); got != tt.want {
			t.Errorf("%s = %q, want %q", tt.name, got, tt.want)
		}
	}
	if !a.Intersects(b) || a.Intersects(MaskOf(100)) || a.Intersects(Cpumask{}) {
		t.Error("Intersects wrong")
	}
	if !a.And(b).Subset(a) || !a.And(b).Subset(b) || a.Subset(b) || !(Cpumask{}).Subset(a) || !a.Subset(a) {
		t.Error("Subset wrong")
	}
	if a.Equal(b) || !a.Equal(a.Clone()) || !(Cpumask{}).Equal(MaskOf(3).AndNot(MaskOf(3))) {
		t.Error("Equal wrong")
	}
	// Results must not share storage with operands.
	o := a.Or(Cpumask{})
	o.Set(500)
	if a.Has(500) {
		t.Error("Or result shares storage with its operand")
	}
	an := a.AndNot(Cpumask{})
	an.Set(501)
	if a.Has(501) {
		t.Error("AndNot result shares storage with its operand")
	}

	// Random masks against a map model.
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		x, y := randomMask(r), randomMask(r)
		and, or, andNot := map[int]bool{}, map[int]bool{}, map[int]bool{}
		for c := range 300 {
			hx, hy := x.Has(c), y.Has(c)
			and[c], or[c], andNot[c] = hx && hy, hx || hy, hx && !hy
		}
		for name, pair := range map[string]struct {
			m     Cpumask
			model map[int]bool
		}{"And": {x.And(y), and}, "Or": {x.Or(y), or}, "AndNot": {x.AndNot(y), andNot}} {
			for c := range 300 {
				if pair.m.Has(c) != pair.model[c] {
					t.Fatalf("%v %s %v: cpu %d: got %t", x, name, y, c, pair.m.Has(c))
				}
			}
		}
		if x.Intersects(y) != !x.And(y).Empty() {
			t.Fatalf("Intersects(%v, %v) inconsistent with And", x, y)
		}
		if x.Subset(y) != x.AndNot(y).Empty() {
			t.Fatalf("Subset(%v, %v) inconsistent with AndNot", x, y)
		}
		if x.Or(y).Weight() != x.Weight()+y.Weight()-x.And(y).Weight() {
			t.Fatalf("Weight(%v | %v) breaks inclusion-exclusion", x, y)
		}
	}
}

// randomMask returns a mask of random CPUs below 300, with runs.
func randomMask(r *rand.Rand) Cpumask {
	var m Cpumask
	for range r.IntN(8) {
		lo := r.IntN(300)
		hi := min(lo+r.IntN(70), 299)
		for c := lo; c <= hi; c++ {
			m.Set(c)
		}
	}
	return m
}

func TestCpumaskRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	masks := []Cpumask{{}, MaskOf(0), MaskOf(63), MaskOf(64), MaskOf(MaxCPUs - 1), MaskOf(0, MaxCPUs-1)}
	for range 300 {
		masks = append(masks, randomMask(r))
	}
	for _, m := range masks {
		l, err := ParseCPUList(m.String())
		if err != nil || !l.Equal(m) {
			t.Errorf("ParseCPUList(%q) = %v, %v", m.String(), l, err)
		}
		h, err := ParseMask(m.HexMask())
		if err != nil || !h.Equal(m) {
			t.Errorf("ParseMask(%q) = %v, %v; want %v", m.HexMask(), h, err, m)
		}
		if w := MaskFromWords(m.Words()); !w.Equal(m) {
			t.Errorf("MaskFromWords(%v.Words()) = %v", m, w)
		}
		if got := MaskOf(m.Slice()...); !got.Equal(m) {
			t.Errorf("MaskOf(%v.Slice()...) = %v", m, got)
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var back Cpumask
		if err := json.Unmarshal(b, &back); err != nil || !back.Equal(m) {
			t.Errorf("JSON %s read back as %v, %v", b, back, err)
		}
	}
}

func TestCpumaskJSON(t *testing.T) {
	v := struct {
		CPUs Cpumask
		Type CoreType
	}{MaskOf(0, 1, 2, 3, 8), CoreLittle}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"CPUs":"0-3,8","Type":"little"}`; got != want {
		t.Errorf("json.Marshal = %s, want %s", got, want)
	}
	if err := json.Unmarshal([]byte(`{"CPUs":"0-x"}`), &v); err == nil {
		t.Error("Unmarshal of a bad cpulist succeeded")
	}
	var ct CoreType
	if err := ct.UnmarshalText([]byte("turbo")); err != nil || ct != CoreTurbo {
		t.Errorf("UnmarshalText(turbo) = %v, %v", ct, err)
	}
	if err := ct.UnmarshalText([]byte("huge")); err == nil {
		t.Error("UnmarshalText(huge) succeeded")
	}
	if got := CoreType(9).String(); got != "CoreType(9)" {
		t.Errorf("CoreType(9).String() = %q", got)
	}
}

func FuzzParseCPUList(f *testing.F) {
	for _, s := range []string{"", "\n", "0", "0-3,8,10-11\n", "0-7:2/4", "63-64,128", "3,1,2", "0-65535", "x", "1-", "0,,1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseCPUList(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "topology: parse cpulist ") {
				t.Fatalf("error %q lacks the prefix", err)
			}
			return
		}
		list := m.String()
		back, err := ParseCPUList(list)
		if err != nil || !back.Equal(m) {
			t.Fatalf("ParseCPUList(%q) = %v; its String %q parses as %v, %v", s, m, list, back, err)
		}
		if back.String() != list {
			t.Fatalf("String not canonical: %q then %q", list, back.String())
		}
		if hex, err := ParseMask(m.HexMask()); err != nil || !hex.Equal(m) {
			t.Fatalf("HexMask %q parses as %v, %v; want %v", m.HexMask(), hex, err, m)
		}
	})
}

func FuzzParseMask(f *testing.F) {
	for _, s := range []string{"", "0", "ff0f", "00000000,0000ff0f\n", "1,00000001", "FFFFFFFF,ffffffff,1", "g", "123456789", ",", "1,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMask(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "topology: parse mask ") {
				t.Fatalf("error %q lacks the prefix", err)
			}
			return
		}
		hex := m.HexMask()
		back, err := ParseMask(hex)
		if err != nil || !back.Equal(m) {
			t.Fatalf("ParseMask(%q) = %v; its HexMask %q parses as %v, %v", s, m, hex, back, err)
		}
		if back.HexMask() != hex {
			t.Fatalf("HexMask not canonical: %q then %q", hex, back.HexMask())
		}
		if list, err := ParseCPUList(m.String()); err != nil || !list.Equal(m) {
			t.Fatalf("String %q parses as %v, %v; want %v", m.String(), list, err, m)
		}
	})
}

// seq returns lo, lo+1, ..., hi.
func seq(lo, hi int) []int {
	s := make([]int, 0, hi-lo+1)
	for i := lo; i <= hi; i++ {
		s = append(s, i)
	}
	return s
}
