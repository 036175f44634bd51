package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// fixedReport is a session of 10 repetitions on 2 vCPUs: simple is slower
// than the default everywhere, interactive ran cyclictest only 4 times
// and switch not at all.
func fixedReport(t testing.TB) *Report {
	t.Helper()
	r := &Report{Kernel: "7.3.4+deb13-amd64", VCPUs: 2, Repetitions: 10, Schedulers: []string{Default, "simple", "interactive"}}
	runs := []struct {
		bench, sched string
		metric       Metric
		values       []float64
	}{
		{"hackbench", Default, MetricTime, []float64{1.10, 1.08, 1.15, 1.12, 1.09, 1.11, 1.21, 1.07, 1.10, 1.13}},
		{"hackbench", "simple", MetricTime, []float64{1.30, 1.28, 1.35, 1.31, 1.26, 1.33, 1.29, 1.40, 1.30, 1.32}},
		{"hackbench", "interactive", MetricTime, []float64{1.12, 1.06, 1.18, 1.09, 1.14, 1.10, 1.08, 1.16, 1.11, 1.07}},
		{"cyclictest", Default, MetricAvgLatency, []float64{318, 331, 325, 340, 310, 322, 329, 335, 315, 320}},
		{"cyclictest", "simple", MetricAvgLatency, []float64{13086, 19227, 15100, 14200, 16800, 13900, 17500, 15600, 14800, 16100}},
		{"cyclictest", "interactive", MetricAvgLatency, []float64{14517, 14776, 15010, 14300}},
		{"cyclictest", Default, MetricMaxLatency, []float64{8600, 6000, 7200, 9100, 6600, 7700, 8100, 6900, 7400, 8800}},
		{"cyclictest", "simple", MetricMaxLatency, []float64{27000, 27500, 26800, 28100, 27300, 27900, 26500, 27700, 28400, 27100}},
		{"cyclictest", "interactive", MetricMaxLatency, []float64{28000, 27000, 27600, 26900}},
		{"switch", Default, MetricSwitchNs, []float64{101900, 99800, 103500, 100200, 102700, 98900, 104100, 101100, 100600, 102300}},
		{"switch", "simple", MetricSwitchNs, []float64{180700, 182300, 179100, 181500, 183900, 178800, 180200, 182800, 181100, 179900}},
		{"switch", Default, MetricBogoOps, []float64{19600, 20040, 19320, 19960, 19470, 20220, 19210, 19780, 19880, 19550}},
		{"switch", "simple", MetricBogoOps, []float64{11070, 10970, 11170, 11020, 10880, 11190, 11100, 10940, 11040, 11120}},
	}
	for _, run := range runs {
		for _, v := range run.values {
			if err := r.Add(run.bench, run.sched, Sample{Metric: run.metric, Value: v}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return r
}

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (go test -update rewrites it):\n%s", path, got)
	}
}

func TestWriteTableGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := fixedReport(t).WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(buf.String()) {
		if strings.TrimRight(line, " \n") != strings.TrimSuffix(line, "\n") {
			t.Errorf("trailing space in %q", line)
		}
	}
	golden(t, "table.golden", buf.Bytes())
}

func TestWriteTableEdgeCases(t *testing.T) {
	// No default runs: every ratio is n/a. One run: too few.
	r := &Report{Level: 0.9}
	if err := r.Add("hackbench", "simple", Sample{Metric: MetricTime, Value: 1.5}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := r.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	want := `kernel unknown, 0 vCPUs, 0 repetitions
medians with 90% intervals; ratio = scheduler/default median, 90% bootstrap interval;
better/worse: the ratio's interval excludes 1

hackbench time (s), lower is better
scheduler  runs  median   90% CI           ratio  90% CI
default    0     no data
simple     1     1.500    [1.500, 1.500]*  n/a

* too few runs for a 90% interval: the range of the runs, and no better/worse
`
	if buf.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", buf.String(), want)
	}

	buf.Reset()
	if err := (&Report{}).WriteTable(&buf); err != nil || !strings.Contains(buf.String(), "\nno results\n") {
		t.Errorf("empty report: %v\n%s", err, buf.String())
	}
}

