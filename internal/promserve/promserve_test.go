package promserve

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestListenRefuses(t *testing.T) {
	busy, err := Listen("-metrics", "127.0.0.1:0", "", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, c := range []struct{ addr, want string }{
		{"bogus", `-metrics "bogus": address bogus: missing port in address: give HOST:PORT, e.g. -metrics 127.0.0.1:9100`},
		{"127.0.0.1:", `-metrics "127.0.0.1:": no port`},
		{"127.0.0.1:http-nope", `port "http-nope": not a port number`},
		{busy.Addr().String(), "give an address of this machine with a free port"},
	} {
		ln, err := Listen("-metrics", c.addr, "", slog.New(slog.DiscardHandler))
		if err == nil {
			ln.Close()
			t.Errorf("Listen(%q) succeeded", c.addr)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("Listen(%q) = %v, want %q", c.addr, err, c.want)
		}
	}
}

func TestListenWarnsEveryInterface(t *testing.T) {
	var logs bytes.Buffer
	ln, err := Listen("--listen", ":0", "and name the profiled cgroups", slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if !strings.Contains(logs.String(), "every network interface, without authentication, and name the profiled cgroups") {
		t.Errorf("no warning for every interface: %q", logs.String())
	}
}

func TestServe(t *testing.T) {
	ln, err := Listen("-metrics", "127.0.0.1:0", "", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "scxkit_test_total", Help: "A test counter."})
	c.Add(3)
	srv := Serve(ln, c)
	defer srv.Close()
	resp, err := http.Get("http://" + ln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), "scxkit_test_total 3") {
		t.Errorf("scrape:\n%s\nlacks scxkit_test_total 3", body)
	}
}
