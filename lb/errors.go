package lb

import "errors"

// The package's sentinel errors. Errors wrap them with what was wrong and
// how to fix it; match them with errors.Is.
var (
	// ErrInvalid is wrapped by every error about the input of
	// AdjustWeights, New, Balancer.Balance and Balancer.Bind: a weight,
	// duty cycle, CPU count, domain, task or option that is out of range,
	// or domains that are not the DSQs of the scheduler's layout. The
	// message names the value and how to fix it.
	ErrInvalid = errors.New("invalid input")
	// ErrTooBig is wrapped by the error of Balancer.Bind for more
	// domains than lb.bpf.h tracks (MaxTrackedDomains).
	ErrTooBig = errors.New("too big")
)
