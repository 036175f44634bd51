package energy_test

import (
	"github.com/google/go-cmp/cmp"

	"github.com/scxkit/scxkit/topology"
)

// cmpopts compares Cpumasks by content.
var cmpopts = []cmp.Option{cmp.Comparer(func(a, b topology.Cpumask) bool { return a.Equal(b) })}
