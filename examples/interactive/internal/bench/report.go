package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Scheduler names in results.
const (
	schedDefault     = "default"
	schedInteractive = "interactive"
)

// Summary is what the bench measured, and the JSON line -json prints.
type Summary struct {
	// Kernel is the running kernel's release (uname -r), CPUs the
	// number of CPUs the bench may use.
	Kernel string `json:"kernel"`
	CPUs   int    `json:"cpus"`
	Params Params `json:"params"`
	// CPUController is set when the cpu controller was enabled for the
	// bench's cgroups (it should not be: see cgroups.cpuController).
	CPUController bool `json:"cpu_controller"`
	// KernelLatencyError says why there are no kernel latency figures.
	KernelLatencyError string `json:"kernel_latency_error,omitempty"`
	Runs               []*Run `json:"runs"`
	// Median holds each scheduler's median over the runs of each metric
	// (see metrics), by scheduler and metric key.
	Median map[string]map[string]float64 `json:"median"`
	// Ratio is interactive/default of the medians, by metric key; only
	// with -scheduler.
	Ratio   map[string]float64 `json:"ratio,omitempty"`
	Targets []TargetResult     `json:"targets,omitempty"`
}

// Params are the bench's settings.
type Params struct {
	Scheduler  string        `json:"scheduler,omitempty"`
	Config     string        `json:"config,omitempty"` // the scheduler's class config
	Runs       int           `json:"runs"`
	Duration   time.Duration `json:"duration_ns"`
	Requesters int           `json:"requesters"`
	Hogs       int           `json:"hogs"`
	Workers    int           `json:"workers"`
	Period     time.Duration `json:"period_ns"`
	Work       time.Duration `json:"work_ns"`
	Warmup     time.Duration `json:"warmup_ns"`
}

// Run is one run: each scheduler's phases, in Order.
type Run struct {
	Index       int          `json:"index"` // from 1
	Order       []string     `json:"order"`
	Default     *SchedResult `json:"default"`
	Interactive *SchedResult `json:"interactive,omitempty"`
}

// SchedResult is what one scheduler's phases measured in one run.
type SchedResult struct {
	Scheduler string `json:"scheduler"`
	// Attached: the interactive binary attached (state enabled, ops
	// interactive); Detached: it exited 0 on SIGTERM and the state went
	// back to disabled. AttachTime and DetachTime are how long each took.
	Attached   bool          `json:"attached,omitempty"`
	Detached   bool          `json:"detached,omitempty"`
	AttachTime time.Duration `json:"attach_ns,omitempty"`
	// Classes is the scheduler's per-class counters from its last stats
	// line (the preempt component's stats), since it attached.
	Classes    string        `json:"classes,omitempty"`
	DetachTime time.Duration `json:"detach_ns,omitempty"`
	Mixed      *Mixed        `json:"mixed"`
	Throughput *Throughput   `json:"throughput"`
}

// Mixed is the result of the mixed phase: requesters against hogs.
type Mixed struct {
	Requesters int           `json:"requesters"`
	Window     time.Duration `json:"window_ns"`
	Requests   int64         `json:"requests"`
	Expected   int64         `json:"expected"`
	// The requests' wakeup latencies: from the target time of the
	// absolute clock_nanosleep to the thread reading the clock after it.
	P50 time.Duration `json:"p50_ns"`
	P90 time.Duration `json:"p90_ns"`
	P99 time.Duration `json:"p99_ns"`
	Max time.Duration `json:"max_ns"`
	// Kernel is the kernel's view of the requester threads, nil when package
	// latency is unavailable (Summary.KernelLatencyError says why).
	Kernel         *KernelLatency `json:"kernel,omitempty"`
	Hogs           int            `json:"hogs"`
	HogUnits       int64          `json:"hog_units"`
	HogUnitsPerSec float64        `json:"hog_units_per_s"`
}

// KernelLatency is the requester threads' waits for a CPU in the mixed
// phase's window as package latency counted them at the scheduler's
// tracepoints: from a wakeup, or from a preemption, to running. The
// threads are alone in the threaded cgroup lat/req, a child of lat; the
// requester process's other threads (the Go runtime's) stay in lat and
// are left out.
type KernelLatency struct {
	Wakeups     uint64        `json:"wakeups"`
	Preemptions uint64        `json:"preemptions"`
	P50         time.Duration `json:"p50_ns"`
	P99         time.Duration `json:"p99_ns"`
	// Total is the sum of the waits, split by what occupied the waiting
	// thread's CPU meanwhile: a task of another cgroup (a hog, say), a
	// task of lat/req (another requester), or nothing (the CPU idled, or
	// was about to pick the thread). Long idle waits point at a wakeup
	// that did not reach an idle CPU; long other-cgroup waits at a
	// preemption that did not happen.
	Total           time.Duration `json:"total_ns"`
	OtherCgroupWait time.Duration `json:"other_cgroup_wait_ns"`
	SameCgroupWait  time.Duration `json:"same_cgroup_wait_ns"`
	IdleWait        time.Duration `json:"idle_wait_ns"`
}

