package scxtest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// fatalTB records a Fatal and stops the calling function, as testing.T
// does, so that a failing WaitFor can be checked.
type fatalTB struct {
	testing.TB
	msg string
}

type fatalStop struct{}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatal(args ...any) {
	f.msg = fmt.Sprint(args...)
	panic(fatalStop{})
}

// failed runs f with a fatalTB and returns its Fatal message, "" if none.
func failed(t *testing.T, f func(tb testing.TB)) (msg string) {
	tb := &fatalTB{TB: t}
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(fatalStop); !ok {
				panic(r)
			}
			msg = tb.msg
		}
	}()
	f(tb)
	return ""
}

func TestWaitFor(t *testing.T) {
	calls := 0
	if msg := failed(t, func(tb testing.TB) {
		WaitFor(tb, "the third call", time.Minute, func() bool { calls++; return calls == 3 }, nil)
	}); msg != "" || calls != 3 {
		t.Errorf("condition true at the third call: %d calls, failure %q", calls, msg)
	}
	msg := failed(t, func(tb testing.TB) {
		WaitFor(tb, "never", 50*time.Millisecond, func() bool { return false }, func() string { return "the output" })
	})
	if !strings.Contains(msg, "never: not within 50ms") || !strings.Contains(msg, "the output") {
		t.Errorf("condition never true: failure %q, want one naming the condition, the timeout and the output", msg)
	}
}

func TestSampleBusy(t *testing.T) {
	busy, err := SampleBusy(context.Background(), 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	times, err := ReadCPUTimes()
	if err != nil {
		t.Fatal(err)
	}
	if len(busy) != len(times) {
		t.Errorf("%d fractions for %d CPUs", len(busy), len(times))
	}
	for c, f := range busy {
		if f < 0 || f > 1 {
			t.Errorf("CPU %d: busy fraction %v, want within [0, 1]", c, f)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// 10s: a SampleBusy that ignored ctx would return no error after it.
	if _, err := SampleBusy(ctx, 10*time.Second); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v, want context.Canceled", err)
	}
}
