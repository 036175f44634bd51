package bench

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ErrParse is wrapped by every error of [Benchmark.Parse]: the tool's
// output lacks a line the parser needs, or has one it cannot read.
var ErrParse = errors.New("unparsable tool output")

// Direction says which way a metric improves.
type Direction int8

const (
	// LowerIsBetter marks times, latencies and costs.
	LowerIsBetter Direction = iota + 1
	// HigherIsBetter marks throughputs.
	HigherIsBetter
)

// String returns "lower is better" or "higher is better".
func (d Direction) String() string {
	switch d {
	case LowerIsBetter:
		return "lower is better"
	case HigherIsBetter:
		return "higher is better"
	}
	return fmt.Sprintf("Direction(%d)", int8(d))
}

// MarshalText encodes d as "lower" or "higher", its form in the JSON
// file.
func (d Direction) MarshalText() ([]byte, error) {
	switch d {
	case LowerIsBetter:
		return []byte("lower"), nil
	case HigherIsBetter:
		return []byte("higher"), nil
	}
	return nil, fmt.Errorf("bench: %w: direction %d: want LowerIsBetter or HigherIsBetter", ErrInvalid, int8(d))
}

// UnmarshalText decodes "lower" or "higher".
func (d *Direction) UnmarshalText(b []byte) error {
	switch string(b) {
	case "lower":
		*d = LowerIsBetter
	case "higher":
		*d = HigherIsBetter
	default:
		return fmt.Errorf("bench: %w: direction %q: want \"lower\" or \"higher\"", ErrInvalid, b)
	}
	return nil
}

// Metric is one number a benchmark run yields.
type Metric struct {
	Name   string    `json:"name"`   // short identifier: "time", "avg_latency"
	Unit   string    `json:"unit"`   // "s", "µs", "ns", "ops/s"
	Better Direction `json:"better"` // which way is better
}

// String returns the name and the unit, as in "time (s)".
func (m Metric) String() string {
	if m.Unit == "" {
		return m.Name
	}
	return m.Name + " (" + m.Unit + ")"
}

// Sample is the value of one metric in one run of a benchmark.
type Sample struct {
	Metric Metric  `json:"metric"`
	Value  float64 `json:"value"`
}

// The metrics of the standard benchmarks.
var (
	// Hackbench: wall time of the whole run, from its "Time:" line.
	MetricTime = Metric{Name: "time", Unit: "s", Better: LowerIsBetter}
	// Cyclictest: the mean over the measuring threads of each thread's
	// average wakeup latency (its "Avg:" field; the threads run the same
	// interval, so they make nearly the same number of cycles).
	MetricAvgLatency = Metric{Name: "avg_latency", Unit: "µs", Better: LowerIsBetter}
	// Cyclictest: the largest wakeup latency of any thread ("Max:").
	MetricMaxLatency = Metric{Name: "max_latency", Unit: "µs", Better: LowerIsBetter}
	// stress-ng --switch: nanoseconds per context switch, the geometric
	// mean over the stressor instances that stress-ng prints among its
	// "miscellaneous metrics".
	MetricSwitchNs = Metric{Name: "switch_ns", Unit: "ns", Better: LowerIsBetter}
	// stress-ng --switch: bogo operations per second of wall-clock time
	// (the "bogo ops/s (real time)" column), summed over instances.
	MetricBogoOps = Metric{Name: "bogo_ops", Unit: "ops/s", Better: HigherIsBetter}
)

// Options are the knobs of the standard benchmarks' command lines. A nil
// *Options, and any field left zero (or negative), means the default.
type Options struct {
	// CPUs is the number of vCPUs of the guest: cyclictest's measuring
	// threads (-t), stress-ng's switch stressors (--switch, each a pair
	// of processes) and CPU hogs (--cpu). Default 1; the runner should
	// set it.
	CPUs int
	// Duration is how long cyclictest (-D) and stress-ng (--timeout)
	// run, rounded up to whole seconds. Default DefaultDuration.
	// Hackbench runs a fixed amount of work instead.
	Duration time.Duration
	// Groups is hackbench's -g: groups of 20 senders and 20 receivers.
	// Default 2.
	Groups int
	// Loops is hackbench's -l: messages each sender sends to each
	// receiver. Default 200.
	Loops int
	// HogMethod is the stress-ng --cpu-method of the CPU hogs (a fixed
	// one: the default "all" cycles through methods of unequal cost).
	// Default "matrixprod".
	HogMethod string
}

// DefaultDuration is the run time of cyclictest and stress-ng --switch
// when Options.Duration is zero.
const DefaultDuration = 5 * time.Second

// hogMargin is how long the hogs' own --timeout outlives the benchmark
// they load: a safety net for a runner that dies; the runner stops them.
const hogMargin = 30 * time.Second

