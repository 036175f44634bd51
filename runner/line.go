package runner

import (
	"strconv"
	"strings"
	"time"

	"github.com/scxkit/scxkit/scx"
)

// AppendStatsLine appends the stats line of snap to b, without a newline:
// the time (15:04:05), then every stat of the snapshot as name=value, in
// the snapshot's order (the scheduler's own counters, then each
// component's stats in the order of Config.Components):
//
//	12:00:01 enqueued=1520 dispatched=1490 dsq.steals=3 dsq.queued{domain=0}=2 dsq.queued{domain=1}=0
//
// The scheduler's own counters (sk_stats) are named as they are; a
// component's stats are named component.stat; a vector stat (one with a
// StatDesc.Label) has one entry per label value, with the label and the
// value in braces. A label value holding a space, a quote, a comma, '='
// or a brace is quoted as a Go string. Values are printed in full,
// without an exponent: 1520, 0.25.
func AppendStatsLine(b []byte, snap *scx.Snapshot) []byte {
	b = snap.Time.AppendFormat(b, time.TimeOnly)
	for i := range snap.Sets {
		set := &snap.Sets[i]
		for _, smp := range set.Samples {
			if smp.Stat < 0 || smp.Stat >= len(set.Descs) {
				continue
			}
			d := &set.Descs[smp.Stat]
			b = append(b, ' ')
			b = appendStatName(b, set.Component, d.Name, d.Label, smp.Label)
			b = append(b, '=')
			b = appendValue(b, smp.Value)
		}
	}
	return b
}

// appendStatName appends the name the stats line gives a stat: name,
// component.name, and {label=value} after either for a vector stat.
func appendStatName(b []byte, component, name, label, value string) []byte {
	if component != "" {
		b = append(b, component...)
		b = append(b, '.')
	}
	b = append(b, name...)
	if label != "" {
		b = append(b, '{')
		b = append(b, label...)
		b = append(b, '=')
		b = appendLabelValue(b, value)
		b = append(b, '}')
	}
	return b
}

// appendLabelValue appends v, quoted if it holds anything that would make
// the line ambiguous.
func appendLabelValue(b []byte, v string) []byte {
	if v == "" || strings.ContainsFunc(v, func(r rune) bool {
		return r <= ' ' || r == '"' || r == ',' || r == '=' || r == '{' || r == '}' || r == 0x7f || !strconv.IsPrint(r)
	}) {
		return strconv.AppendQuote(b, v)
	}
	return append(b, v...)
}

// appendValue appends v in full, without an exponent.
func appendValue(b []byte, v float64) []byte {
	return strconv.AppendFloat(b, v, 'f', -1, 64)
}
