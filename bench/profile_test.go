package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scxkit/scxkit/internal/opsprof"
)

// profiledReport is fixedReport with profiles: simple's programs under
// hackbench and switch in each of its 10 runs (simple_init ran in none,
// simple_dispatch only in the first run of each), interactive's under
// cyclictest in its 4.
func profiledReport(t *testing.T) *Report {
	t.Helper()
	r := fixedReport(t)
	for run := range 10 {
		for _, b := range []string{"hackbench", "switch"} {
			k := uint64(1)
			if b == "switch" {
				k = 3
			}
			progs := []opsprof.Program{
				{ID: 10, Name: "simple_enqueue", Runs: k * 40000, Time: time.Duration(k*40000*350) * time.Nanosecond},
				{ID: 11, Name: "simple_running", Runs: k * 52000, Time: time.Duration(k*52000*120) * time.Nanosecond},
				{ID: 12, Name: "simple_stopping", Runs: k * 52000, Time: time.Duration(k*52000*210) * time.Nanosecond},
				{ID: 13, Name: "simple_init"},
			}
			if run == 0 {
				progs = append(progs, opsprof.Program{ID: 14, Name: "simple_dispatch", Runs: 3, Time: 2400 * time.Nanosecond})
			}
			must(t, r.addProfile(b, "simple", progs))
		}
	}
	for range 4 {
		must(t, r.addProfile("cyclictest", "interactive", []opsprof.Program{
			{ID: 20, Name: "interactive_select_cpu", Runs: 9000, Time: 9000 * 1800 * time.Nanosecond},
			{ID: 21, Name: "interactive_enqueue", Runs: 11000, Time: 11000 * 400 * time.Nanosecond},
		}))
	}
	return r
}

func TestAddProfile(t *testing.T) {
	r := &Report{}
	must(t, r.Add("switch", "s", Sample{MetricSwitchNs, 1}))
	must(t, r.addProfile("switch", "s", []opsprof.Program{{ID: 1, Name: "a", Runs: 2, Time: 10}, {ID: 2, Name: "b", Runs: 1, Time: 5}}))
	// A second run: b absent, c new, and two programs named a (summed).
	must(t, r.addProfile("switch", "s", []opsprof.Program{{ID: 3, Name: "a", Runs: 1, Time: 3}, {ID: 4, Name: "c", Runs: 7, Time: 70}, {ID: 5, Name: "a", Runs: 1, Time: 1}}))
	want := []Profile{
		{Benchmark: "switch", Scheduler: "s", Program: "a", Runs: 4, Nanoseconds: 14, BenchmarkRuns: 2},
		{Benchmark: "switch", Scheduler: "s", Program: "b", Runs: 1, Nanoseconds: 5, BenchmarkRuns: 2},
		{Benchmark: "switch", Scheduler: "s", Program: "c", Runs: 7, Nanoseconds: 70, BenchmarkRuns: 2},
	}
	if !slices.Equal(r.Profiles, want) {
		t.Errorf("profiles\n%+v\nwant\n%+v", r.Profiles, want)
	}
	// Another scheduler adds itself to Schedulers and counts its own runs.
	must(t, r.addProfile("switch", "t", []opsprof.Program{{ID: 6, Name: "a", Runs: 1, Time: 1}}))
	if !slices.Equal(r.Schedulers, []string{"s", "t"}) || r.Profiles[3].BenchmarkRuns != 1 {
		t.Errorf("schedulers %v, t's profile %+v: want s,t and 1 run", r.Schedulers, r.Profiles[3])
	}

	before := slices.Clone(r.Profiles)
	for _, tt := range []struct {
		bench, sched string
		progs        []opsprof.Program
		want         string
	}{
		{"", "s", []opsprof.Program{{Name: "a"}}, "empty benchmark or scheduler name"},
		{"switch", "", []opsprof.Program{{Name: "a"}}, "empty benchmark or scheduler name"},
		{"switch", Default, []opsprof.Program{{Name: "a"}}, "the default scheduler runs no BPF program"},
		{"switch", "s", nil, "no BPF program"},
		{"switch", "s", []opsprof.Program{{Name: "a"}, {ID: 9}}, "a program without a name (ID 9)"},
	} {
		err := r.addProfile(tt.bench, tt.sched, tt.progs)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("addProfile(%q, %q, %+v): %v, want ErrInvalid saying %q", tt.bench, tt.sched, tt.progs, err, tt.want)
		}
	}
	if !slices.Equal(r.Profiles, before) {
		t.Errorf("refused addProfiles changed the profiles: %+v", r.Profiles)
	}
}

func TestWriteTableProfiles(t *testing.T) {
	var buf bytes.Buffer
	must(t, profiledReport(t).WriteTable(&buf))
	out := buf.String()
	for line := range strings.Lines(out) {
		if strings.TrimRight(line, " \n") != strings.TrimSuffix(line, "\n") {
			t.Errorf("trailing space in %q", line)
		}
	}
	// The main table comes first, unchanged.
	var plain bytes.Buffer
	must(t, fixedReport(t).WriteTable(&plain))
	if !strings.HasPrefix(out, plain.String()) {
		t.Errorf("the profiles changed the main table:\n%s", out)
	}
	// simple_init never ran: no row. simple_dispatch ran 3 times in 10
	// runs of each benchmark.
	if strings.Contains(out, "simple_init") {
		t.Errorf("a program that never ran has a row:\n%s", out)
	}
	if !strings.Contains(out, "simple_dispatch  0.300 ") {
		t.Errorf("simple_dispatch's 3 calls in 10 runs are not 0.300 calls per run:\n%s", out)
	}
	golden(t, "table-profiles.golden", buf.Bytes())
}

