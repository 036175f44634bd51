package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// ErrInvalid is wrapped by the errors of a Report given bad input: a
// value that is not finite, a metric whose unit or direction changes, a
// confidence level outside (0, 1), a file of another format version.
var ErrInvalid = errors.New("invalid input")

// Default names the kernel's own scheduler (EEVDF or CFS, no sched_ext
// scheduler attached) in a Report: the base of every ratio.
const Default = "default"

// FormatVersion is the version of the JSON file format, the Version field
// of a Report written by this package. It changes when a field is
// renamed, removed or changes meaning, not when an optional one is added
// ("profiles"): a file without it reads as before.
const FormatVersion = 1

// Report holds every run of a benchmark session and their statistics;
// its JSON encoding is the results file (see the package doc).
type Report struct {
	// Version is the file format's version, FormatVersion.
	Version int `json:"version"`
	// Kernel is the guest kernel's release (uname -r).
	Kernel string `json:"kernel"`
	// VCPUs is the number of vCPUs of the guest.
	VCPUs int `json:"vcpus"`
	// Repetitions is the number of times each benchmark ran under each
	// scheduler.
	Repetitions int `json:"repetitions"`
	// Level is the confidence level of every interval; 0 means
	// DefaultLevel.
	Level float64 `json:"level"`
	// Schedulers lists the schedulers compared, Default first.
	Schedulers []string `json:"schedulers"`
	// Commands records the command lines run, by benchmark name; the
	// runner may add others, such as the CPU hogs' under "hogs".
	Commands map[string][]string `json:"commands,omitempty"`
	// Results holds one Result per benchmark, metric and scheduler:
	// after Compute, grouped by benchmark and metric in the order they
	// were first added, and within each in the order of Schedulers.
	Results []Result `json:"results"`
	// Profiles holds, when the session measured it (Plan.Profile), the
	// BPF time of each sched_ext scheduler's programs per benchmark:
	// after Compute, in the order of Results' benchmarks and of
	// Schedulers, each scheduler's programs by decreasing time.
	Profiles []Profile `json:"profiles,omitempty"`
}

// Result is one metric of one benchmark under one scheduler.
type Result struct {
	Benchmark string `json:"benchmark"`
	Metric    Metric `json:"metric"`
	Scheduler string `json:"scheduler"`
	// Values holds the metric's value in each run, in run order.
	Values []float64 `json:"values"`
	// Summary summarizes Values (set by Compute).
	Summary Summary `json:"summary"`
	// Ratio compares this result's values with those of the Default
	// scheduler for the same benchmark and metric: scheduler/default
	// (set by Compute; nil for the Default scheduler itself).
	Ratio *RatioSummary `json:"ratio"`
}

// level returns the report's confidence level.
func (r *Report) level() float64 {
	if r.Level == 0 {
		return DefaultLevel
	}
	return r.Level
}

// find returns the index of the result for benchmark, metric and
// scheduler, or -1.
func (r *Report) find(benchmark, metric, scheduler string) int {
	return slices.IndexFunc(r.Results, func(res Result) bool {
		return res.Benchmark == benchmark && res.Metric.Name == metric && res.Scheduler == scheduler
	})
}

// Add records the samples of one run of benchmark under scheduler,
// typically what Benchmark.Parse returned, appending each value to its
// Result. A scheduler not yet in Schedulers is appended to it. Add
// refuses, leaving the report unchanged, empty names, non-finite values,
// a metric without a direction and one whose unit or direction differs
// from the metric of the same name already recorded for benchmark.
func (r *Report) Add(benchmark, scheduler string, samples ...Sample) error {
	if benchmark == "" || scheduler == "" {
		return fmt.Errorf("bench: add: %w: empty benchmark or scheduler name", ErrInvalid)
	}
	for _, s := range samples {
		if err := r.checkSample(benchmark, scheduler, s); err != nil {
			return err
		}
	}
	if !slices.Contains(r.Schedulers, scheduler) {
		r.Schedulers = append(r.Schedulers, scheduler)
	}
	for _, s := range samples {
		i := r.find(benchmark, s.Metric.Name, scheduler)
		if i < 0 {
			r.Results = append(r.Results, Result{Benchmark: benchmark, Metric: s.Metric, Scheduler: scheduler})
			i = len(r.Results) - 1
		}
		r.Results[i].Values = append(r.Results[i].Values, s.Value)
	}
	return nil
}

