package scxstats_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/scxkit/scxkit/scx/scxstats"
)

// A scheduler serves its stats; a client reads the metadata, then the
// stats. A real scheduler would use scxstats.DefaultPath(scxstats.DefaultName)
// (/var/run/scx/root/stats), where scx tools look.
func Example() {
	dir, err := os.MkdirTemp("", "scxs")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "stats")

	srv, err := scxstats.NewServer(path, &scxstats.ServerOptions{
		Metas: []scxstats.Meta{{
			Name: "Metrics",
			Desc: "example scheduler",
			Top:  scxstats.TopValue,
			Fields: map[string]scxstats.Field{
				"nr_dispatched": {Datum: scxstats.KindU64, Desc: "tasks dispatched"},
				"load":          {Datum: scxstats.KindFloat, Desc: "average load"},
			},
		}},
		Stats: func(map[string]string) (any, error) {
			return map[string]any{"nr_dispatched": 42, "load": 0.5}, nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()

	c, err := scxstats.Dial(ctx, path)
	if err != nil {
		log.Fatal(err)
	}
	var metas map[string]scxstats.Meta
	if err := c.Request(ctx, "stats_meta", nil, &metas); err != nil {
		log.Fatal(err)
	}
	m := metas["Metrics"]
	fmt.Printf("%s (top=%s): %s\n", m.Name, m.Top, m.Desc)
	for _, name := range []string{"load", "nr_dispatched"} {
		fmt.Printf("  %s (%v): %s\n", name, m.Fields[name], m.Fields[name].Desc)
	}

	var stats struct {
		NrDispatched uint64  `json:"nr_dispatched"`
		Load         float64 `json:"load"`
	}
	if err := c.Request(ctx, "stats", nil, &stats); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("nr_dispatched=%d load=%.1f\n", stats.NrDispatched, stats.Load)

	err = c.Request(ctx, "bogus", nil, nil)
	fmt.Println(err)

	c.Close()
	cancel()
	if err := <-served; err != nil {
		log.Fatal(err)
	}
	_, err = os.Stat(path)
	fmt.Println("socket removed:", os.IsNotExist(err))
	// Output:
	// Metrics (top=true): example scheduler
	//   load (float): average load
	//   nr_dispatched (u64): tasks dispatched
	// nr_dispatched=42 load=0.5
	// scxstats: "bogus" request failed: invalid argument (errno 22): unknown command "bogus"
	// socket removed: true
}