func (o *Options) cpus() int {
	if o == nil || o.CPUs <= 0 {
		return 1
	}
	return o.CPUs
}

// seconds is the duration in whole seconds, rounded up, at least 1.
func (o *Options) seconds() int {
	d := DefaultDuration
	if o != nil && o.Duration > 0 {
		d = o.Duration
	}
	return max(1, int(math.Ceil(d.Seconds())))
}

func (o *Options) groups() int {
	if o == nil || o.Groups <= 0 {
		return 2
	}
	return o.Groups
}

func (o *Options) loops() int {
	if o == nil || o.Loops <= 0 {
		return 200
	}
	return o.Loops
}

func (o *Options) hogMethod() string {
	if o == nil || o.HogMethod == "" {
		return "matrixprod"
	}
	return o.HogMethod
}

// Benchmark describes one standard benchmark: which tool runs it, its
// command line, and how to read the tool's output. The standard ones are
// Hackbench, Cyclictest and Switch.
type Benchmark struct {
	// Name identifies the benchmark in reports: "hackbench",
	// "cyclictest", "switch".
	Name string
	// Tool is the executable's name ("hackbench", "cyclictest",
	// "stress-ng"); Args[0] is the same.
	Tool string
	// Package is the Debian package that ships Tool.
	Package string
	// Metrics lists what Parse returns, in order.
	Metrics []Metric
	// Hogs says the runner must keep every vCPU busy with CPU hogs
	// (the command line HogArgs gives) while the benchmark runs, and
	// stop them after it: cyclictest measures wakeup latency against
	// them.
	Hogs bool

	args  func(o *Options) []string
	parse func(stdout, stderr []byte) ([]Sample, error)
}

// The standard benchmarks. All three run their tasks in the normal
// scheduling class (SCHED_OTHER), the one a sched_ext scheduler takes
// over: no real-time priorities (cyclictest has no -p, hackbench no -F).
var (
	// Hackbench: "hackbench -g 2 -l 200": groups of tasks passing
	// messages over socket pairs; the time to pass them all.
	Hackbench = Benchmark{
		Name:    "hackbench",
		Tool:    "hackbench",
		Package: "rt-tests",
		Metrics: []Metric{MetricTime},
		args: func(o *Options) []string {
			return []string{"hackbench", "-g", strconv.Itoa(o.groups()), "-l", strconv.Itoa(o.loops())}
		},
		parse: parseHackbench,
	}
	// Cyclictest: "cyclictest -q -m -t N -i 1000 -d 0 -D <secs>": N
	// threads wake every millisecond (-d 0: all the same interval) and
	// measure how late they run, while N CPU hogs keep the vCPUs busy.
	Cyclictest = Benchmark{
		Name:    "cyclictest",
		Tool:    "cyclictest",
		Package: "rt-tests",
		Metrics: []Metric{MetricAvgLatency, MetricMaxLatency},
		Hogs:    true,
		args: func(o *Options) []string {
			return []string{"cyclictest", "-q", "-m", "-t", strconv.Itoa(o.cpus()),
				"-i", "1000", "-d", "0", "-D", strconv.Itoa(o.seconds())}
		},
		parse: parseCyclictest,
	}
	// Switch: "stress-ng --switch N --switch-method pipe --timeout
	// <secs>s --metrics-brief": N pairs of processes pass a token
	// through a pipe, forcing a context switch each time. The method is
	// pinned because stress-ng's default has changed between versions.
	// stress-ng writes its report to stderr.
	Switch = Benchmark{
		Name:    "switch",
		Tool:    "stress-ng",
		Package: "stress-ng",
		Metrics: []Metric{MetricSwitchNs, MetricBogoOps},
		args: func(o *Options) []string {
			return []string{"stress-ng", "--switch", strconv.Itoa(o.cpus()), "--switch-method", "pipe",
				"--timeout", strconv.Itoa(o.seconds()) + "s", "--metrics-brief"}
		},
		parse: parseSwitch,
	}
)

// Standard returns the standard benchmarks: Hackbench, Cyclictest and
// Switch.
func Standard() []Benchmark { return []Benchmark{Hackbench, Cyclictest, Switch} }

// Lookup returns the standard benchmark called name.
func Lookup(name string) (Benchmark, error) {
	var names []string
	for _, b := range Standard() {
		if b.Name == name {
			return b, nil
		}
		names = append(names, b.Name)
	}
	return Benchmark{}, fmt.Errorf("bench: %w: no benchmark %q: have %s", ErrInvalid, name, strings.Join(names, ", "))
}

// Args returns the benchmark's command line, the tool's name first. A nil
// o means the defaults.
func (b Benchmark) Args(o *Options) []string {
	if b.args == nil {
		return nil
	}
	return b.args(o)
}

