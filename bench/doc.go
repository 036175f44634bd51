// Package bench compares schedulers with real benchmark tools: Debian's
// hackbench and cyclictest (rt-tests) and stress-ng's context-switch
// stressor, run under the kernel's default scheduler and under each
// sched_ext scheduler, several times each. It has two parts: Run, which
// runs the tools and the schedulers on a machine with sched_ext (usually
// a VM: scxkit bench boots one and runs Run there), and the
// deterministic rest: the tools' command lines, parsers for their
// output, the statistics, and the report as a text table, a JSON file
// and a chart.
//
// A scheduler author benchmarks their own scheduler program with
//
//	scxkit bench ./myscheduler              # from a scxkit checkout, in a VM
//
// or, on a sched_ext machine as root, from Go:
//
//	r, err := bench.Run(ctx, &bench.Plan{Schedulers: []bench.Scheduler{{Name: "mine", Path: "./myscheduler"}}})
//	r.WriteTable(os.Stdout)
//
// # Glossary
//
//   - Benchmark: one tool run in one way, with the metrics it yields
//     (Hackbench, Cyclictest, Switch; Standard lists them).
//   - Metric: a named number with a unit and a Direction: lower is better
//     (times, latencies, costs) or higher is better (throughputs).
//   - Sample: the value of one metric in one run.
//   - Run, repetition: one execution of a benchmark under one scheduler;
//     a session repeats each benchmark under each scheduler
//     Report.Repetitions times (the runner alternates the schedulers'
//     order so that drift in the machine hits them alike).
//   - Default: the kernel's own scheduler, with no sched_ext scheduler
//     attached; the base of every ratio.
//   - Level: the confidence level of every interval, 0.95 by default.
//   - Profile: with Plan.Profile, how often each BPF program (callback)
//     of a sched_ext scheduler ran during a benchmark's runs and for how
//     long, from the kernel's BPF run-time statistics.
//
// # Data flow
//
//	tool stdout, stderr ─► Benchmark.Parse ─► []Sample ─► Report.Add (values per
//	                                                      benchmark, metric, scheduler)
//	Report.Compute ─► Summary per result, RatioSummary against Default
//	               ─► WriteTable (text), WriteJSON (file), WriteChart (svg, png)
//	with Plan.Profile: kernel BPF statistics of the scheduler's struct_ops
//	programs, before and after each run ─► Report.Profiles ─► WriteTable
//
// # The tools
//
// hackbench -g 2 -l 200 reports the time to pass its messages ("time",
// s). cyclictest -q -m -t N -i 1000 -d 0 -D <secs>, run while N CPU hogs
// keep the N vCPUs busy (Benchmark.Hogs, Benchmark.HogArgs), reports per
// thread the average and largest wakeup latency; "avg_latency" is the
// mean of the threads' averages and "max_latency" the largest maximum
// (µs). stress-ng --switch N --switch-method pipe --timeout <secs>s
// --metrics-brief writes its report to stderr; "switch_ns" is its
// nanoseconds per context switch and "bogo_ops" its bogo operations per
// second of wall-clock time (higher is better). The report is read from
// stderr rather than from a --yaml file so the runner has no file to
// fetch from the guest; its numbers are the same. Every task runs in the
// normal class (no real-time priority), which is what a sched_ext
// scheduler schedules.
//
// # Statistics
//
// A sample's centre is its median, with a confidence interval that
// assumes nothing about the distribution: for n values sorted as
// x(1) <= ... <= x(n), the interval [x(k), x(n-k+1)] contains the true
// median with probability
//
//	coverage(k) = 1 - 2 P(B <= k-1),   B ~ Binomial(n, 1/2)
//
// and Summarize takes the largest k with coverage(k) >= Level. With n = 10
// and Level 0.95 that is k = 2, coverage 0.979. Below 6 values no k
// reaches 0.95 (k = 1 covers 1 - 2/2^n, 0.9375 for 5 values): the interval
// is then the whole range and Summary.TooFew says so.
//
// A scheduler's ratio is always scheduler/default, median over median, in
// the metric's own units: below 1 is better for a lower-is-better metric
// and above 1 for a higher-is-better one (for bogo_ops the ratio is the
// speedup; for times and latencies the speedup is its inverse, which the
// package does not print, so that one number means one thing). Its
// interval is a percentile bootstrap: 10000 resamples (Resamples), each
// drawing both samples anew with replacement, the ratio of their medians
// each time, and the (1-Level)/2 and (1+Level)/2 quantiles of those
// ratios. The generator is a PCG with a fixed seed, so the same values
// give the same report. A ratio is marked "better" or "worse" only when
// its interval excludes 1 and neither sample is TooFew.
//
// # Results file
//
// WriteJSON writes the Report as indented JSON, and ReadJSON reads it
// back. Field names are stable; FormatVersion (the "version" field)
// changes when they do, not when an optional field is added: "profiles"
// came later in version 1, and a file without it reads as before. Values
// are finite numbers: a result without data has "values": [] and a
// summary of zeros with "n": 0. For example:
//
//	{
//	  "version": 1,
//	  "kernel": "7.3.4+deb13-amd64",
//	  "vcpus": 2,
//	  "repetitions": 10,
//	  "level": 0.95,
//	  "schedulers": ["default", "simple"],
//	  "commands": {"hackbench": ["hackbench", "-g", "2", "-l", "200"]},
//	  "results": [
//	    {
//	      "benchmark": "hackbench",
//	      "metric": {"name": "time", "unit": "s", "better": "lower"},
//	      "scheduler": "simple",
//	      "values": [1.31, 1.28, ...],
//	      "summary": {"n": 10, "median": 1.3, "lo": 1.27, "hi": 1.36, "level": 0.95,
//	                  "coverage": 0.978515625, "too_few": false,
//	                  "mean": 1.31, "min": 1.25, "max": 1.39},
//	      "ratio": {"ratio": 1.18, "lo": 1.12, "hi": 1.24, "level": 0.95,
//	                "resamples": 10000, "too_few": false, "valid": true}
//	    }
//	  ],
//	  "profiles": [
//	    {"benchmark": "hackbench", "scheduler": "simple", "program": "simple_enqueue",
//	     "runs": 1284310, "nanoseconds": 391514880, "benchmark_runs": 10}
//	  ]
//	}
//
// "ratio" is null for the default scheduler. A ratio is not "valid" (and
// its numbers are zero) when either sample is empty or the default's
// median is not above zero. "profiles" is there only when the session
// measured them: per benchmark, sched_ext scheduler and BPF program, the
// program's runs and their total nanoseconds on all CPUs, summed over
// "benchmark_runs" runs of the benchmark.
package bench
