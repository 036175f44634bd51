package topology

import (
	"errors"
	"fmt"
	"iter"
	"math/bits"
	"slices"
	"strconv"
	"strings"
)

// MaxCPUs bounds the CPU ids a Cpumask holds: ids from 0 to MaxCPUs-1.
// Linux builds for at most 8192 CPUs (CONFIG_NR_CPUS); the bound is higher
// so that no real machine reaches it, and low enough that a malformed
// cpulist such as "0-999999999" is rejected instead of allocating gigabytes.
// ParseCPUList and ParseMask return an error for larger ids; Set and Clear
// ignore them, and Has reports false.
const MaxCPUs = 1 << 16

// Cpumask is a set of CPU ids, as the kernel's cpumask_t: bit i of the mask
// stands for the CPU with kernel id i. The zero value is empty and ready to
// use.
//
// Methods with a value receiver never modify the mask and return new masks
// that share no storage with their operands. Set and Clear modify the mask
// in place; as with a slice, a Cpumask copied by assignment may share its
// storage with the original, so call Clone before modifying a copy that must
// stay independent.
type Cpumask struct {
	words []uint64 // bit i of words[w] is CPU 64*w+i; may have zero words at the end
}

// ParseCPUList parses the kernel's cpulist format, as in
// /sys/devices/system/cpu/online or topology/thread_siblings_list: a
// comma-separated list of CPU ids and inclusive ranges, such as "0-3,8,10-11".
// White space around the list (the trailing newline of a sysfs file) is
// ignored, and an empty list is the empty mask.
//
// The kernel's group form "first-last:used/group" is accepted too: in each
// group of group CPUs from first on, the first used CPUs are in the mask,
// so "0-7:2/4" is 0-1,4-5. Sysfs never prints it, but the kernel's command
// line (isolcpus=, nohz_full=) accepts it.
//
// The error wraps ErrInvalid and names the malformed token. CPU ids must
// be below MaxCPUs.
func ParseCPUList(s string) (Cpumask, error) {
	m, err := parseCPUList(s)
	if err != nil {
		return Cpumask{}, fmt.Errorf("topology: parse cpulist %s: %w: %w", quoteShort(strings.TrimSpace(s)), ErrInvalid, err)
	}
	return m, nil
}

// parseCPUList is ParseCPUList with an error that names only the token.
func parseCPUList(s string) (Cpumask, error) {
	var m Cpumask
	s = strings.TrimSpace(s)
	if s == "" {
		return m, nil
	}
	for tok := range strings.SplitSeq(s, ",") {
		if err := m.addListToken(tok); err != nil {
			return Cpumask{}, fmt.Errorf("token %s: %w", quoteShort(tok), err)
		}
	}
	return m, nil
}

// addListToken adds one token of a cpulist, "N", "A-B" or "A-B:U/G", to m.
func (m *Cpumask) addListToken(tok string) error {
	if tok == "" {
		return errors.New("empty token: want a CPU id or a range such as 0-3")
	}
	rng, group, hasGroup := strings.Cut(tok, ":")
	lo, hi := rng, rng
	isRange := false
	if a, b, ok := strings.Cut(rng, "-"); ok {
		lo, hi, isRange = a, b, true
	}
	first, err := parseCPUID(lo)
	if err != nil {
		return err
	}
	last, err := parseCPUID(hi)
	if err != nil {
		return err
	}
	if first > last {
		return fmt.Errorf("range starts after it ends (%d > %d)", first, last)
	}
	used, size := 1, 1
	if hasGroup {
		if !isRange {
			return errors.New("the group form needs a range, as in 0-7:2/4")
		}
		u, g, ok := strings.Cut(group, "/")
		if !ok {
			return errors.New("the group form is first-last:used/group, as in 0-7:2/4")
		}
		if used, err = parseCount(u); err != nil {
			return err
		}
		if size, err = parseCount(g); err != nil {
			return err
		}
		if used > size {
			return fmt.Errorf("group uses %d CPUs of %d", used, size)
		}
	}
	m.grow(last)
	if used == size {
		m.setRange(first, last)
		return nil
	}
	for start := first; start <= last; start += size {
		m.setRange(start, min(start+used-1, last))
	}
	return nil
}

