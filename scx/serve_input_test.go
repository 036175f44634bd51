package scx

import (
	"context"
	"errors"
	"testing"
)

// TestServeStoppedBeforeLoad checks that Serve with a ctx already done
// loads nothing and says why, so that a command stopped by a signal
// before its scheduler is loaded exits cleanly instead of loading (or
// failing to load) and attaching it.
func TestServeStoppedBeforeLoad(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	loads := 0
	spec := &Spec{cfg: Config{Name: "stopped"}}
	info, err := Serve(ctx, spec, &ServeOptions{
		Load:   &LoadOptions{Kernel: &Kernel{Gen: KfuncBase}},
		OnLoad: func(*Scheduler) error { loads++; return nil },
	})
	if info != nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("Serve with a canceled ctx = %v, %v; want nil and an error wrapping context.Canceled", info, err)
	}
	if want := "serve stopped: stopped before load: context canceled"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if loads != 0 {
		t.Errorf("OnLoad ran %d times", loads)
	}
}