func TestJSONProfiles(t *testing.T) {
	var buf bytes.Buffer
	must(t, profiledReport(t).WriteJSON(&buf))
	var file struct {
		Profiles []map[string]any `json:"profiles"`
	}
	must(t, json.Unmarshal(buf.Bytes(), &file))
	if len(file.Profiles) != 2*5+2 {
		t.Fatalf("%d profiles in the file, want 12", len(file.Profiles))
	}
	var keys []string
	for k := range file.Profiles[0] {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"benchmark", "benchmark_runs", "nanoseconds", "program", "runs", "scheduler"}; !slices.Equal(keys, want) {
		t.Errorf("profile keys %v, want %v", keys, want)
	}
	// Sorted by benchmark as in the results, then by decreasing time.
	var order []string
	for _, p := range file.Profiles {
		order = append(order, p["benchmark"].(string)+"/"+p["program"].(string))
	}
	want := []string{
		"hackbench/simple_enqueue", "hackbench/simple_stopping", "hackbench/simple_running", "hackbench/simple_dispatch", "hackbench/simple_init",
		"cyclictest/interactive_select_cpu", "cyclictest/interactive_enqueue",
		"switch/simple_enqueue", "switch/simple_stopping", "switch/simple_running", "switch/simple_dispatch", "switch/simple_init",
	}
	if !slices.Equal(order, want) {
		t.Errorf("profiles in order\n%v\nwant\n%v", order, want)
	}

	checkRoundTrip(t, buf.Bytes())

	// A file of before profiles reads, and is written without them.
	old, err := os.ReadFile(filepath.Join("testdata", "report.golden.json"))
	must(t, err)
	if bytes.Contains(old, []byte("profiles")) {
		t.Fatal("testdata/report.golden.json has profiles: it is to be a file from before them")
	}
	r, err := ReadJSON(bytes.NewReader(old))
	must(t, err)
	if r.Profiles != nil {
		t.Errorf("profiles %v from a file without them", r.Profiles)
	}
}

func TestReadJSONProfileErrors(t *testing.T) {
	const head = `{"version": 1, "repetitions": 2, "schedulers": ["default", "s"], "results": [
	  {"benchmark": "b", "scheduler": "s", "metric": {"name": "m", "better": "lower"}, "values": [1, 2]}],
	  "profiles": [`
	ok := `{"benchmark": "b", "scheduler": "s", "program": "p", "runs": 4, "nanoseconds": 40, "benchmark_runs": 2}`
	if _, err := ReadJSON(strings.NewReader(head + ok + "]}")); err != nil {
		t.Fatalf("a valid profile: %v", err)
	}
	for _, tt := range []struct{ profiles, want string }{
		{`{"benchmark": "b", "scheduler": "s", "runs": 1, "benchmark_runs": 1}`, "a profile without benchmark, scheduler or program name"},
		{`{"benchmark": "b", "scheduler": "default", "program": "p", "runs": 1, "benchmark_runs": 1}`, "the default scheduler runs no BPF program"},
		{`{"benchmark": "b", "scheduler": "t", "program": "p", "runs": 1, "benchmark_runs": 1}`, `no scheduler "t" in the report`},
		{`{"benchmark": "c", "scheduler": "s", "program": "p", "runs": 1, "benchmark_runs": 1}`, `no results of benchmark "c"`},
		{ok + "," + ok, "program p: a second profile"},
		{`{"benchmark": "b", "scheduler": "s", "program": "p", "runs": 1, "benchmark_runs": 0}`, "benchmark_runs 0: want 1 to the 2 runs recorded"},
		{`{"benchmark": "b", "scheduler": "s", "program": "p", "runs": 1, "benchmark_runs": 3}`, "benchmark_runs 3: want 1 to the 2 runs recorded"},
		{ok + `, {"benchmark": "b", "scheduler": "s", "program": "q", "runs": 1, "benchmark_runs": 1}`,
			"benchmark_runs 1, but 2 for the scheduler's other programs"},
		{`{"benchmark": "b", "scheduler": "s", "program": "p", "runs": 0, "nanoseconds": 5, "benchmark_runs": 1}`, "5 ns in no run"},
		{`{"benchmark": "b", "scheduler": "s", "program": "p", "runs": 1, "nanoseconds": 18446744073709551615, "benchmark_runs": 1}`, "is over 292 years"},
		{`{"benchmark": "b", "scheduler": "s", "program": "p", "runs": -1, "benchmark_runs": 1}`, "cannot unmarshal number -1"},
	} {
		_, err := ReadJSON(strings.NewReader(head + tt.profiles + "]}"))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("profiles %s: %v, want an error saying %q", tt.profiles, err, tt.want)
		}
	}
}

func TestProfileFormats(t *testing.T) {
	for _, tt := range []struct {
		f    func(float64) string
		v    float64
		want string
	}{
		{significant, 0, "0"},
		{significant, 1e-7, "1e-07"},
		{significant, 0.000240, "0.000240"},
		{significant, 5, "5.00"},
		{significant, 16.25, "16.2"},
		{significant, 99.94, "99.9"},
		{significant, 1024.6, "1025"},
		{callsFormat, 5, "5"},
		{callsFormat, 0.3, "0.300"},
		{callsFormat, 191838, "191838"},
		{percent, 0, "0.0%"},
		{percent, 0.0004, "<0.1%"},
		{percent, 0.634, "63.4%"},
		{percent, 1, "100.0%"},
	} {
		if got := tt.f(tt.v); got != tt.want {
			t.Errorf("format %v: %q, want %q", tt.v, got, tt.want)
		}
	}
}
