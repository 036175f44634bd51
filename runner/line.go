package runner

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/scxkit/scxkit/scx"
)

// AppendStatsLine appends the stats line of snap to b, without a newline:
// the time (15:04:05), then every stat of the snapshot as name=value, in
// the snapshot's order (the scheduler's own counters and gauges, then
// each component's stats in the order of Config.Components):
//
//	12:00:01 enqueued=1520 dispatched=1490 dsq.steals=3 dsq.queued{domain=0}=2 dsq.queued{domain=1}=0
//
// A counter shows its total, a gauge its level (StatDesc.Kind tells them
// apart; Prometheus and `scxkit stats --meta` show the kind). The
// scheduler's own stats (stats.bpf.h) are named as they are; a
// component's stats are named component.stat; a vector stat (one with a
// StatDesc.Label) has one entry per label value, with the label and the
// value in braces. A label value holding a space, a quote, a comma, '='
// or a brace is quoted as a Go string. Whole values are printed in full
// (1520, 123456789012); others with four decimals at most, without an
// exponent (0.25, 397.4443).
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

// appendValue appends v without an exponent: whole values in full,
// others rounded to four decimals, trailing zeros dropped.
func appendValue(b []byte, v float64) []byte {
	if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
		return strconv.AppendFloat(b, v, 'f', 0, 64)
	}
	n := len(b)
	b = strconv.AppendFloat(b, v, 'f', 4, 64)
	if bytes.IndexByte(b[n:], '.') >= 0 {
		b = bytes.TrimRight(b, "0")
		b = bytes.TrimSuffix(b, []byte("."))
	}
	return b
}
