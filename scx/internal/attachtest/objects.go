package attachtest

import "github.com/scxkit/scxkit/scx"

// Test schedulers for package scx's tests and examples.
var (
	// Fifo is a healthy minimal scheduler (fifo.bpf.c): every task on the
	// global DSQ, counter "enqueued".
	Fifo = scx.Objects{Base: loadFifo, V2: loadFifoV2}
	// Fail fails on purpose (fail.bpf.c): constant "mode" selects an
	// sk_error from enqueue (1), a stall the watchdog catches (2) or an
	// sk_exit with code 7 (3).
	Fail = scx.Objects{Base: loadFail, V2: loadFailV2}
	// Bad is rejected by the verifier (bad.bpf.c).
	Bad = scx.Objects{Base: loadBad, V2: loadBadV2}
)
