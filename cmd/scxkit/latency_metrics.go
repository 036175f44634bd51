package main

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scxkit/scxkit/latency"
)

// latencyCollector exports a latency.Profiler's running totals as
// Prometheus metrics, read at each scrape: the queueing delay as a native
// histogram type with the profiler's bucket bounds, and counters.
type latencyCollector struct {
	snapshot func([]latency.CgroupStats) ([]latency.CgroupStats, error)

	mu  sync.Mutex
	buf []latency.CgroupStats

	delay, waits, waitSeconds, onCPU, offCPU, outliers *prometheus.Desc
}

func newLatencyCollector(snapshot func([]latency.CgroupStats) ([]latency.CgroupStats, error)) *latencyCollector {
	l := []string{"cgroup", "cgroup_id"}
	return &latencyCollector{
		snapshot: snapshot,
		delay: prometheus.NewDesc("scxkit_latency_queue_delay_seconds",
			"Time the cgroup's tasks waited for a CPU, from wakeup or preemption to running.", l, nil),
		waits: prometheus.NewDesc("scxkit_latency_waits_total",
			"Waits for a CPU, by how they began (wakeup, preemption).", append(l, "kind"), nil),
		waitSeconds: prometheus.NewDesc("scxkit_latency_wait_seconds_total",
			"Queueing delay by what ran on the waiting task's CPU meanwhile (same_cgroup, other_cgroup, idle).", append(l, "occupant"), nil),
		onCPU: prometheus.NewDesc("scxkit_latency_oncpu_seconds_total",
			"Time the cgroup's tasks ran.", l, nil),
		offCPU: prometheus.NewDesc("scxkit_latency_offcpu_seconds_total",
			"Time the cgroup's tasks slept, blocked until woken.", l, nil),
		outliers: prometheus.NewDesc("scxkit_latency_outliers_total",
			"Waits above the outlier threshold, by whether they were sent (sent, lost).", append(l, "fate"), nil),
	}
}

func (c *latencyCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.delay, c.waits, c.waitSeconds, c.onCPU, c.offCPU, c.outliers} {
		ch <- d
	}
}

func (c *latencyCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var err error
	c.buf, err = c.snapshot(c.buf)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.delay, err)
		return
	}
	for i := range c.buf {
		s := &c.buf[i]
		path, id := s.Path, strconv.FormatUint(s.ID, 10)
		if path == "" {
			path = "(removed)"
		}
		h := &s.QueueDelay
		buckets := make(map[float64]uint64, len(h.Bounds))
		var cum uint64
		for j, b := range h.Bounds {
			cum += h.Counts[j]
			buckets[b.Seconds()] = cum
		}
		ch <- prometheus.MustNewConstHistogram(c.delay, h.Count(), h.Sum.Seconds(), buckets, path, id)
		ch <- prometheus.MustNewConstMetric(c.waits, prometheus.CounterValue, float64(s.Wakeups), path, id, "wakeup")
		ch <- prometheus.MustNewConstMetric(c.waits, prometheus.CounterValue, float64(s.Preemptions), path, id, "preemption")
		ch <- prometheus.MustNewConstMetric(c.waitSeconds, prometheus.CounterValue, s.SameCgroupWait.Seconds(), path, id, "same_cgroup")
		ch <- prometheus.MustNewConstMetric(c.waitSeconds, prometheus.CounterValue, s.OtherCgroupWait.Seconds(), path, id, "other_cgroup")
		ch <- prometheus.MustNewConstMetric(c.waitSeconds, prometheus.CounterValue, s.IdleWait.Seconds(), path, id, "idle")
		ch <- prometheus.MustNewConstMetric(c.onCPU, prometheus.CounterValue, s.OnCPU.Seconds(), path, id)
		ch <- prometheus.MustNewConstMetric(c.offCPU, prometheus.CounterValue, s.OffCPU.Seconds(), path, id)
		ch <- prometheus.MustNewConstMetric(c.outliers, prometheus.CounterValue, float64(s.Outliers), path, id, "sent")
		ch <- prometheus.MustNewConstMetric(c.outliers, prometheus.CounterValue, float64(s.OutliersLost), path, id, "lost")
	}
}