func (r *Report) checkSample(benchmark, scheduler string, s Sample) error {
	m := s.Metric
	where := fmt.Sprintf("%s %s under %s", benchmark, m.Name, scheduler)
	switch {
	case m.Name == "":
		return fmt.Errorf("bench: add %s: %w: a metric has no name", benchmark, ErrInvalid)
	case m.Better != LowerIsBetter && m.Better != HigherIsBetter:
		return fmt.Errorf("bench: add %s: %w: metric direction %d: want LowerIsBetter or HigherIsBetter", where, ErrInvalid, m.Better)
	case math.IsNaN(s.Value) || math.IsInf(s.Value, 0):
		return fmt.Errorf("bench: add %s: %w: value %v is not finite", where, ErrInvalid, s.Value)
	}
	for _, res := range r.Results {
		if res.Benchmark == benchmark && res.Metric.Name == m.Name && res.Metric != m {
			return fmt.Errorf("bench: add %s: %w: metric %s %v, but earlier %s %v", where, ErrInvalid,
				m, m.Better, res.Metric, res.Metric.Better)
		}
	}
	return nil
}

// Compute orders the results, adds an empty Result for each benchmark
// and metric a scheduler has no values for (shown as "no data"), and sets
// every Summary and Ratio; then it checks and orders the profiles.
// Default is moved to the front of Schedulers, or inserted there. It is
// idempotent: the bootstrap's fixed seed makes the statistics depend on
// the values alone. It fails, leaving the report unchanged, when Level
// is outside (0, 1), the results are inconsistent (a metric whose unit
// or direction changes) or a profile is (see Profile).
func (r *Report) Compute() error {
	level := r.level()
	if !(level > 0 && level < 1) {
		return fmt.Errorf("bench: %w: confidence level %v: want a value in (0, 1), as 0.95", ErrInvalid, r.Level)
	}
	scheds := []string{Default}
	for _, s := range r.Schedulers {
		if !slices.Contains(scheds, s) {
			scheds = append(scheds, s)
		}
	}
	type key struct{ bench, metric string }
	var keys []key
	metrics := map[key]Metric{}
	for _, res := range r.Results {
		k := key{res.Benchmark, res.Metric.Name}
		if m, ok := metrics[k]; ok {
			if m != res.Metric {
				return fmt.Errorf("bench: %w: %s %s is both %v %v and %v %v", ErrInvalid,
					k.bench, k.metric, m, m.Better, res.Metric, res.Metric.Better)
			}
			continue
		}
		metrics[k] = res.Metric
		keys = append(keys, k)
	}
	for _, res := range r.Results {
		if !slices.Contains(scheds, res.Scheduler) {
			scheds = append(scheds, res.Scheduler)
		}
	}

	results := make([]Result, 0, len(keys)*len(scheds))
	for _, k := range keys {
		var base []float64
		for _, s := range scheds {
			res := Result{Benchmark: k.bench, Metric: metrics[k], Scheduler: s, Values: []float64{}}
			// Values of duplicate results (possible in a file edited
			// by hand) are merged.
			for _, old := range r.Results {
				if old.Benchmark == k.bench && old.Metric.Name == k.metric && old.Scheduler == s {
					res.Values = append(res.Values, old.Values...)
				}
			}
			res.Summary = Summarize(res.Values, level)
			if s == Default {
				base = res.Values
			} else {
				ratio := Ratio(res.Values, base, level)
				res.Ratio = &ratio
			}
			results = append(results, res)
		}
	}
	profiles, err := sortedProfiles(r.Profiles, results, scheds)
	if err != nil {
		return err
	}
	r.Version = FormatVersion
	r.Level = level
	r.Schedulers = scheds
	r.Results = results
	r.Profiles = profiles
	return nil
}