// HogArgs returns the command line of the CPU hogs the runner starts
// before the benchmark and stops after it ("stress-ng --cpu N
// --cpu-method matrixprod --timeout <secs+30>s"), or nil when the
// benchmark runs without hogs. Their own timeout outlives the benchmark
// by 30 seconds, only so that hogs left by a runner that died end.
func (b Benchmark) HogArgs(o *Options) []string {
	if !b.Hogs {
		return nil
	}
	secs := o.seconds() + int(hogMargin/time.Second)
	return []string{"stress-ng", "--cpu", strconv.Itoa(o.cpus()), "--cpu-method", o.hogMethod(),
		"--timeout", strconv.Itoa(secs) + "s"}
}

// Parse reads one run's output, what the tool wrote to stdout and to
// stderr (either may hold everything, as when both went to one pipe), and
// returns one Sample per metric of b.Metrics, in that order. Every value
// is finite and non-negative. Errors wrap ErrParse, name the tool and
// quote the line at fault, or the last line of stderr when a needed line
// is missing.
func (b Benchmark) Parse(stdout, stderr []byte) ([]Sample, error) {
	if b.parse == nil {
		return nil, fmt.Errorf("bench: %s: %w: the benchmark has no parser", b.Name, ErrParse)
	}
	return b.parse(stdout, stderr)
}

// maxQuote bounds how much of a line an error quotes.
const maxQuote = 160

// quote quotes a line for an error message, cut at maxQuote bytes.
func quote(line string) string {
	if len(line) > maxQuote {
		return strconv.Quote(line[:maxQuote]) + "..."
	}
	return strconv.Quote(line)
}

// outputLines returns the lines of stdout then those of stderr, without
// line ends.
func outputLines(stdout, stderr []byte) []string {
	var lines []string
	for _, out := range [][]byte{stdout, stderr} {
		for line := range bytes.Lines(out) {
			lines = append(lines, strings.TrimRight(string(line), "\r\n"))
		}
	}
	return lines
}

// missing is the error for output without a line the parser needs; it
// quotes the last non-empty line of stderr, which usually says why.
func missing(tool, what string, stderr []byte) error {
	last := ""
	for line := range bytes.Lines(stderr) {
		if s := strings.TrimSpace(string(line)); s != "" {
			last = s
		}
	}
	if last != "" {
		return fmt.Errorf("bench: %s: %w: no %s; stderr ends with %s", tool, ErrParse, what, quote(last))
	}
	return fmt.Errorf("bench: %s: %w: no %s", tool, ErrParse, what)
}

// badLine is the error for a line the parser cannot read.
func badLine(tool, line, why string) error {
	return fmt.Errorf("bench: %s: %w: line %s: %s", tool, ErrParse, quote(line), why)
}

// decimal matches the numbers the tools print: digits, maybe a fraction.
var decimal = regexp.MustCompile(`^[0-9]+(?:\.[0-9]+)?$`)

