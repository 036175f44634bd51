package runner

import (
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scxkit/scxkit/internal/promserve"
	"github.com/scxkit/scxkit/scx"
)

// Source is where the stats servers (Prometheus, the scx_stats socket)
// read a scheduler's stats. Run's source is the scheduler attached now;
// tests and other programs may give their own.
type Source interface {
	// ReadSnapshot fills dst with every stat of the scheduler now,
	// reusing dst's slices, and returns true; or it returns false when
	// there is no scheduler to read (none attached yet, or a restart
	// under way). It is called from any goroutine.
	ReadSnapshot(dst *scx.Snapshot) (bool, error)
}

// SourceFunc adapts a function to a Source.
type SourceFunc func(dst *scx.Snapshot) (bool, error)

// ReadSnapshot calls f.
func (f SourceFunc) ReadSnapshot(dst *scx.Snapshot) (bool, error) { return f(dst) }

// MetricName returns the Prometheus name of a stat: scxkit_sched_NAME for
// the scheduler's own stats (component ""), scxkit_COMPONENT_NAME for a
// component's stats, with _total appended to a Counter's name (unless it
// ends so already), as Prometheus names counters.
func MetricName(component, name string, kind scx.StatKind) string {
	if component == "" {
		component = "sched"
	}
	n := "scxkit_" + component + "_" + name
	if kind == scx.Counter && !strings.HasSuffix(n, "_total") {
		n += "_total"
	}
	return n
}

// SchedulerLabel is the label every metric of NewCollector carries: the
// scheduler's ops name (scx.Snapshot.Scheduler), e.g. "simple_fifo".
const SchedulerLabel = "scheduler"

// NewCollector returns a Prometheus collector that reads src at every
// scrape and exports every stat of the snapshot, named by MetricName:
//
//	scxkit_sched_enqueued_total{scheduler="simple"} 1520
//	scxkit_dsq_queued{domain="0",scheduler="domains"} 2
//
// A Counter becomes a counter, a Gauge a gauge, and the StatDesc's Help
// the metric's help. A vector stat carries its StatDesc.Label as a label
// (renamed exported_scheduler if it is "scheduler"). When src has no
// scheduler, or reading it fails (logged to log, nil for slog.Default),
// the scrape holds no scheduler metric: no error page. Should two stats
// map to one name (a component called "sched", or components "a_b" and
// "a" with stats "c" and "b_c"), the first in the snapshot's order keeps
// it and the other is left out; so does a counter x beside a counter
// x_total.
//
// The collector is unchecked: it describes no metric in advance, as the
// metrics depend on the scheduler attached.
func NewCollector(src Source, log *slog.Logger) prometheus.Collector {
	if log == nil {
		log = slog.Default()
	}
	return &collector{src: src, log: log, descs: map[descKey]*prometheus.Desc{}}
}

type collector struct {
	src Source
	log *slog.Logger

	mu    sync.Mutex // guards what follows: one scrape at a time
	snap  scx.Snapshot
	descs map[descKey]*prometheus.Desc
	owner map[string]string   // metric name -> component and stat, for this scrape
	seen  map[string]struct{} // name and label value, for this scrape
}

// descKey identifies a metric description: the same stat of the same
// scheduler keeps its *prometheus.Desc across scrapes.
type descKey struct {
	scheduler, component string
	desc                 scx.StatDesc
}

// Describe describes nothing: the collector is unchecked.
func (c *collector) Describe(chan<- *prometheus.Desc) {}

// Collect reads the source and sends one metric per sample.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ok, err := c.src.ReadSnapshot(&c.snap)
	if err != nil {
		c.log.Warn("metrics: reading the scheduler's stats failed", "err", err)
		return
	}
	if !ok {
		return
	}
	clear(c.seen)
	clear(c.owner)
	if c.seen == nil {
		c.seen, c.owner = map[string]struct{}{}, map[string]string{}
	}
	snap := &c.snap
	for i := range snap.Sets {
		set := &snap.Sets[i]
		for _, smp := range set.Samples {
			if smp.Stat < 0 || smp.Stat >= len(set.Descs) {
				continue
			}
			d := set.Descs[smp.Stat]
			name := MetricName(set.Component, d.Name, d.Kind)
			owner := set.Component + "\x00" + d.Name
			if o, taken := c.owner[name]; taken && o != owner {
				continue
			}
			c.owner[name] = owner
			seenKey := name + "\x00" + smp.Label
			if _, dup := c.seen[seenKey]; dup {
				continue
			}
			c.seen[seenKey] = struct{}{}
			key := descKey{snap.Scheduler, set.Component, d}
			desc := c.descs[key]
			if desc == nil {
				var labels []string
				if d.Label != "" {
					l := d.Label
					if l == SchedulerLabel {
						l = "exported_" + l
					}
					labels = []string{l}
				}
				desc = prometheus.NewDesc(name, d.Help, labels, prometheus.Labels{SchedulerLabel: snap.Scheduler})
				c.descs[key] = desc
			}
			vt := prometheus.GaugeValue
			if d.Kind == scx.Counter {
				vt = prometheus.CounterValue
			}
			var m prometheus.Metric
			if d.Label != "" {
				m, err = prometheus.NewConstMetric(desc, vt, smp.Value, smp.Label)
			} else {
				m, err = prometheus.NewConstMetric(desc, vt, smp.Value)
			}
			if err != nil {
				c.log.Debug("metrics: stat left out", "metric", name, "err", err)
				continue
			}
			ch <- m
		}
	}
}

// listenMetrics checks -metrics and binds it, before any kernel work: a
// bad address is a usage error.
func listenMetrics(addr string, log *slog.Logger) (net.Listener, error) {
	ln, err := promserve.Listen("-metrics", addr, "", log)
	return ln, Usage(err)
}

// serveMetrics serves src's stats at http://ADDR/metrics on ln until the
// returned server is closed.
func serveMetrics(ln net.Listener, src Source, log *slog.Logger) *http.Server {
	log.Info("serving metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	return promserve.Serve(ln, NewCollector(src, log))
}