// WriteJSON computes the report (Compute) and writes it as indented
// JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	if err := r.Compute(); err != nil {
		return err
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("bench: write report: %w", err)
	}
	return nil
}

// ReadJSON reads a report WriteJSON wrote and recomputes its statistics
// from the values.
func ReadJSON(rd io.Reader) (*Report, error) {
	dec := json.NewDecoder(rd)
	var r Report
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("bench: read report: %w", err)
	}
	if r.Version != FormatVersion {
		return nil, fmt.Errorf("bench: read report: %w: format version %d: want %d", ErrInvalid, r.Version, FormatVersion)
	}
	for _, res := range r.Results {
		for _, s := range res.Values {
			if err := r.checkSample(res.Benchmark, res.Scheduler, Sample{Metric: res.Metric, Value: s}); err != nil {
				return nil, fmt.Errorf("bench: read report: %w", err)
			}
		}
		if res.Benchmark == "" || res.Scheduler == "" {
			return nil, fmt.Errorf("bench: read report: %w: a result without benchmark or scheduler name", ErrInvalid)
		}
	}
	if err := r.Compute(); err != nil {
		return nil, fmt.Errorf("bench: read report: %w", err)
	}
	return &r, nil
}

// WriteTable computes the report (Compute) and writes it as text: a
// header, then per benchmark and metric an aligned table of each
// scheduler's runs, median and its interval, and ratio to the default
// scheduler with its interval, marked "better" or "worse" when the
// interval excludes 1. A scheduler without values reads "no data". An
// interval marked "*" is the range of too few runs for the level. When
// the report has Profiles, a table per benchmark follows: each
// scheduler's programs by decreasing time, with their calls, time per
// call, time and share of the scheduler's BPF time per run.
func (r *Report) WriteTable(w io.Writer) error {
	if err := r.Compute(); err != nil {
		return err
	}
	pct := strconv.FormatFloat(100*r.Level, 'f', -1, 64) + "%"
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "%s\n", r.title())
	fmt.Fprintf(&buf, "medians with %s intervals; ratio = scheduler/default median, %s bootstrap interval;\n", pct, pct)
	fmt.Fprintf(&buf, "better/worse: the ratio's interval excludes 1\n")
	few := false
	for i := 0; i < len(r.Results); {
		j := i
		for j < len(r.Results) && r.Results[j].Benchmark == r.Results[i].Benchmark &&
			r.Results[j].Metric.Name == r.Results[i].Metric.Name {
			j++
		}
		few = r.writeMetric(&buf, r.Results[i:j], pct) || few
		i = j
	}
	if len(r.Results) == 0 {
		fmt.Fprintf(&buf, "\nno results\n")
	}
	if few {
		fmt.Fprintf(&buf, "\n* too few runs for a %s interval: the range of the runs, and no better/worse\n", pct)
	}
	r.writeProfiles(&buf)
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("bench: write table: %w", err)
	}
	return nil
}

// title describes the session in one line.
func (r *Report) title() string {
	kernel := r.Kernel
	if kernel == "" {
		kernel = "unknown"
	}
	return fmt.Sprintf("kernel %s, %d vCPUs, %d repetitions", kernel, r.VCPUs, r.Repetitions)
}

