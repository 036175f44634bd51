// Package combined holds a scheduler composed of every component at
// once (topology, dsq per LLC with classes, lb, preempt ordering dsq's
// queues, smt filtering them) for its VM test. It has no API for users.
package combined

import "github.com/scxkit/scxkit/scx"

//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -tags linux -target bpfel -no-global-types sched sched.bpf.c -- -mcpu=v3 -Wno-missing-declarations -I../../bpf/include
//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -tags linux -target bpfel -no-global-types schedV2 sched.bpf.c -- -mcpu=v3 -Wno-missing-declarations -I../../bpf/include -DSCXKIT_KFUNC_V2

// Sched is the test scheduler for both kfunc generations.
var Sched = scx.Objects{Base: loadSched, V2: loadSchedV2}