// parseCPUID parses a decimal CPU id below MaxCPUs.
func parseCPUID(s string) (int, error) {
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%s is not a CPU id", quoteShort(s))
	}
	if v >= MaxCPUs {
		return 0, fmt.Errorf("CPU id %d is not below %d", v, MaxCPUs)
	}
	return int(v), nil
}

// parseCount parses the used or group size of the group form: a positive
// decimal number below MaxCPUs.
func parseCount(s string) (int, error) {
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil || v == 0 || v >= MaxCPUs {
		return 0, fmt.Errorf("%s is not a group size between 1 and %d", quoteShort(s), MaxCPUs-1)
	}
	return int(v), nil
}

// ParseMask parses the kernel's hexadecimal cpumask format, as in
// topology/thread_siblings or node/nodeN/cpumap: comma-separated groups of
// up to eight hex digits, each 32 CPUs, the most significant group first,
// such as "00000000,0000ff0f" for CPUs 0-3,8-15. White space around the
// mask is ignored; an empty string is the empty mask. The error wraps
// ErrInvalid and names the malformed group. Set bits must stand for CPU
// ids below MaxCPUs.
func ParseMask(s string) (Cpumask, error) {
	var m Cpumask
	s = strings.TrimSpace(s)
	if s == "" {
		return m, nil
	}
	groups := strings.Split(s, ",")
	for i, g := range groups {
		n := len(groups) - 1 - i // groups[n] holds CPUs 32n to 32n+31
		if g == "" || len(g) > 8 {
			return Cpumask{}, fmt.Errorf("topology: parse mask %s: group %s: %w: want 1 to 8 hex digits", quoteShort(s), quoteShort(g), ErrInvalid)
		}
		v, err := strconv.ParseUint(g, 16, 32)
		if err != nil {
			return Cpumask{}, fmt.Errorf("topology: parse mask %s: group %s: %w: not a hex number", quoteShort(s), quoteShort(g), ErrInvalid)
		}
		if v == 0 {
			continue
		}
		if n >= MaxCPUs/32 {
			return Cpumask{}, fmt.Errorf("topology: parse mask %s: group %s: %w: sets CPUs at or above %d", quoteShort(s), quoteShort(g), ErrInvalid, MaxCPUs)
		}
		m.grow(32*n + 31)
		m.words[n/2] |= v << (32 * (n % 2))
	}
	return m, nil
}

// MaskOf returns the mask of the given CPUs. Ids outside 0 to MaxCPUs-1
// are left out.
func MaskOf(cpus ...int) Cpumask {
	var m Cpumask
	for _, c := range cpus {
		m.Set(c)
	}
	return m
}

// MaskFromWords returns the mask whose bits are words, in the layout Words
// returns: bit i of words[w] is CPU 64w+i. It is the inverse of Words, for
// masks read back from BPF maps. Bits at or above MaxCPUs are dropped.
func MaskFromWords(words []uint64) Cpumask {
	n := min(len(words), MaxCPUs/64)
	m := Cpumask{words: slices.Clone(words[:n])}
	m.trim()
	return m
}

// valid reports whether cpu is an id a Cpumask can hold.
func valid(cpu int) bool { return cpu >= 0 && cpu < MaxCPUs }

// grow makes room for CPU id cpu, which must be valid.
func (m *Cpumask) grow(cpu int) {
	if need := cpu/64 + 1; need > len(m.words) {
		m.words = append(m.words, make([]uint64, need-len(m.words))...)
	}
}

// setRange sets CPUs first to last (inclusive); m must have room for last.
func (m *Cpumask) setRange(first, last int) {
	for w := first / 64; w <= last/64; w++ {
		lo, hi := max(first, 64*w)-64*w, min(last, 64*w+63)-64*w
		m.words[w] |= (^uint64(0) >> (63 - hi)) &^ (1<<lo - 1)
	}
}