func TestCompute(t *testing.T) {
	r := &Report{}
	// Default added last, and a metric simple has no values for.
	must(t, r.Add("switch", "simple", Sample{MetricSwitchNs, 2}))
	must(t, r.Add("switch", Default, Sample{MetricSwitchNs, 1}, Sample{MetricBogoOps, 5}))
	must(t, r.Compute())
	if want := []string{Default, "simple"}; !slices.Equal(r.Schedulers, want) {
		t.Errorf("Schedulers = %v, want %v", r.Schedulers, want)
	}
	var got []string
	for _, res := range r.Results {
		got = append(got, res.Benchmark+"/"+res.Metric.Name+"/"+res.Scheduler)
		if res.Values == nil {
			t.Errorf("%s: nil Values", got[len(got)-1])
		}
		if (res.Ratio == nil) != (res.Scheduler == Default) {
			t.Errorf("%s: ratio %v", got[len(got)-1], res.Ratio)
		}
	}
	want := []string{"switch/switch_ns/default", "switch/switch_ns/simple", "switch/bogo_ops/default", "switch/bogo_ops/simple"}
	if !slices.Equal(got, want) {
		t.Errorf("results %v, want %v", got, want)
	}
	if q := r.Results[1].Ratio; !q.Valid || q.Ratio != 2 {
		t.Errorf("simple switch_ns ratio %+v, want 2", q)
	}
	if q := r.Results[3].Ratio; q.Valid || r.Results[3].Summary.N != 0 {
		t.Errorf("simple bogo_ops: %+v, ratio %+v, want no data", r.Results[3].Summary, q)
	}
	if r.Version != FormatVersion || r.Level != DefaultLevel {
		t.Errorf("Version %d Level %v", r.Version, r.Level)
	}

	// Idempotent.
	before, _ := json.Marshal(r)
	must(t, r.Compute())
	after, _ := json.Marshal(r)
	if !bytes.Equal(before, after) {
		t.Errorf("second Compute changed the report:\n%s\n%s", before, after)
	}

	// A bad level fails and leaves the report alone.
	r.Level = 1.5
	if err := r.Compute(); !errors.Is(err, ErrInvalid) {
		t.Errorf("Compute at level 1.5: %v", err)
	}
	if len(r.Results) != 4 {
		t.Errorf("failed Compute changed the results")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestAddErrors(t *testing.T) {
	r := &Report{}
	must(t, r.Add("hackbench", "simple", Sample{MetricTime, 1}))
	tests := []struct {
		bench, sched string
		s            Sample
		want         string
	}{
		{"", "simple", Sample{MetricTime, 1}, "bench: add: invalid input: empty benchmark or scheduler name"},
		{"hackbench", "", Sample{MetricTime, 1}, "bench: add: invalid input: empty benchmark or scheduler name"},
		{"hackbench", "simple", Sample{MetricTime, math.NaN()}, "bench: add hackbench time under simple: invalid input: value NaN is not finite"},
		{"hackbench", "simple", Sample{MetricTime, math.Inf(1)}, "bench: add hackbench time under simple: invalid input: value +Inf is not finite"},
		{"hackbench", "simple", Sample{Metric{Name: "x", Unit: "s"}, 1}, "bench: add hackbench x under simple: invalid input: metric direction 0: want LowerIsBetter or HigherIsBetter"},
		{"hackbench", "simple", Sample{Metric{Unit: "s", Better: LowerIsBetter}, 1}, "bench: add hackbench: invalid input: a metric has no name"},
		{"hackbench", "other", Sample{Metric{Name: "time", Unit: "ms", Better: LowerIsBetter}, 1},
			"bench: add hackbench time under other: invalid input: metric time (ms) lower is better, but earlier time (s) lower is better"},
	}
	for _, tt := range tests {
		err := r.Add(tt.bench, tt.sched, Sample{MetricTime, 2}, tt.s)
		if !errors.Is(err, ErrInvalid) || err.Error() != tt.want {
			t.Errorf("Add(%q, %q, %+v):\n got %v\nwant %s", tt.bench, tt.sched, tt.s, err, tt.want)
		}
	}
	// Nothing of the refused calls was recorded.
	if len(r.Results) != 1 || !slices.Equal(r.Results[0].Values, []float64{1}) || !slices.Equal(r.Schedulers, []string{"simple"}) {
		t.Errorf("refused Adds changed the report: %+v", r)
	}
}

func TestJSON(t *testing.T) {
	r := fixedReport(t)
	r.Commands = map[string][]string{"hackbench": Hackbench.Args(nil)}
	var buf bytes.Buffer
	must(t, r.WriteJSON(&buf))

	// The field names are the file format.
	var file map[string]any
	must(t, json.Unmarshal(buf.Bytes(), &file))
	keys := func(m map[string]any) []string {
		var k []string
		for key := range m {
			k = append(k, key)
		}
		slices.Sort(k)
		return k
	}
	if got, want := keys(file), []string{"commands", "kernel", "level", "repetitions", "results", "schedulers", "vcpus", "version"}; !slices.Equal(got, want) {
		t.Errorf("report keys %v, want %v", got, want)
	}
	results := file["results"].([]any)
	simple := results[1].(map[string]any)
	if got, want := keys(simple), []string{"benchmark", "metric", "ratio", "scheduler", "summary", "values"}; !slices.Equal(got, want) {
		t.Errorf("result keys %v, want %v", got, want)
	}
	if got, want := keys(simple["metric"].(map[string]any)), []string{"better", "name", "unit"}; !slices.Equal(got, want) {
		t.Errorf("metric keys %v, want %v", got, want)
	}
	if got, want := keys(simple["summary"].(map[string]any)), []string{"coverage", "hi", "level", "lo", "max", "mean", "median", "min", "n", "too_few"}; !slices.Equal(got, want) {
		t.Errorf("summary keys %v, want %v", got, want)
	}
	if got, want := keys(simple["ratio"].(map[string]any)), []string{"hi", "level", "lo", "ratio", "resamples", "too_few", "valid"}; !slices.Equal(got, want) {
		t.Errorf("ratio keys %v, want %v", got, want)
	}
	if results[0].(map[string]any)["ratio"] != nil {
		t.Errorf("default's ratio is %v, want null", results[0].(map[string]any)["ratio"])
	}
	if !strings.Contains(buf.String(), `"better": "lower"`) || !strings.Contains(buf.String(), `"better": "higher"`) {
		t.Errorf("directions not spelled lower/higher:\n%s", buf.String())
	}
	golden(t, "report.golden.json", buf.Bytes())

	// Read back, written again: the same bytes.
	checkRoundTrip(t, buf.Bytes())
}

func TestReadJSONErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"version": 2}`, "bench: read report: invalid input: format version 2: want 1"},
		{`{"version": 1, "level": 2}`, "bench: read report: bench: invalid input: confidence level 2: want a value in (0, 1), as 0.95"},
		{`{"version": 1, "results": [{"benchmark": "b", "scheduler": "s", "metric": {"name": "m", "better": "sideways"}}]}`,
			`bench: read report: bench: invalid input: direction "sideways": want "lower" or "higher"`},
		{`{"version": 1, "results": [{"benchmark": "", "scheduler": "s", "metric": {"name": "m", "better": "lower"}}]}`,
			"bench: read report: invalid input: a result without benchmark or scheduler name"},
		{`{"version": 1, "results": [{"benchmark": "b", "scheduler": "s", "metric": {"name": "m", "better": "lower"}},
		  {"benchmark": "b", "scheduler": "t", "metric": {"name": "m", "better": "higher"}, "values": [1]}]}`,
			"bench: read report: bench: add b m under t: invalid input: metric m higher is better, but earlier m lower is better"},
		{`[`, "bench: read report: unexpected EOF"},
	}
	for _, tt := range tests {
		_, err := ReadJSON(strings.NewReader(tt.in))
		if err == nil || err.Error() != tt.want {
			t.Errorf("ReadJSON(%s):\n got %v\nwant %s", tt.in, err, tt.want)
		}
	}
}

// checkRoundTrip reads a report file back and writes it again: the bytes
// must not change.
func checkRoundTrip(t *testing.T, file []byte) {
	t.Helper()
	back, err := ReadJSON(bytes.NewReader(file))
	must(t, err)
	var again bytes.Buffer
	must(t, back.WriteJSON(&again))
	if !bytes.Equal(file, again.Bytes()) {
		t.Errorf("round trip changed the file:\n%s", again.String())
	}
}
