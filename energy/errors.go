package energy

import (
	"errors"
	"fmt"
)

// The package's sentinel errors for bad input. Errors wrap them with what
// was wrong and how to fix it; match them with errors.Is. ErrNoKnob and
// ErrReadOnly (Knobs) say what the system lacks instead.
var (
	// ErrInvalid is wrapped by every error about input this package
	// cannot use: an energy model that the kernel would not build (a
	// missing or malformed debugfs file, unsorted or duplicate
	// frequencies, a power out of range, a CPU in two performance
	// domains), a utilisation or demand that is not a finite number of
	// at least 0, table or planner options out of range, a plan naming
	// what the model lacks, and a cpufreq knob value the kernel would
	// refuse. The message names the file, field or value and how to
	// fix it.
	ErrInvalid = errors.New("invalid input")
	// ErrTooBig is wrapped by the errors for a model beyond a limit: the
	// BPF layout's (New: CPU ids from SK_ENERGY_MAX_CPUS on, more than
	// SK_ENERGY_MAX_STATES efficient states in a domain), or the time
	// and memory bounds of Model.CheapestSets.
	ErrTooBig = errors.New("too big")
)

// invalidf returns an error wrapping ErrInvalid: what (the input at
// fault), the sentinel, then the rest: what is wrong with it and how to
// fix it. The caller adds the package prefix.
func invalidf(what, format string, args ...any) error {
	return fmt.Errorf("%s: %w: %s", what, ErrInvalid, fmt.Sprintf(format, args...))
}
