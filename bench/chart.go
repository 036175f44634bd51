package bench

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Chart layout.
const (
	chartCols  = 2
	panelWidth = 11 * vg.Centimeter
	// slotWidth is the least width of one scheduler's bar and label:
	// with more schedulers than fit, the panels widen, so that names
	// such as "interactive" and "scx_simple" do not run into each other.
	slotWidth   = 2.2 * vg.Centimeter
	panelHeight = 8 * vg.Centimeter
	titleHeight = 1.8 * vg.Centimeter
)

// chartPalette colours the schedulers' bars, the default's grey.
var chartPalette = []color.Color{
	color.RGBA{R: 0x99, G: 0x99, B: 0x99, A: 0xff},
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
	color.RGBA{R: 0x8c, G: 0x56, B: 0x4b, A: 0xff},
	color.RGBA{R: 0xe3, G: 0x77, B: 0xc2, A: 0xff},
}

// WriteChart computes the report (Compute) and draws it in format, "svg"
// or "png": one panel per benchmark and metric, two panels a row, under a
// title naming the kernel, the vCPUs and the repetitions. A panel has a
// bar per scheduler, its median with the median's confidence interval as
// an error bar, and a dashed line at the default scheduler's median; under
// each bar, the scheduler's name and its ratio to the default ("×1.18"),
// followed by "better" or "worse" when the ratio's interval excludes 1
// and by "*" when there were too few runs for the level. A scheduler
// without values gets no bar and the label "no data".
func (r *Report) WriteChart(w io.Writer, format string) error {
	if format != "svg" && format != "png" {
		return fmt.Errorf("bench: chart: %w: format %q: want svg or png", ErrInvalid, format)
	}
	if err := r.Compute(); err != nil {
		return err
	}
	if len(r.Results) == 0 {
		return fmt.Errorf("bench: chart: %w: the report has no results", ErrInvalid)
	}

	var plots []*plot.Plot
	for i := 0; i < len(r.Results); {
		j := i
		for j < len(r.Results) && r.Results[j].Benchmark == r.Results[i].Benchmark &&
			r.Results[j].Metric.Name == r.Results[i].Metric.Name {
			j++
		}
		p, err := r.panel(r.Results[i:j])
		if err != nil {
			return err
		}
		plots = append(plots, p)
		i = j
	}

	cols := min(chartCols, len(plots))
	rows := (len(plots) + cols - 1) / cols
	width := vg.Length(cols) * r.panelWidth()
	height := vg.Length(rows)*panelHeight + titleHeight
	var c vg.CanvasWriterTo
	if format == "svg" {
		c = vgsvg.New(width, height)
	} else {
		c = vgimg.PngCanvas{Canvas: vgimg.New(width, height)}
	}
	dc := draw.New(c)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())

	title := draw.TextStyle{
		Color:   color.Black,
		Font:    font.From(plot.DefaultFont, 14),
		XAlign:  draw.XCenter,
		YAlign:  draw.YTop,
		Handler: plot.DefaultTextHandler,
	}
	pct := strings.TrimSuffix(fmt.Sprintf("%.4g", 100*r.Level), ".") + "%"
	dc.FillText(title, vg.Point{X: dc.Center().X, Y: dc.Max.Y - 0.3*vg.Centimeter},
		fmt.Sprintf("scxkit bench: %s\nmedians with %s intervals; ×: ratio to default", r.title(), pct))

	body := draw.Crop(dc, 0, 0, 0, -titleHeight)
	tiles := draw.Tiles{Rows: rows, Cols: cols, PadX: 0.3 * vg.Centimeter, PadY: 0.3 * vg.Centimeter,
		PadLeft: 0.2 * vg.Centimeter, PadRight: 0.3 * vg.Centimeter, PadBottom: 0.2 * vg.Centimeter}
	for i, p := range plots {
		p.Draw(tiles.At(body, i%cols, i/cols))
	}
	if _, err := c.WriteTo(w); err != nil {
		return fmt.Errorf("bench: chart: write %s: %w", format, err)
	}
	return nil
}

// panelWidth is the width of one panel: panelWidth, or slotWidth per
// scheduler when that is more.
func (r *Report) panelWidth() vg.Length {
	return max(panelWidth, vg.Length(len(r.Schedulers))*slotWidth)
}

