package topology

import "errors"

// The package's sentinel errors. Errors wrap them with what was wrong and
// how to fix it; match them with errors.Is.
var (
	// ErrInvalid is wrapped by the errors of ParseCPUList, ParseMask and
	// the UnmarshalText methods for text that is not what they parse.
	ErrInvalid = errors.New("invalid input")
	// ErrTooBig is wrapped by Topology.Bind's error for a machine that does
	// not fit the BPF-side layout: more CPUs, cores, LLCs or nodes than
	// MaxBPFCPUs, MaxBPFLLCs and MaxBPFNodes allow.
	ErrTooBig = errors.New("too big")
)