// number parses a decimal the tools print; it refuses signs, exponents,
// "nan", "inf" and values too large for a float64.
func number(s string) (float64, bool) {
	if !decimal.MatchString(s) {
		return 0, false
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(v, 0) {
		return 0, false
	}
	return v, true
}

// parseHackbench reads the "Time: <seconds>" line.
func parseHackbench(stdout, stderr []byte) ([]Sample, error) {
	const tool = "hackbench"
	found := false
	var secs float64
	for _, line := range outputLines(stdout, stderr) {
		rest, ok := strings.CutPrefix(line, "Time:")
		if !ok {
			continue
		}
		if found {
			return nil, badLine(tool, line, "a second Time line: give the output of one run")
		}
		v, ok := number(strings.TrimSpace(rest))
		if !ok {
			return nil, badLine(tool, line, "want Time: <seconds>")
		}
		secs, found = v, true
	}
	if !found {
		return nil, missing(tool, `"Time:" line`, stderr)
	}
	return []Sample{{Metric: MetricTime, Value: secs}}, nil
}

// cyclicThread matches the summary line of one cyclictest thread, as
// printed with -q (values in µs):
//
//	T: 0 (21617) P: 0 I:1000 C:   1977 Min:      9 Act:   76 Avg:   78 Max:   12938
var cyclicThread = regexp.MustCompile(`^T:\s*([0-9]+)\s+\(\s*[0-9]+\)\s+P:\s*[0-9]+\s+I:\s*[0-9]+\s+C:\s*([0-9]+)\s+` +
	`Min:\s*([0-9.]+)\s+Act:\s*([0-9.]+)\s+Avg:\s*([0-9.]+)\s+Max:\s*([0-9.]+)(?:\s.*)?$`)

// parseCyclictest reads the "T:" line of each thread: avg_latency is the
// mean of their Avg, max_latency the largest Max.
func parseCyclictest(stdout, stderr []byte) ([]Sample, error) {
	const tool = "cyclictest"
	seen := map[string]bool{}
	var sum, worst float64
	for _, line := range outputLines(stdout, stderr) {
		if !strings.HasPrefix(line, "T:") {
			continue
		}
		m := cyclicThread.FindStringSubmatch(line)
		if m == nil {
			return nil, badLine(tool, line, "want T: <thread> (<tid>) P: <prio> I: <interval> C: <cycles> Min: Act: Avg: Max: <µs>")
		}
		thread, cycles := m[1], m[2]
		if seen[thread] {
			return nil, badLine(tool, line, "thread "+thread+" twice: give the output of one run")
		}
		seen[thread] = true
		if strings.Trim(cycles, "0") == "" {
			return nil, badLine(tool, line, "thread "+thread+" made no cycles, so it has no latency")
		}
		avg, ok1 := number(m[5])
		mx, ok2 := number(m[6])
		if !ok1 || !ok2 {
			return nil, badLine(tool, line, "Avg or Max is not a number")
		}
		sum += avg
		worst = max(worst, mx)
	}
	if len(seen) == 0 {
		return nil, missing(tool, `thread summary ("T:" line)`, stderr)
	}
	mean := sum / float64(len(seen))
	if math.IsInf(mean, 0) {
		return nil, fmt.Errorf("bench: %s: %w: the Avg values overflow", tool, ErrParse)
	}
	return []Sample{
		{Metric: MetricAvgLatency, Value: mean},
		{Metric: MetricMaxLatency, Value: worst},
	}, nil
}

// stressPrefix matches the prefix of every stress-ng report line,
// "stress-ng: metrc: [21690] ", and captures the rest.
var stressPrefix = regexp.MustCompile(`^stress-ng:\s*([a-z]+):\s*\[[0-9]+\]\s?(.*)$`)

// switchNs matches the miscellaneous metric line of the switch stressor,
// after the prefix:
//
//	switch             11077.02 nanosecs per context switch (pipe method) (geometic mean of 2 instances)
var switchNs = regexp.MustCompile(`^switch\s+(\S+)\s+nanosecs per context switch\b`)

// parseSwitch reads stress-ng's --metrics-brief report: the "switch" row
// of the metrics table (bogo ops/s, real time, is its fifth number) and
// the "nanosecs per context switch" line.
func parseSwitch(stdout, stderr []byte) ([]Sample, error) {
	const tool = "stress-ng"
	var ns, ops float64
	var haveNs, haveOps bool
	failure := ""
	for _, line := range outputLines(stdout, stderr) {
		m := stressPrefix.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		level, rest := m[1], strings.TrimSpace(m[2])
		if (level == "fail" || level == "error") && failure == "" {
			failure = line
		}
		if strings.HasPrefix(rest, "unsuccessful run") {
			if failure != "" {
				return nil, badLine(tool, line, "the run failed: "+quote(failure))
			}
			return nil, badLine(tool, line, "the run failed")
		}
		if sm := switchNs.FindStringSubmatch(rest); sm != nil {
			if haveNs {
				return nil, badLine(tool, line, "a second nanosecs line: give the output of one run")
			}
			v, ok := number(sm[1])
			if !ok {
				return nil, badLine(tool, line, "the nanosecs per context switch is not a number")
			}
			ns, haveNs = v, true
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 2 || f[0] != "switch" {
			continue
		}
		// The table row: stressor, bogo ops, real, usr, sys times,
		// bogo ops/s (real time), bogo ops/s (usr+sys time), and in
		// newer versions more columns after these.
		if _, ok := number(f[1]); !ok {
			continue
		}
		if haveOps {
			return nil, badLine(tool, line, "a second switch row: give the output of one run")
		}
		if len(f) < 7 {
			return nil, badLine(tool, line, "want switch <bogo ops> <real> <usr> <sys> <bogo ops/s real> <bogo ops/s usr+sys>")
		}
		v, ok := number(f[5])
		if !ok {
			return nil, badLine(tool, line, "bogo ops/s (real time) is not a number")
		}
		ops, haveOps = v, true
	}
	switch {
	case !haveOps && failure != "":
		return nil, badLine(tool, failure, "the run failed")
	case !haveOps:
		return nil, missing(tool, `"switch" row in the metrics (run with --metrics-brief)`, stderr)
	case !haveNs:
		return nil, missing(tool, `"nanosecs per context switch" line`, stderr)
	}
	return []Sample{
		{Metric: MetricSwitchNs, Value: ns},
		{Metric: MetricBogoOps, Value: ops},
	}, nil
}
