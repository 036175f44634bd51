package preempt_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/scxkit/scxkit/preempt"
	"github.com/scxkit/scxkit/scx"
)

// Parse reads classes from text, highest priority first; the default
// class goes above the first background class unless placed explicitly.
func ExampleParse() {
	cfg, err := preempt.Parse([]byte(`
# Requests preempt everything below them.
web    cgroup=/web comm=nginx   wakeup=lower slice=3ms
# Short jobs that must not be interrupted, but may preempt the scrubber.
jobs   cgroup=/jobs             nopreempt slice=10ms
# Everyone may preempt it; it runs on while nothing else waits.
scrub  cgroup=/system.slice/scrub.service background slice=50ms tick=runon
`))
	if err != nil {
		log.Fatal(err)
	}
	for i, k := range cfg.Classes {
		fmt.Printf("%d %s: wakeup=%v slice=%v tick=%v nopreempt=%v background=%v\n",
			i, k.Name, k.Wakeup, k.Slice, k.Tick, k.NoPreempt, k.Background)
	}
	fmt.Print(cfg)
	// Output:
	// 0 web: wakeup=lower slice=3ms tick=yield nopreempt=false background=false
	// 1 jobs: wakeup=never slice=10ms tick=yield nopreempt=true background=false
	// 2 scrub: wakeup=never slice=50ms tick=runon nopreempt=false background=true
	// web cgroup=/web comm=nginx wakeup=lower slice=3ms
	// jobs cgroup=/jobs slice=10ms nopreempt
	// scrub cgroup=/system.slice/scrub.service slice=50ms tick=runon background
}

// Errors name the line and the fix, and wrap ErrInvalid.
func ExampleParse_errors() {
	for _, text := range []string{
		"web cgroup=/web slice=0",
		"web cgroup=/web\nbatch cgroup=/web",
		"web cgroup=/web wakeup=sometimes",
	} {
		_, err := preempt.Parse([]byte(text))
		fmt.Println(errors.Is(err, preempt.ErrInvalid), err)
	}
	// Output:
	// true preempt config line 1: class "web": slice=0: must be positive
	// true preempt config line 2: class "batch": cgroup /web is also in class "web": its tasks would be in two classes; list it once
	// true preempt config line 1: class "web": wakeup=sometimes: want never, lower or after:DURATION
}

// A Controller is a component of the scheduler: New builds it from a
// Config without a kernel, the scheduler lists it in scx.Config.Components,
// and Load binds it (writing the policy) before the scheduler attaches.
// While the scheduler runs, Serve runs its watcher of the config file,
// and ReadSnapshot includes its per-class stats. This needs root and a
// sched_ext kernel, so it has no Output and only compiles;
// examples/interactive is the whole program, tested in a VM.
func ExampleNew() {
	const file = "/etc/scxkit/classes.conf"
	cfg, err := preempt.ParseFile(file)
	if err != nil {
		log.Fatal(err)
	}
	ctl, err := preempt.New(cfg, &preempt.Options{ConfigFile: file, WatchInterval: time.Second})
	if err != nil {
		log.Fatal(err)
	}
	var objs scx.Objects // the scheduler's: scx.Objects{Base: loadX, V2: loadXV2}
	spec, err := scx.Open(objs, scx.Config{Name: "classy", Components: []scx.Component{ctl}})
	if err != nil {
		log.Fatal(err) // e.g. a *scx.ConflictError: Config.Flags sets SCX_OPS_ENQ_LAST
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	go func() {
		// Any time after the load: a new policy, in force at once.
		time.Sleep(10 * time.Second)
		batch, _ := preempt.Parse([]byte("batch cgroup=/batch background slice=50ms\n"))
		if err := ctl.Write(batch); err != nil {
			log.Printf("kept the policy in force: %v", err)
		}
	}()
	var stats []preempt.ClassStats
	_, err = scx.Serve(ctx, spec, &scx.ServeOptions{Run: &scx.RunOptions{
		StatsInterval: time.Second,
		OnSnapshot: func(*scx.Snapshot) {
			stats, _ = ctl.Read(stats)
			for i := range stats {
				fmt.Println(&stats[i])
			}
		},
	}})
	if err != nil {
		log.Fatal(err)
	}
}

// What a Controller asks of the scheduler, and its stats. Its methods
// that read or write the scheduler fail with scx.ErrNotBound until it is
// bound.
func ExampleController_Needs() {
	ctl, err := preempt.New(nil, nil)
	if err != nil {
		log.Fatal(err)
	}
	n := ctl.Needs()
	fmt.Println("forbids:", n.Forbids)
	fmt.Println("callbacks:", n.Callbacks)
	fmt.Println("owns:", n.Owns, "DSQs:", n.DSQs)
	for _, d := range ctl.Stats() {
		if d.Label != "" {
			fmt.Printf("%s %s per %s\n", d.Kind, d.Name, d.Label)
		} else {
			fmt.Printf("%s %s\n", d.Kind, d.Name)
		}
	}
	_, err = ctl.Read(nil)
	fmt.Println(errors.Is(err, scx.ErrNotBound))
	// Output:
	// forbids: [SCX_OPS_ENQ_LAST]
	// callbacks: [select_cpu runnable enqueue dispatch running stopping tick yield enable init]
	// owns: [enqueue dispatch] DSQs: 16
	// gauge generation
	// counter kicks per class
	// counter preempted per class
	// counter kept per class
	// counter run_ons per class
	// counter starved per class
	// counter runtime_ns per class
	// counter wakeups per class
	// counter wait_ns per class
	// gauge wait_p50_ns per class
	// gauge wait_p99_ns per class
	// true
}
