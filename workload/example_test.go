//go:build linux

package workload_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/scxkit/scxkit/workload"
)

// Run a small workload and tell a stall apart from other failures. The
// report holds timings, which differ from run to run, so this example has
// no Output and only compiles.
func ExampleRun() {
	rep, err := workload.Run(context.Background(), workload.Config{
		Spinners:   4,
		SpinWork:   100,
		RoundTrips: 500,
		Deadline:   10 * time.Second,
	})
	var inc *workload.IncompleteError
	if errors.As(err, &inc) {
		// Some thread got too little CPU time, or was never woken.
		for _, t := range inc.Unfinished {
			fmt.Printf("starved: %s %d did %d/%d\n", t.Kind, t.ID, t.Done, t.Want)
		}
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(rep)
}

// Measure the wakeup latency of request threads that are alone in a
// threaded cgroup (which a scheduler under test may give a class of its
// own), starting when another process says so. It needs the cgroup and
// that other process, and its latencies differ from run to run, so it has
// no Output and only compiles.
func ExampleRequests() {
	const cgroup = "/sys/fs/cgroup/lat/req" // a threaded cgroup
	rep, err := workload.Requests(context.Background(), workload.RequestConfig{
		Threads:  4,
		Period:   5 * time.Millisecond,
		Work:     200 * time.Microsecond,
		Duration: 3 * time.Second,
		// Move each request thread, alone, into the cgroup: the rest of
		// the process stays where it is.
		ThreadSetup: func(int) error {
			tid := []byte(strconv.Itoa(unix.Gettid()))
			return os.WriteFile(filepath.Join(cgroup, "cgroup.threads"), tid, 0)
		},
		// Tell the other process, which reads stdout, and wait for its
		// go-ahead: the end of stdin.
		Ready: func() error {
			fmt.Println("ready")
			_, err := io.Copy(io.Discard, os.Stdin)
			return err
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d requests: p50 %v, p99 %v, max %v\n", rep.Requests, rep.Percentile(50), rep.Percentile(99), rep.Percentile(100))
}
