package energy

import "encoding/binary"

// Class is a set of equivalent performance domains: the same number of
// CPUs and identical state tables (and power unit), such as the sixteen
// one-CPU domains of the E-cores of an Intel hybrid CPU. Placing work on
// one domain of a class or another costs the same, so searches over the
// model work on classes and counts of domains, not on sets of domains.
type Class struct {
	// Domains are the indices in Model.Domains of the class's domains,
	// ascending.
	Domains []int
	// CPUsPerDomain is the number of CPUs of each domain.
	CPUsPerDomain int
}

// States returns the state table the class's domains share.
func (c Class) States(m *Model) []PerfState {
	return m.Domains[c.Domains[0]].States
}

// Classes groups the model's domains into classes, ordered by their first
// domain. It takes O(total states) time.
func (m *Model) Classes() []Class {
	var classes []Class
	byKey := map[string]int{}
	var key []byte
	for i := range m.Domains {
		d := &m.Domains[i]
		key = classKey(key[:0], d)
		ci, ok := byKey[string(key)]
		if !ok {
			ci = len(classes)
			byKey[string(key)] = ci
			classes = append(classes, Class{CPUsPerDomain: d.CPUs.Weight()})
		}
		classes[ci].Domains = append(classes[ci].Domains, i)
	}
	return classes
}

// classKey encodes what makes two domains equivalent.
func classKey(b []byte, d *PerfDomain) []byte {
	b = binary.AppendUvarint(b, uint64(d.CPUs.Weight()))
	b = append(b, map[bool]byte{false: 0, true: 1}[d.Microwatts])
	for _, s := range d.States {
		b = binary.AppendUvarint(b, s.FrequencyKHz)
		b = binary.AppendUvarint(b, s.Power)
		b = binary.AppendUvarint(b, s.Performance)
		b = binary.AppendUvarint(b, s.Cost)
		b = append(b, map[bool]byte{false: 0, true: 1}[s.Inefficient])
	}
	return b
}
