package scx

import (
	"slices"
	"strings"
	"testing"
)

func TestVerifierTail(t *testing.T) {
	classic := []string{"0: R1=ctx()", "1: (79) r1 = *(u64 *)(r0 +0)", "R0 invalid mem access 'map_value_or_null'", "processed 9 insns (limit 1000000)"}
	if got := verifierTail(classic); !slices.Equal(got, classic) {
		t.Errorf("short classic log: %q", got)
	}
	long := make([]string, 100)
	for i := range long {
		long[i] = "line"
	}
	long[98] = "the error"
	if got := verifierTail(long); len(got) != verifierTailLines || got[len(got)-2] != "the error" {
		t.Errorf("long classic log: %d lines ending %q", len(got), got[len(got)-2:])
	}
	report := append(slices.Clone(long[:80]), "R0 invalid mem access", "", "Verification failed: Register Type Safety", "", "Reason:", "  R0 may be NULL")
	got := verifierTail(report)
	if got[0] != "R0 invalid mem access" || !strings.Contains(strings.Join(got, "\n"), "R0 may be NULL") {
		t.Errorf("log with a report: %q", got)
	}
}
