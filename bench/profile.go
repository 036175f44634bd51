package bench

import (
	"bytes"
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"text/tabwriter"

	"github.com/scxkit/scxkit/internal/opsprof"
)

// Profile is the BPF time of one program of a sched_ext scheduler (one
// of its callbacks, as ops.enqueue) over the runs of one benchmark under
// that scheduler: the kernel's BPF run-time statistics, summed over
// BenchmarkRuns runs. Run records one for every program of the
// scheduler and benchmark, with the same BenchmarkRuns, even for a
// program that never ran (Runs 0).
//
// Compute refuses a profile without names, of the Default scheduler or
// of a scheduler not in Schedulers, of a benchmark without results, a
// second one of the same program, benchmark and scheduler, BenchmarkRuns
// below 1, above the runs recorded in Results or different from that of
// the scheduler's other programs, time without runs, and times beyond
// 292 years.
type Profile struct {
	Benchmark string `json:"benchmark"`
	Scheduler string `json:"scheduler"`
	// Program is the name of the program's function, as
	// "responsive_enqueue".
	Program string `json:"program"`
	// Runs counts the program's runs (the callback's calls) over
	// BenchmarkRuns runs of the benchmark.
	Runs uint64 `json:"runs"`
	// Nanoseconds is the total time of those runs, on all CPUs.
	Nanoseconds uint64 `json:"nanoseconds"`
	// BenchmarkRuns is how many runs of the benchmark Runs and
	// Nanoseconds sum: divide by it for the figures of one run.
	BenchmarkRuns int `json:"benchmark_runs"`
}

// addProfile records what each of the programs of scheduler cost over
// one run of benchmark (opsprof.Sub of the statistics read before and
// after it), adding 1 to BenchmarkRuns of every program of scheduler
// for benchmark, those absent from programs too. Programs of the same
// name are summed. A scheduler not yet in Schedulers is appended to it.
// It refuses, leaving the report unchanged, empty names, the Default
// scheduler and an empty list of programs.
func (r *Report) addProfile(benchmark, scheduler string, programs []opsprof.Program) error {
	switch {
	case benchmark == "" || scheduler == "":
		return fmt.Errorf("bench: add profile: %w: empty benchmark or scheduler name", ErrInvalid)
	case scheduler == Default:
		return fmt.Errorf("bench: add profile of %s: %w: the %s scheduler runs no BPF program", benchmark, ErrInvalid, Default)
	case len(programs) == 0:
		return fmt.Errorf("bench: add profile of %s under %s: %w: no BPF program", benchmark, scheduler, ErrInvalid)
	}
	for _, p := range programs {
		if p.Name == "" {
			return fmt.Errorf("bench: add profile of %s under %s: %w: a program without a name (ID %d)", benchmark, scheduler, ErrInvalid, p.ID)
		}
	}
	if !slices.Contains(r.Schedulers, scheduler) {
		r.Schedulers = append(r.Schedulers, scheduler)
	}
	n := 0
	for i, p := range r.Profiles {
		if p.Benchmark == benchmark && p.Scheduler == scheduler {
			n = p.BenchmarkRuns
			r.Profiles[i].BenchmarkRuns++
		}
	}
	for _, p := range programs {
		i := slices.IndexFunc(r.Profiles, func(q Profile) bool {
			return q.Benchmark == benchmark && q.Scheduler == scheduler && q.Program == p.Name
		})
		if i < 0 {
			r.Profiles = append(r.Profiles, Profile{Benchmark: benchmark, Scheduler: scheduler, Program: p.Name, BenchmarkRuns: n + 1})
			i = len(r.Profiles) - 1
		}
		r.Profiles[i].Runs += p.Runs
		r.Profiles[i].Nanoseconds += uint64(p.Time.Nanoseconds())
	}
	return nil
}

// sortedProfiles checks profiles against results and schedulers (as
// Compute sets them) and returns them sorted: by the order of the
// benchmarks in results, of scheds, then by decreasing time and by name.
func sortedProfiles(profiles []Profile, results []Result, scheds []string) ([]Profile, error) {
	if len(profiles) == 0 {
		return profiles, nil
	}
	type pair struct{ bench, sched string }
	var benches []string
	recorded := map[pair]int{} // runs of a benchmark under a scheduler
	for _, res := range results {
		if !slices.Contains(benches, res.Benchmark) {
			benches = append(benches, res.Benchmark)
		}
		k := pair{res.Benchmark, res.Scheduler}
		recorded[k] = max(recorded[k], len(res.Values))
	}
	type key struct{ bench, sched, program string }
	seen := map[key]bool{}
	runs := map[pair]int{}
	for _, p := range profiles {
		where := fmt.Sprintf("profile of %s under %s, program %s", p.Benchmark, p.Scheduler, p.Program)
		k := pair{p.Benchmark, p.Scheduler}
		switch {
		case p.Benchmark == "" || p.Scheduler == "" || p.Program == "":
			return nil, fmt.Errorf("bench: %w: a profile without benchmark, scheduler or program name", ErrInvalid)
		case p.Scheduler == Default:
			return nil, fmt.Errorf("bench: %w: %s: the %s scheduler runs no BPF program", ErrInvalid, where, Default)
		case !slices.Contains(scheds, p.Scheduler):
			return nil, fmt.Errorf("bench: %w: %s: no scheduler %q in the report", ErrInvalid, where, p.Scheduler)
		case !slices.Contains(benches, p.Benchmark):
			return nil, fmt.Errorf("bench: %w: %s: no results of benchmark %q", ErrInvalid, where, p.Benchmark)
		case seen[key{p.Benchmark, p.Scheduler, p.Program}]:
			return nil, fmt.Errorf("bench: %w: %s: a second profile", ErrInvalid, where)
		case p.BenchmarkRuns < 1 || p.BenchmarkRuns > recorded[k]:
			return nil, fmt.Errorf("bench: %w: %s: benchmark_runs %d: want 1 to the %d runs recorded", ErrInvalid, where, p.BenchmarkRuns, recorded[k])
		case runs[k] != 0 && runs[k] != p.BenchmarkRuns:
			return nil, fmt.Errorf("bench: %w: %s: benchmark_runs %d, but %d for the scheduler's other programs", ErrInvalid, where, p.BenchmarkRuns, runs[k])
		case p.Runs == 0 && p.Nanoseconds > 0:
			return nil, fmt.Errorf("bench: %w: %s: %d ns in no run", ErrInvalid, where, p.Nanoseconds)
		case p.Nanoseconds > math.MaxInt64:
			return nil, fmt.Errorf("bench: %w: %s: %d ns is over 292 years", ErrInvalid, where, p.Nanoseconds)
		}
		seen[key{p.Benchmark, p.Scheduler, p.Program}] = true
		runs[k] = p.BenchmarkRuns
	}
	sorted := slices.Clone(profiles)
	slices.SortStableFunc(sorted, func(a, b Profile) int {
		return cmp.Or(
			cmp.Compare(slices.Index(benches, a.Benchmark), slices.Index(benches, b.Benchmark)),
			cmp.Compare(slices.Index(scheds, a.Scheduler), slices.Index(scheds, b.Scheduler)),
			cmp.Compare(b.Nanoseconds, a.Nanoseconds),
			cmp.Compare(a.Program, b.Program))
	})
	return sorted, nil
}

