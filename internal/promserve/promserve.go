// Package promserve binds and serves Prometheus metrics for scxkit's
// commands: the checks of a listen address (which commands report as a
// usage error naming their flag) and an HTTP server of one collector at
// /metrics.
package promserve

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Listen checks addr, given with the flag named flag (e.g. "-metrics"),
// and binds it. An address without a host, or an unspecified one, serves
// every network interface without authentication: Listen warns on log,
// adding what, if set (e.g. "and name the profiled cgroups"). Its errors
// name the flag and the address and give an example; commands report them
// as usage errors.
func Listen(flag, addr, what string, log *slog.Logger) (net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %v: give HOST:PORT, e.g. %s 127.0.0.1:9100", flag, addr, err, flag)
	}
	if port == "" {
		return nil, fmt.Errorf("%s %q: no port: give HOST:PORT, e.g. %s 127.0.0.1:9100", flag, addr, flag)
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return nil, fmt.Errorf("%s %q: port %q: not a port number (0 to 65535) or service name: give one, e.g. %s 127.0.0.1:9100", flag, addr, port, flag)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		msg := flag + ": metrics are served on every network interface, without authentication"
		if what != "" {
			msg += ", " + what
		}
		log.Warn(msg+"; give 127.0.0.1:PORT to serve this machine only", "addr", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %v: give an address of this machine with a free port, e.g. %s 127.0.0.1:9100", flag, addr, err, flag)
	}
	return ln, nil
}

// Serve serves c at http://ADDR/metrics on ln, in OpenMetrics when the
// scraper asks for it, until the returned server is closed.
func Serve(ln net.Listener, c prometheus.Collector) *http.Server {
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return srv
}
