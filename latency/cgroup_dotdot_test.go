package latency

import (
	"errors"
	"strings"
	"testing"
)

// TestLookupCgroupDotDot: a path with ".." is refused with a hint that is
// itself a valid path, instead of being resolved silently (../x used to
// mean /x).
func TestLookupCgroupDotDot(t *testing.T) {
	for path, hint := range map[string]string{
		"../x": `"/x"`, "/a/../b": `"/a/b"`, "..": `"/"`, "x/../../etc": `"/x/etc"`,
	} {
		_, err := lookupCgroup(t.TempDir(), path)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `".." is not allowed`) || !strings.Contains(err.Error(), "e.g. "+hint) {
			t.Errorf("lookupCgroup(%q) = %v; want ErrInvalid refusing \"..\" with the hint %s", path, err, hint)
		}
	}
}
