package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/scxkit/scxkit/latency"
)

func TestLatencyUsage(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		stderr string
	}{
		{"zero interval", []string{"latency", "--interval", "0s"}, "--interval 0s: must be at least 10ms"},
		{"negative interval", []string{"latency", "--interval=-1s"}, "--interval -1s: must be at least 10ms"},
		{"tiny interval", []string{"latency", "--interval", "1ns", "--duration", "1s"}, "--interval 1ns: must be at least 10ms"},
		{"listen without port", []string{"latency", "--listen", "bogus", "--duration", "1s"}, `--listen "bogus": address bogus: missing port in address: give HOST:PORT, e.g. --listen 127.0.0.1:9100`},
		{"listen empty port", []string{"latency", "--listen", "127.0.0.1:", "--duration", "1s"}, `--listen "127.0.0.1:": no port`},
		{"listen bad port", []string{"latency", "--listen", "127.0.0.1:99999", "--duration", "1s"}, `--listen "127.0.0.1:99999": port "99999"`},
		{"listen unknown host", []string{"latency", "--listen", "scxkit-no-such-host.invalid:9100", "--duration", "1s"}, `--listen "scxkit-no-such-host.invalid:9100": listen tcp`},
		{"negative duration", []string{"latency", "--duration=-1s"}, "--duration -1s"},
		{"negative outlier", []string{"latency", "--outlier=-1ms"}, "--outlier -1ms"},
		{"bounds not increasing", []string{"latency", "--bounds", "1ms,500us"}, `--bounds "1ms,500us": latency: bucket bound 1 (500µs) is not above bound 0 (1ms): invalid input`},
		{"bounds not durations", []string{"latency", "--bounds", "1,2"}, `bucket bound 0 "1"`},
		{"missing cgroup", []string{"latency", "--cgroup", "/scxkit-no-such-cgroup", "--duration", "1s"}, `cgroup "/scxkit-no-such-cgroup": stat `},
		{"bad interval", []string{"latency", "--interval", "often"}, "invalid value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runArgs(t, tt.args...)
			if code != exitUsage || stdout != "" || !strings.Contains(stderr, tt.stderr) || !strings.Contains(stderr, "Usage: scxkit latency") {
				t.Errorf("exit %d, want %d; stdout %q; stderr lacks %q or the usage:\n%s", code, exitUsage, stdout, tt.stderr, stderr)
			}
		})
	}
	code, stdout, _ := runArgs(t, "help", "latency")
	if code != 0 || !strings.Contains(stdout, "-listen ADDR") || !strings.Contains(stdout, "-cgroup PATH") {
		t.Errorf("help latency: exit %d\n%s", code, stdout)
	}
}

// TestLatencyCollector checks the metrics of a made-up snapshot: one
// Prometheus histogram per cgroup with the profiler's bounds, cumulative.
func TestLatencyCollector(t *testing.T) {
	bounds := []time.Duration{time.Millisecond, 10 * time.Millisecond}
	snap := []latency.CgroupStats{{
		Path: "/a", ID: 42, Wakeups: 5, Preemptions: 1,
		QueueDelay:     latency.Histogram{Bounds: bounds, Counts: []uint64{3, 2, 1}, Sum: 40 * time.Millisecond},
		SameCgroupWait: 10 * time.Millisecond, OtherCgroupWait: 25 * time.Millisecond, IdleWait: 5 * time.Millisecond,
		OnCPU: 2 * time.Second, OffCPU: 3 * time.Second,
	}}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(newLatencyCollector(func(dst []latency.CgroupStats) ([]latency.CgroupStats, error) {
		return append(dst[:0], snap...), nil
	}))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		got[mf.GetName()] = mf
	}
	h := got["scxkit_latency_queue_delay_seconds"]
	if h == nil || h.GetType() != dto.MetricType_HISTOGRAM || len(h.Metric) != 1 {
		t.Fatalf("queue delay histogram: %v", h)
	}
	m := h.Metric[0].GetHistogram()
	var le []float64
	var cum []uint64
	for _, b := range m.Bucket {
		le = append(le, b.GetUpperBound())
		cum = append(cum, b.GetCumulativeCount())
	}
	if m.GetSampleCount() != 6 || m.GetSampleSum() != 0.04 || len(le) != 2 || le[0] != 0.001 || le[1] != 0.01 || cum[0] != 3 || cum[1] != 5 {
		t.Errorf("histogram: count %d sum %v buckets %v %v", m.GetSampleCount(), m.GetSampleSum(), le, cum)
	}
	labels := map[string]string{}
	for _, l := range h.Metric[0].Label {
		labels[l.GetName()] = l.GetValue()
	}
	if labels["cgroup"] != "/a" || labels["cgroup_id"] != "42" {
		t.Errorf("labels %v", labels)
	}
	for _, name := range []string{"scxkit_latency_waits_total", "scxkit_latency_wait_seconds_total",
		"scxkit_latency_oncpu_seconds_total", "scxkit_latency_offcpu_seconds_total", "scxkit_latency_outliers_total"} {
		if mf := got[name]; mf == nil || mf.GetType() != dto.MetricType_COUNTER {
			t.Errorf("%s missing or not a counter: %v", name, mf)
		}
	}
	if v := got["scxkit_latency_oncpu_seconds_total"].Metric[0].GetCounter().GetValue(); v != 2 {
		t.Errorf("on-CPU %v s, want 2", v)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func requireLatencyRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("not root: CI runs the latency tests as root")
	}
	t.Skip("not root")
}

