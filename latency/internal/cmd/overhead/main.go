// Command overhead measures what a latency.Profiler costs a wakeup-heavy
// workload: a pipe ping-pong between two threads (as perf bench sched pipe),
// run alternately without and with a Profiler attached, several times. It
// prints the median time per round trip of each and their ratio. Each round
// trip is two wakeups and two context switches, so it is about the worst
// case for the profiler's tracepoints. It needs root.
//
//	go run ./latency/internal/cmd/overhead [-rounds N] [-runs N] [-cpu C] [-cgroup PATH]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/scxkit/scxkit/latency"
)

func main() {
	rounds := flag.Int("rounds", 100_000, "round trips per run")
	runs := flag.Int("runs", 7, "runs with and without the profiler each")
	cpu := flag.Int("cpu", 0, "pin both threads to this CPU (-1: do not pin)")
	cgroup := flag.String("cgroup", "", "profile only this cgroup (default: every cgroup)")
	flag.Parse()
	if err := run(*rounds, *runs, *cpu, *cgroup); err != nil {
		fmt.Fprintln(os.Stderr, "overhead:", err)
		os.Exit(1)
	}
}

func run(rounds, runs, cpu int, cgroup string) error {
	var opts latency.Options
	if cgroup != "" {
		opts.Cgroups = []string{cgroup}
	}
	var without, with []time.Duration
	pingPong(cpu, rounds/10) // warm up
	for i := range runs {
		d, err := pingPong(cpu, rounds)
		if err != nil {
			return err
		}
		without = append(without, d)

		p, err := latency.Start(context.Background(), &opts)
		if err != nil {
			return err
		}
		d, err = pingPong(cpu, rounds)
		snap, serr := p.Read(nil)
		p.Close()
		if err != nil {
			return err
		}
		if serr != nil {
			return serr
		}
		var waits uint64
		for _, s := range snap {
			waits += s.Waits()
		}
		with = append(with, d)
		fmt.Printf("run %d: without %v/round trip, with %v/round trip (%d waits counted)\n",
			i+1, without[i]/time.Duration(rounds), d/time.Duration(rounds), waits)
	}
	mw, mp := median(without), median(with)
	fmt.Printf("median of %d runs of %d round trips: without %v/round trip, with %v/round trip, ratio %.3f\n",
		runs, rounds, mw/time.Duration(rounds), mp/time.Duration(rounds), float64(mp)/float64(mw))
	return nil
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// pingPong bounces one byte between two threads through two pipes, rounds
// times, and returns the time it took. Raw blocking file descriptors keep
// Go's poller out: every read that waits blocks its thread in the kernel.
func pingPong(cpu, rounds int) (time.Duration, error) {
	var a, b [2]int
	if err := unix.Pipe2(a[:], unix.O_CLOEXEC); err != nil {
		return 0, err
	}
	if err := unix.Pipe2(b[:], unix.O_CLOEXEC); err != nil {
		return 0, err
	}
	defer func() {
		for _, fd := range []int{a[0], a[1], b[0], b[1]} {
			unix.Close(fd)
		}
	}()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		pin(cpu)
		buf := []byte{0}
		for range rounds {
			if _, err := unix.Read(a[0], buf); err != nil {
				errc <- err
				return
			}
			if _, err := unix.Write(b[1], buf); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	pin(cpu)
	buf := []byte{0}
	start := time.Now()
	for range rounds {
		if _, err := unix.Write(a[1], buf); err != nil {
			return 0, err
		}
		if _, err := unix.Read(b[0], buf); err != nil {
			return 0, err
		}
	}
	d := time.Since(start)
	return d, <-errc
}

func pin(cpu int) {
	if cpu < 0 {
		return
	}
	var set unix.CPUSet
	set.Set(cpu)
	unix.SchedSetaffinity(0, &set)
}