// trim drops zero words at the end.
func (m *Cpumask) trim() {
	n := len(m.words)
	for n > 0 && m.words[n-1] == 0 {
		n--
	}
	m.words = m.words[:n]
	if n == 0 {
		m.words = nil
	}
}

// Set adds cpu to the mask. Ids outside 0 to MaxCPUs-1 are ignored.
func (m *Cpumask) Set(cpu int) {
	if !valid(cpu) {
		return
	}
	m.grow(cpu)
	m.words[cpu/64] |= 1 << (cpu % 64)
}

// Clear removes cpu from the mask.
func (m *Cpumask) Clear(cpu int) {
	if !valid(cpu) || cpu/64 >= len(m.words) {
		return
	}
	m.words[cpu/64] &^= 1 << (cpu % 64)
}

// Clone returns a copy of m that shares no storage with it.
func (m Cpumask) Clone() Cpumask {
	c := Cpumask{words: slices.Clone(m.words)}
	c.trim()
	return c
}

// Has reports whether cpu is in the mask.
func (m Cpumask) Has(cpu int) bool {
	return valid(cpu) && cpu/64 < len(m.words) && m.words[cpu/64]&(1<<(cpu%64)) != 0
}

// Weight returns the number of CPUs in the mask.
func (m Cpumask) Weight() int {
	n := 0
	for _, w := range m.words {
		n += bits.OnesCount64(w)
	}
	return n
}

// Empty reports whether the mask has no CPU.
func (m Cpumask) Empty() bool {
	for _, w := range m.words {
		if w != 0 {
			return false
		}
	}
	return true
}

// First returns the lowest CPU in the mask, or -1 if it is empty.
func (m Cpumask) First() int {
	for i, w := range m.words {
		if w != 0 {
			return 64*i + bits.TrailingZeros64(w)
		}
	}
	return -1
}

// Max returns the highest CPU in the mask, or -1 if it is empty.
func (m Cpumask) Max() int {
	for i := len(m.words) - 1; i >= 0; i-- {
		if w := m.words[i]; w != 0 {
			return 64*i + 63 - bits.LeadingZeros64(w)
		}
	}
	return -1
}

// next returns the lowest CPU in the mask at or above cpu, or -1.
func (m Cpumask) next(cpu int) int {
	if cpu < 0 {
		cpu = 0
	}
	i := cpu / 64
	if i >= len(m.words) {
		return -1
	}
	if w := m.words[i] >> (cpu % 64); w != 0 {
		return cpu + bits.TrailingZeros64(w)
	}
	for i++; i < len(m.words); i++ {
		if w := m.words[i]; w != 0 {
			return 64*i + bits.TrailingZeros64(w)
		}
	}
	return -1
}

// All returns the CPUs of the mask in ascending order. The mask must not be
// modified during the iteration.
func (m Cpumask) All() iter.Seq[int] {
	return func(yield func(int) bool) {
		for i, w := range m.words {
			for w != 0 {
				b := bits.TrailingZeros64(w)
				if !yield(64*i + b) {
					return
				}
				w &= w - 1
			}
		}
	}
}

// Slice returns the CPUs of the mask in ascending order; nil if empty.
func (m Cpumask) Slice() []int {
	n := m.Weight()
	if n == 0 {
		return nil
	}
	s := make([]int, 0, n)
	for c := range m.All() {
		s = append(s, c)
	}
	return s
}

// And returns the CPUs in both m and o.
func (m Cpumask) And(o Cpumask) Cpumask {
	n := min(len(m.words), len(o.words))
	r := Cpumask{words: make([]uint64, n)}
	for i := range n {
		r.words[i] = m.words[i] & o.words[i]
	}
	r.trim()
	return r
}