// writeMetric writes the table of one benchmark and metric, whose
// results are rs, and reports whether an interval was marked "*".
func (r *Report) writeMetric(buf *bytes.Buffer, rs []Result, pct string) (few bool) {
	m := rs[0].Metric
	fmt.Fprintf(buf, "\n%s %s, %v\n", rs[0].Benchmark, m, m.Better)

	var vals, ratios []float64
	for _, res := range rs {
		if res.Summary.N > 0 {
			vals = append(vals, res.Summary.Median, res.Summary.Lo, res.Summary.Hi)
		}
		if res.Ratio != nil && res.Ratio.Valid {
			ratios = append(ratios, res.Ratio.Ratio, res.Ratio.Lo, res.Ratio.Hi)
		}
	}
	vf, rf := valueFormat(vals), ratioFormat(ratios)

	var tb bytes.Buffer
	tw := tabwriter.NewWriter(&tb, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "scheduler\truns\tmedian\t%s CI\tratio\t%s CI\t\n", pct, pct)
	for _, res := range rs {
		s := res.Summary
		if s.N == 0 {
			fmt.Fprintf(tw, "%s\t0\tno data\t\t\t\t\n", res.Scheduler)
			continue
		}
		star := ""
		if s.TooFew {
			star, few = "*", true
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s%s\t", res.Scheduler, s.N, vf(s.Median), interval(s.Lo, s.Hi, vf), star)
		switch q := res.Ratio; {
		case q == nil:
			fmt.Fprintf(tw, "\t\t\n")
		case !q.Valid:
			fmt.Fprintf(tw, "n/a\t\t\n")
		default:
			star := ""
			if q.TooFew {
				star, few = "*", true
			}
			fmt.Fprintf(tw, "%s\t%s%s\t%s\n", rf(q.Ratio), interval(q.Lo, q.Hi, rf), star, mark(*q, m.Better))
		}
	}
	tw.Flush()
	writeTrimmed(buf, tb.Bytes())
	return few
}

// writeTrimmed writes the lines of table, a tabwriter's output, to buf
// without their trailing spaces.
func writeTrimmed(buf *bytes.Buffer, table []byte) {
	for line := range strings.Lines(string(table)) {
		buf.WriteString(strings.TrimRight(line, " \n"))
		buf.WriteByte('\n')
	}
}

// mark says whether a ratio is significantly better or worse than 1.
func mark(q RatioSummary, better Direction) string {
	side := q.Excludes()
	switch {
	case side == 0:
		return ""
	case (side < 0) == (better == LowerIsBetter):
		return "better"
	}
	return "worse"
}

// valueFormat returns a formatter for the values of one metric that
// shows four significant digits of the largest of vals, as a plain
// decimal unless it is 1e9 or more, or below 0.001.
func valueFormat(vals []float64) func(float64) string {
	big := 0.0
	for _, v := range vals {
		big = max(big, math.Abs(v))
	}
	switch {
	case big == 0:
		return fixed(0)
	case big >= 1e9 || big < 1e-3:
		return general(4)
	}
	return fixed(min(6, max(0, 3-int(math.Floor(math.Log10(big))))))
}

// ratioFormat returns a formatter for the ratios of one metric that shows
// at least two decimals and two significant digits of the smallest
// positive ratio, as a plain decimal unless a ratio is 1e6 or more, or
// below 0.0001.
func ratioFormat(ratios []float64) func(float64) string {
	small, big := math.Inf(1), 0.0
	for _, v := range ratios {
		if v > 0 {
			small = min(small, v)
		}
		big = max(big, math.Abs(v))
	}
	switch {
	case math.IsInf(small, 1):
		return fixed(2)
	case big >= 1e6 || small < 1e-4:
		return general(3)
	}
	return fixed(min(6, max(2, 1-int(math.Floor(math.Log10(small))))))
}

func fixed(decimals int) func(float64) string {
	return func(v float64) string { return strconv.FormatFloat(v, 'f', decimals, 64) }
}

func general(digits int) func(float64) string {
	return func(v float64) string { return strconv.FormatFloat(v, 'g', digits, 64) }
}

func interval(lo, hi float64, format func(float64) string) string {
	return "[" + format(lo) + ", " + format(hi) + "]"
}