// TestLatencyRun runs the command for real: JSON lines for a while, and
// the metrics endpoint scraped meanwhile.
func TestLatencyRun(t *testing.T) {
	requireLatencyRoot(t)
	var out, errOut syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, []string{"latency", "--cgroup", "/", "--interval", "100ms", "--duration", "10s", "--json",
			"--bounds", "10us,100us,1ms,10ms", "--listen", "127.0.0.1:0", "--outlier", "1s"}, &out, &errOut)
	}()
	addr := regexp.MustCompile(`serving metrics at (http://\S+/metrics)`)
	var url string
	// Deadlines in this test only bound a wait for a condition (a minute:
	// far past what a loaded host needs, short of go test's timeout).
	for deadline := time.Now().Add(time.Minute); url == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m := addr.FindStringSubmatch(errOut.String()); m != nil {
			url = m[1]
		}
	}
	if url == "" {
		t.Fatalf("no metrics address on stderr: %s", errOut.String())
	}
	wants := []string{`scxkit_latency_queue_delay_seconds_bucket{cgroup="/",cgroup_id="1",le="0.001"}`,
		`scxkit_latency_queue_delay_seconds_bucket{cgroup="/",cgroup_id="1",le="+Inf"}`, "# TYPE scxkit_latency_queue_delay_seconds histogram",
		`scxkit_latency_wait_seconds_total{cgroup="/",cgroup_id="1",occupant="other_cgroup"}`}
	// Scrape until every series is there, rather than after a fixed pause.
	var body []byte
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if !slices.ContainsFunc(wants, func(w string) bool { return !strings.Contains(string(body), w) }) || time.Now().After(deadline) {
			break
		}
	}
	for _, want := range wants {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s:\n%s", want, body)
		}
	}
	// At least two intervals (100ms each) before stopping, waited for.
	for deadline := time.Now().Add(time.Minute); strings.Count(out.String(), `"type":"interval"`) < 2 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	cancel() // as SIGINT does
	select {
	case c := <-code:
		if c != 0 {
			t.Fatalf("exit %d: %s", c, errOut.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("latency did not stop within a minute of its context ending")
	}
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	sc.Buffer(nil, 1<<20)
	intervals := 0
	for sc.Scan() {
		var line struct {
			Type     string  `json:"type"`
			BoundsNs []int64 `json:"bounds_ns"`
			Cgroups  []struct {
				Path   string   `json:"path"`
				Counts []uint64 `json:"counts"`
			} `json:"cgroups"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("not JSON: %v: %s", err, sc.Text())
		}
		if line.Type != "interval" {
			continue
		}
		intervals++
		if len(line.BoundsNs) != 4 || len(line.Cgroups) != 1 || line.Cgroups[0].Path != "/" || len(line.Cgroups[0].Counts) != 5 {
			t.Errorf("bad interval line: %s", sc.Text())
		}
	}
	if intervals < 2 {
		t.Errorf("%d interval lines in:\n%s", intervals, out.String())
	}
}