// Throughput is the result of the throughput phase.
type Throughput struct {
	Workers     int     `json:"workers"`
	Units       int64   `json:"units"`
	UnitsPerSec float64 `json:"units_per_s"`
}

// TargetResult is one of the targets on a ratio
// interactive/default of medians.
type TargetResult struct {
	Metric string  `json:"metric"`
	Op     string  `json:"op"` // "<=" or ">="
	Bound  float64 `json:"bound"`
	Ratio  float64 `json:"ratio"`
	Met    bool    `json:"met"`
}

// metric is one figure compared between the schedulers.
type metric struct {
	key, label string
	// unit is "us" for latencies (printed as µs), "" for counts and
	// rates.
	unit  string
	value func(*SchedResult) (float64, bool)
	// op and bound, when op is set, are the target on the ratio
	// interactive/default.
	op    string
	bound float64
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// metrics are the compared figures, in report order. Lower latencies and
// higher throughputs are better.
var metrics = []metric{
	{key: "requests", label: "requests done",
		value: func(r *SchedResult) (float64, bool) { return float64(r.Mixed.Requests), true }},
	{key: "lat_p50_us", label: "lat p50 (user)", unit: "us",
		value: func(r *SchedResult) (float64, bool) { return micros(r.Mixed.P50), true }},
	{key: "lat_p90_us", label: "lat p90 (user)", unit: "us",
		value: func(r *SchedResult) (float64, bool) { return micros(r.Mixed.P90), true }},
	{key: "lat_p99_us", label: "lat p99 (user)", unit: "us", op: "<=", bound: 0.8,
		value: func(r *SchedResult) (float64, bool) { return micros(r.Mixed.P99), true }},
	{key: "lat_max_us", label: "lat max (user)", unit: "us",
		value: func(r *SchedResult) (float64, bool) { return micros(r.Mixed.Max), true }},
	{key: "kernel_p50_us", label: "lat p50 (kernel)", unit: "us",
		value: func(r *SchedResult) (float64, bool) {
			if r.Mixed.Kernel == nil {
				return 0, false
			}
			return micros(r.Mixed.Kernel.P50), true
		}},
	{key: "kernel_p99_us", label: "lat p99 (kernel)", unit: "us", op: "<=", bound: 0.8,
		value: func(r *SchedResult) (float64, bool) {
			if r.Mixed.Kernel == nil {
				return 0, false
			}
			return micros(r.Mixed.Kernel.P99), true
		}},
	{key: "hog_units_per_s", label: "hog units/s (mixed)",
		value: func(r *SchedResult) (float64, bool) { return r.Mixed.HogUnitsPerSec, true }},
	{key: "worker_units_per_s", label: "worker units/s (throughput)", op: ">=", bound: 1.0,
		value: func(r *SchedResult) (float64, bool) { return r.Throughput.UnitsPerSec, true }},
}

// results returns the run's results by scheduler.
func (r *Run) results() map[string]*SchedResult {
	m := map[string]*SchedResult{schedDefault: r.Default}
	if r.Interactive != nil {
		m[schedInteractive] = r.Interactive
	}
	return m
}

// summarize fills in the medians over the runs, their ratios and the
// targets.
func (s *Summary) summarize() {
	s.Median = map[string]map[string]float64{}
	scheds := []string{schedDefault}
	if s.Params.Scheduler != "" {
		scheds = append(scheds, schedInteractive)
	}
	for _, name := range scheds {
		med := map[string]float64{}
		for _, m := range metrics {
			var v []float64
			for _, r := range s.Runs {
				if res := r.results()[name]; res != nil {
					if x, ok := m.value(res); ok {
						v = append(v, x)
					}
				}
			}
			if len(v) > 0 {
				med[m.key] = median(v)
			}
		}
		s.Median[name] = med
	}
	if s.Params.Scheduler == "" {
		return
	}
	s.Ratio = map[string]float64{}
	for _, m := range metrics {
		d, dok := s.Median[schedDefault][m.key]
		i, iok := s.Median[schedInteractive][m.key]
		if !dok || !iok {
			continue
		}
		q, ok := ratio(i, d)
		if !ok {
			continue
		}
		s.Ratio[m.key] = q
		if m.op != "" {
			s.Targets = append(s.Targets, TargetResult{Metric: m.key, Op: m.op, Bound: m.bound, Ratio: q, Met: m.met(q)})
		}
	}
}

// met reports whether ratio q meets m's target.
func (m metric) met(q float64) bool {
	if m.op == "<=" {
		return q <= m.bound
	}
	return q >= m.bound
}

// format formats v in m's unit.
func (m metric) format(v float64) string {
	switch {
	case m.unit != "us":
		return fmt.Sprintf("%.0f", v)
	case v >= 100:
		return fmt.Sprintf("%.0fµs", v)
	default:
		return fmt.Sprintf("%.1fµs", v)
	}
}

// target formats m's target and whether ratio q meets it.
func (m metric) target(q float64) string {
	if m.op == "" {
		return ""
	}
	op := map[string]string{"<=": "≤", ">=": "≥"}[m.op]
	verdict := "missed"
	if m.met(q) {
		verdict = "met"
	}
	return fmt.Sprintf("target %s %.2fx: %s", op, m.bound, verdict)
}

// printRun prints one run's table: each metric under each scheduler, and
// their ratio.
func printRun(w io.Writer, r *Run) {
	fmt.Fprintf(w, "run %d (%s first):\n", r.Index, r.Order[0])
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := []string{"", schedDefault}
	if r.Interactive != nil {
		head = append(head, schedInteractive, "ratio")
	}
	row(tw, head...)
	for _, m := range metrics {
		cells := []string{m.label, cell(m, r.Default)}
		if r.Interactive != nil {
			cells = append(cells, cell(m, r.Interactive), ratioCell(m, r.Default, r.Interactive))
		}
		row(tw, cells...)
	}
	cells := []string{"requests expected", fmt.Sprint(r.Default.Mixed.Expected)}
	if r.Interactive != nil {
		cells = append(cells, fmt.Sprint(r.Interactive.Mixed.Expected))
	}
	row(tw, cells...)
	tw.Flush()
	for _, sr := range []*SchedResult{r.Default, r.Interactive} {
		if sr != nil && sr.Mixed.Kernel != nil {
			k := sr.Mixed.Kernel
			fmt.Fprintf(w, "  kernel: requester threads under %s waited %d times after a wakeup, %d after a preemption; %v in all: %v behind other cgroups, %v behind each other, %v idle\n",
				sr.Scheduler, k.Wakeups, k.Preemptions, roundMs(k.Total), roundMs(k.OtherCgroupWait), roundMs(k.SameCgroupWait), roundMs(k.IdleWait))
		}
	}
	if r.Interactive != nil {
		fmt.Fprintf(w, "  %s attached in %v, detached in %v\n", schedInteractive,
			r.Interactive.AttachTime.Round(time.Millisecond), r.Interactive.DetachTime.Round(time.Millisecond))
		for _, c := range strings.Split(r.Interactive.Classes, " | ") {
			if c != "" {
				fmt.Fprintf(w, "  %s class %s\n", schedInteractive, c)
			}
		}
	}
	fmt.Fprintln(w)
}

// roundMs rounds d for a report: to 0.1ms.
func roundMs(d time.Duration) time.Duration { return d.Round(100 * time.Microsecond) }

// row writes one line of cells to tw, without trailing empty cells or a
// trailing separator, so that no line ends in padding.
func row(tw io.Writer, cells ...string) {
	for len(cells) > 0 && cells[len(cells)-1] == "" {
		cells = cells[:len(cells)-1]
	}
	fmt.Fprintln(tw, strings.Join(cells, "\t"))
}

func cell(m metric, r *SchedResult) string {
	v, ok := m.value(r)
	if !ok {
		return "n/a"
	}
	return m.format(v)
}

func ratioCell(m metric, def, inter *SchedResult) string {
	d, dok := m.value(def)
	i, iok := m.value(inter)
	q, ok := ratio(i, d)
	if !dok || !iok || !ok {
		return "n/a"
	}
	return fmt.Sprintf("%.2fx", q)
}

// printSummary prints the medians over the runs, their ratios and the
// targets.
func printSummary(w io.Writer, s *Summary) {
	fmt.Fprintf(w, "medians over %d runs (kernel %s, %d CPUs, %d requesters every %v doing %v, %d hogs, %d workers, %v per phase):\n",
		len(s.Runs), s.Kernel, s.CPUs, s.Params.Requesters, s.Params.Period, s.Params.Work,
		s.Params.Hogs, s.Params.Workers, s.Params.Duration)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	inter := s.Params.Scheduler != ""
	head := []string{"", schedDefault}
	if inter {
		head = append(head, schedInteractive, "ratio")
	}
	row(tw, head...)
	for _, m := range metrics {
		cells := []string{m.label, medianCell(m, s.Median[schedDefault])}
		if inter {
			q, ok := s.Ratio[m.key]
			rc, tc := "n/a", ""
			if ok {
				rc, tc = fmt.Sprintf("%.2fx", q), m.target(q)
			}
			cells = append(cells, medianCell(m, s.Median[schedInteractive]), rc, tc)
		}
		row(tw, cells...)
	}
	tw.Flush()
	if s.KernelLatencyError != "" {
		fmt.Fprintf(w, "kernel latency figures unavailable: %s\n", s.KernelLatencyError)
	}
	if s.CPUController {
		fmt.Fprintln(w, "warning: the cpu controller is enabled for the bench's cgroups: the default scheduler shared CPU time between them by weight")
	}
	if inter {
		var met, missed []string
		for _, t := range s.Targets {
			if t.Met {
				met = append(met, t.Metric)
			} else {
				missed = append(missed, t.Metric)
			}
		}
		fmt.Fprintf(w, "targets (interactive/default: p99 ≤ 0.80x, throughput ≥ 1.00x): met %s; missed %s\n",
			listOrNone(met), listOrNone(missed))
	}
}

func medianCell(m metric, med map[string]float64) string {
	v, ok := med[m.key]
	if !ok {
		return "n/a"
	}
	return m.format(v)
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
