package bench

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"os"
	"strings"
	"testing"
)

// svgText returns the text content of an SVG document, checking that it
// is well-formed XML.
func svgText(t *testing.T, doc []byte) string {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(doc))
	var text strings.Builder
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return text.String()
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
		if cd, ok := tok.(xml.CharData); ok && len(bytes.TrimSpace(cd)) > 0 {
			text.Write(bytes.TrimSpace(cd))
			text.WriteByte('\n')
		}
	}
}

func TestWriteChartSVG(t *testing.T) {
	r := fixedReport(t)
	var buf bytes.Buffer
	if err := r.WriteChart(&buf, "svg"); err != nil {
		t.Fatal(err)
	}
	out := buf.Bytes()
	if !bytes.HasPrefix(out, []byte("<?xml")) && !bytes.HasPrefix(out, []byte("<svg")) {
		t.Fatalf("SVG starts with %q", out[:min(len(out), 40)])
	}
	text := svgText(t, out)
	for _, want := range append(r.Schedulers,
		"kernel 7.3.4+deb13-amd64, 2 vCPUs, 10 repetitions", "hackbench time", "switch bogo_ops",
		"ops/s, higher is better", "no data", "×1.18 worse", "×45.28*") {
		if !strings.Contains(text, want) {
			t.Errorf("chart lacks %q; its text:\n%s", want, text)
		}
	}
	if os.Getenv("BENCH_CHART_OUT") != "" {
		// For a look: BENCH_CHART_OUT=/tmp/chart go test -run Chart
		must(t, os.WriteFile(os.Getenv("BENCH_CHART_OUT")+".svg", out, 0o644))
		var png bytes.Buffer
		must(t, r.WriteChart(&png, "png"))
		must(t, os.WriteFile(os.Getenv("BENCH_CHART_OUT")+".png", png.Bytes(), 0o644))
	}
}

func TestWriteChartPNG(t *testing.T) {
	var buf bytes.Buffer
	if err := fixedReport(t).WriteChart(&buf, "png"); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(buf.Bytes(), []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("PNG starts with %q", buf.Bytes()[:min(buf.Len(), 16)])
	}
}

func TestWriteChartMissingData(t *testing.T) {
	// No default runs, a scheduler with one run, one with none (named
	// only in Schedulers), and a metric nobody has a value of but zero.
	r := &Report{Kernel: "6.16", VCPUs: 4, Repetitions: 1, Schedulers: []string{"lonely", "idle"}}
	must(t, r.Add("hackbench", "lonely", Sample{MetricTime, 1.5}))
	must(t, r.Add("switch", Default, Sample{MetricSwitchNs, 0}, Sample{MetricBogoOps, 0}))
	must(t, r.Add("switch", "lonely", Sample{MetricSwitchNs, 0}, Sample{MetricBogoOps, 0}))
	for _, format := range []string{"svg", "png"} {
		var buf bytes.Buffer
		if err := r.WriteChart(&buf, format); err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		if format == "svg" {
			text := svgText(t, buf.Bytes())
			for _, want := range []string{"default\nno data", "lonely\nratio n/a", "idle\nno data", "switch switch_ns"} {
				if !strings.Contains(text, want) {
					t.Errorf("chart lacks %q; its text:\n%s", want, text)
				}
			}
		}
		if dir := os.Getenv("BENCH_CHART_OUT"); dir != "" {
			must(t, os.WriteFile(dir+"-missing."+format, buf.Bytes(), 0o644))
		}
	}
}

func TestWriteChartErrors(t *testing.T) {
	var buf bytes.Buffer
	if err := fixedReport(t).WriteChart(&buf, "gif"); !errors.Is(err, ErrInvalid) ||
		err.Error() != `bench: chart: invalid input: format "gif": want svg or png` {
		t.Errorf("gif: %v", err)
	}
	if err := (&Report{}).WriteChart(&buf, "svg"); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty report: %v", err)
	}
	if err := (&Report{Level: 2}).WriteChart(&buf, "svg"); !errors.Is(err, ErrInvalid) {
		t.Errorf("level 2: %v", err)
	}
	if buf.Len() != 0 {
		t.Errorf("failed calls wrote %d bytes", buf.Len())
	}
}

func TestWriteExtremeValues(t *testing.T) {
	tests := []struct {
		values   []float64
		chartErr bool
		median   string // in the table
	}{
		{[]float64{1e308, math.MaxFloat64}, false, "1.399e+308"},
		{[]float64{1e-300, 5e-324}, false, "5e-301"},
		{[]float64{-5, -1}, false, "-3.000"},
		{[]float64{0, 0}, false, "0"},
		{[]float64{12345678, 12345679}, false, "12345678"},
		// plot cannot draw a span beyond a float64's range.
		{[]float64{-1e308, 1e308}, true, "0"},
	}
	for _, tt := range tests {
		r := &Report{}
		for _, s := range []string{Default, "a"} {
			for _, v := range tt.values {
				must(t, r.Add("b", s, Sample{MetricTime, v}))
			}
		}
		var buf bytes.Buffer
		err := r.WriteChart(&buf, "svg")
		if tt.chartErr != (err != nil) || (err != nil && !errors.Is(err, ErrInvalid)) {
			t.Errorf("%v: chart error %v", tt.values, err)
		}
		buf.Reset()
		must(t, r.WriteTable(&buf))
		if !strings.Contains(buf.String(), "default    2     "+tt.median+" ") || buf.Len() > 1000 {
			t.Errorf("%v: table\n%s", tt.values, buf.String())
		}
	}
}
