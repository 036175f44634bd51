package latency

import (
	"encoding/binary"
	"unsafe"
)

// binarySize is the size of the C struct sk_lat_outlier.
func binarySize(r *latencybpfSkLatOutlier) int { return int(unsafe.Sizeof(*r)) }

// decodeOutlier decodes a struct sk_lat_outlier (little-endian, as bpf2go's
// -target bpfel) without reflection.
func decodeOutlier(r *latencybpfSkLatOutlier, b []byte) {
	le := binary.LittleEndian
	r.Cgid = le.Uint64(b[0:])
	r.DelayNs = le.Uint64(b[8:])
	r.SameNs = le.Uint64(b[16:])
	r.OtherNs = le.Uint64(b[24:])
	r.IdleNs = le.Uint64(b[32:])
	r.AtNs = le.Uint64(b[40:])
	r.Pid = le.Uint32(b[48:])
	r.Tgid = le.Uint32(b[52:])
	r.Cpu = le.Uint32(b[56:])
	r.Kind = le.Uint32(b[60:])
	for i := range r.Comm {
		r.Comm[i] = int8(b[64+i])
	}
}