// Or returns the CPUs in m or o.
func (m Cpumask) Or(o Cpumask) Cpumask {
	a, b := m.words, o.words
	if len(a) < len(b) {
		a, b = b, a
	}
	r := Cpumask{words: slices.Clone(a)}
	for i, w := range b {
		r.words[i] |= w
	}
	r.trim()
	return r
}

// AndNot returns the CPUs in m but not in o.
func (m Cpumask) AndNot(o Cpumask) Cpumask {
	r := Cpumask{words: slices.Clone(m.words)}
	for i := range min(len(r.words), len(o.words)) {
		r.words[i] &^= o.words[i]
	}
	r.trim()
	return r
}

// Equal reports whether m and o hold the same CPUs.
func (m Cpumask) Equal(o Cpumask) bool {
	a, b := m.words, o.words
	if len(a) < len(b) {
		a, b = b, a
	}
	for i, w := range a {
		if i < len(b) {
			if w != b[i] {
				return false
			}
		} else if w != 0 {
			return false
		}
	}
	return true
}

// Intersects reports whether m and o have a CPU in common.
func (m Cpumask) Intersects(o Cpumask) bool {
	for i := range min(len(m.words), len(o.words)) {
		if m.words[i]&o.words[i] != 0 {
			return true
		}
	}
	return false
}

// Subset reports whether every CPU of m is in o.
func (m Cpumask) Subset(o Cpumask) bool {
	for i, w := range m.words {
		var ow uint64
		if i < len(o.words) {
			ow = o.words[i]
		}
		if w&^ow != 0 {
			return false
		}
	}
	return true
}

// String returns the mask in the kernel's cpulist format, such as
// "0-3,8"; the empty mask is "". ParseCPUList reads it back.
func (m Cpumask) String() string {
	return string(m.appendList(nil))
}

// appendList appends the cpulist form of m to b.
func (m Cpumask) appendList(b []byte) []byte {
	start := len(b)
	for c := m.next(0); c >= 0; {
		end := c
		for m.Has(end + 1) {
			end++
		}
		if len(b) > start {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(c), 10)
		if end > c {
			b = append(b, '-')
			b = strconv.AppendInt(b, int64(end), 10)
		}
		c = m.next(end + 1)
	}
	return b
}

// HexMask returns the mask in the kernel's hexadecimal format: groups of 32
// CPUs, most significant first, separated by commas, each of eight hex
// digits except the first, which has no leading zeros. CPUs 0-3,8-15 are
// "ff0f" and CPUs 0 and 32 are "1,00000001"; the empty mask is "0".
// ParseMask reads it back.
func (m Cpumask) HexMask() string {
	hi := m.Max()
	if hi < 0 {
		return "0"
	}
	top := hi / 32 // index of the most significant group
	group := func(n int) uint64 { return m.words[n/2] >> (32 * (n % 2)) & 0xffffffff }
	b := make([]byte, 0, 9*(top+1))
	b = strconv.AppendUint(b, group(top), 16)
	for n := top - 1; n >= 0; n-- {
		b = append(b, ',')
		s := strconv.FormatUint(group(n), 16)
		for range 8 - len(s) {
			b = append(b, '0')
		}
		b = append(b, s...)
	}
	return string(b)
}

// Words returns the mask as little-endian 64-bit words, bit i of word w
// being CPU 64w+i: the layout of a BPF cpumask array. The slice is a copy,
// without zero words at the end (nil for the empty mask).
func (m Cpumask) Words() []uint64 {
	return m.Clone().words
}

// MarshalText returns the cpulist form (String), so that JSON shows a mask
// as "0-3,8".
func (m Cpumask) MarshalText() ([]byte, error) {
	return m.appendList(nil), nil
}

// UnmarshalText parses the cpulist form (ParseCPUList) into m.
func (m *Cpumask) UnmarshalText(b []byte) error {
	v, err := ParseCPUList(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// quoteShort quotes s for an error message, shortened if long.
func quoteShort(s string) string {
	const limit = 64
	if len(s) > limit {
		return strconv.Quote(s[:limit]) + "..."
	}
	return strconv.Quote(s)
}