// panel draws the results rs of one benchmark and metric.
func (r *Report) panel(rs []Result) (*plot.Plot, error) {
	m := rs[0].Metric
	p := plot.New()
	p.Title.Text = rs[0].Benchmark + " " + m.Name
	p.Y.Label.Text = m.Unit + ", " + m.Better.String()
	if m.Unit == "" {
		p.Y.Label.Text = m.Better.String()
	}
	p.Y.Min = 0
	p.Y.Tick.Marker = plainTicks{}

	// plot's tick search never ends on a span beyond a float64's range.
	lo, hi := 0.0, 0.0
	for _, res := range rs {
		if s := res.Summary; s.N > 0 {
			lo, hi = min(lo, s.Lo, s.Median), max(hi, s.Hi, s.Median)
		}
	}
	if span := hi - lo; math.IsInf(span, 0) || math.IsNaN(span) {
		return nil, fmt.Errorf("bench: chart %s %s: %w: values from %g to %g span more than a float64 holds",
			rs[0].Benchmark, m.Name, ErrInvalid, lo, hi)
	}

	n := len(rs)
	barWidth := min(28*vg.Millimeter, r.panelWidth()*0.6/vg.Length(n))
	labels := make([]string, n)
	var bars plotter.XYs
	var errs plotter.YErrors
	for i, res := range rs {
		labels[i] = label(res, m.Better)
		s := res.Summary
		if s.N == 0 || !finiteAll(s.Median, s.Lo, s.Hi) {
			continue
		}
		b, err := plotter.NewBarChart(plotter.Values{s.Median}, barWidth)
		if err != nil {
			return nil, fmt.Errorf("bench: chart %s %s: %w", res.Benchmark, m.Name, err)
		}
		b.XMin = float64(i)
		b.Color = chartPalette[i%len(chartPalette)]
		b.LineStyle.Width = 0
		p.Add(b)
		bars = append(bars, plotter.XY{X: float64(i), Y: s.Median})
		errs = append(errs, struct{ Low, High float64 }{s.Median - s.Lo, s.Hi - s.Median})
	}
	if len(bars) > 0 {
		eb, err := plotter.NewYErrorBars(errorBars{bars, errs})
		if err != nil {
			return nil, fmt.Errorf("bench: chart %s %s: %w", rs[0].Benchmark, m.Name, err)
		}
		eb.LineStyle.Width = vg.Points(1)
		p.Add(eb)
	}
	if base := rs[0].Summary; rs[0].Scheduler == Default && base.N > 0 && finiteAll(base.Median) {
		line, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: base.Median}, {X: float64(n) - 0.5, Y: base.Median}})
		if err != nil {
			return nil, fmt.Errorf("bench: chart %s %s: %w", rs[0].Benchmark, m.Name, err)
		}
		line.LineStyle.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		line.LineStyle.Color = color.Gray{Y: 0x55}
		p.Add(line)
	}
	p.X.Min, p.X.Max = -0.5, float64(n)-0.5
	if p.Y.Max <= p.Y.Min { // no data, or only zeros
		p.Y.Max = p.Y.Min + 1
	}
	p.NominalX(labels...)
	return p, nil
}

// label is the text under a scheduler's bar.
func label(res Result, better Direction) string {
	switch q := res.Ratio; {
	case res.Summary.N == 0:
		return res.Scheduler + "\nno data"
	case q == nil:
		return res.Scheduler + "\nbase"
	case !q.Valid:
		return res.Scheduler + "\nratio n/a"
	default:
		s := res.Scheduler + "\n×" + ratioFormat([]float64{q.Ratio})(q.Ratio)
		if mk := mark(*q, better); mk != "" {
			s += " " + mk
		}
		if q.TooFew || res.Summary.TooFew {
			s += "*"
		}
		return s
	}
}

func finiteAll(vs ...float64) bool {
	for _, v := range vs {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}

// errorBars pairs points with their errors for plotter.NewYErrorBars.
type errorBars struct {
	plotter.XYs
	plotter.YErrors
}

// plainTicks are plot's default ticks, labelled without trailing zeros
// ("25000", not "25000.00").
type plainTicks struct{}

func (plainTicks) Ticks(lo, hi float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(lo, hi)
	for i, t := range ticks {
		if strings.Contains(t.Label, ".") && !strings.ContainsAny(t.Label, "eE") {
			ticks[i].Label = strings.TrimSuffix(strings.TrimRight(t.Label, "0"), ".")
		}
	}
	return ticks
}
