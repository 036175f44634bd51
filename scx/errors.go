package scx

import "errors"

// ErrNotSupported is wrapped by every error that reports a kernel without
// the sched_ext feature an operation needs (no CONFIG_SCHED_CLASS_EXT, or a
// kfunc, ops member or enum value the running kernel lacks).
var ErrNotSupported = errors.New("not supported by the running kernel")