// writeProfiles writes a table of the profiles per benchmark, if there
// are any; r is computed, its profiles sorted.
func (r *Report) writeProfiles(buf *bytes.Buffer) {
	for i := 0; i < len(r.Profiles); {
		j := i
		for j < len(r.Profiles) && r.Profiles[j].Benchmark == r.Profiles[i].Benchmark {
			j++
		}
		writeBenchmarkProfiles(buf, r.Profiles[i:j])
		i = j
	}
	if len(r.Profiles) > 0 {
		fmt.Fprintf(buf, "\ncalls/run, ms/run: per run of the benchmark, on all CPUs; share: of the scheduler's BPF time.\n")
		fmt.Fprintf(buf, "BPF statistics were on: every call paid for two clock reads, in the figures above too.\n")
	}
}

// writeBenchmarkProfiles writes the table of one benchmark's profiles,
// ps, grouped by scheduler and sorted by decreasing time.
func writeBenchmarkProfiles(buf *bytes.Buffer, ps []Profile) {
	fmt.Fprintf(buf, "\n%s: BPF time of each scheduler's programs per run (kernel BPF statistics)\n", ps[0].Benchmark)

	// One row per program that ran, then the scheduler's total.
	type row struct {
		sched, runs, program string
		calls, ns, ms        float64
		share                string
	}
	var rows []row
	for i := 0; i < len(ps); {
		j := i
		var calls, ns uint64
		for j < len(ps) && ps[j].Scheduler == ps[i].Scheduler {
			calls += ps[j].Runs
			ns += ps[j].Nanoseconds
			j++
		}
		n := float64(ps[i].BenchmarkRuns)
		first := len(rows)
		for _, p := range ps[i:j] {
			if p.Runs == 0 {
				continue
			}
			rows = append(rows, row{program: p.Program, calls: float64(p.Runs) / n,
				ns: float64(p.Nanoseconds) / float64(p.Runs), ms: float64(p.Nanoseconds) / n / 1e6,
				share: percent(float64(p.Nanoseconds) / float64(ns))})
		}
		if calls == 0 {
			rows = append(rows, row{program: "no program ran"})
		} else {
			rows = append(rows, row{program: "total", calls: float64(calls) / n,
				ns: float64(ns) / float64(calls), ms: float64(ns) / n / 1e6})
		}
		rows[first].sched, rows[first].runs = ps[i].Scheduler, fmt.Sprint(ps[i].BenchmarkRuns)
		i = j
	}

	var tb bytes.Buffer
	tw := tabwriter.NewWriter(&tb, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "scheduler\truns\tprogram\tcalls/run\tns/call\tms/run\tshare\t\n")
	for _, r := range rows {
		if r.calls == 0 {
			fmt.Fprintf(tw, "%s\t%s\t%s\t\t\t\t\t\n", r.sched, r.runs, r.program)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.sched, r.runs, r.program, callsFormat(r.calls), significant(r.ns), significant(r.ms), r.share)
	}
	tw.Flush()
	writeTrimmed(buf, tb.Bytes())
}

// callsFormat formats a number of calls per run: as an integer when it
// is one (always, for a single run), else as significant does.
func callsFormat(v float64) string {
	if v == math.Trunc(v) {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return significant(v)
}

// significant formats v, which is not negative, with three significant
// digits, or as an integer from 100 up: a profile's figures range from
// a fraction of a call per run to millions.
func significant(v float64) string {
	if v >= 100 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	if v < 1e-6 {
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
	return strconv.FormatFloat(v, 'f', 2-int(math.Floor(math.Log10(v))), 64)
}

// percent formats the fraction f as a percentage with one decimal, or
// as "<0.1%" when it is smaller but not 0.
func percent(f float64) string {
	if f > 0 && f < 0.0005 {
		return "<0.1%"
	}
	return strconv.FormatFloat(100*f, 'f', 1, 64) + "%"
}
