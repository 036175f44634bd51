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

// Errors name the line and the fix, and wrap ErrInvalidConfig.
func ExampleParse_errors() {
	for _, text := range []string{
		"web cgroup=/web slice=0",
		"web cgroup=/web\nbatch cgroup=/web",
		"web cgroup=/web wakeup=sometimes",
	} {
		_, err := preempt.Parse([]byte(text))
		fmt.Println(errors.Is(err, preempt.ErrInvalidConfig), err)
	}
	// Output:
	// true preempt config line 1: class "web": slice=0: must be positive
	// true preempt config line 2: class "batch": cgroup /web is also in class "web": its tasks would be in two classes; list it once
	// true preempt config line 1: class "web": wakeup=sometimes: want never, lower or after:DURATION
}

// A Controller sets the policy of a loaded scheduler that includes
// preempt.bpf.h, before and after it attaches, and reads its counters.
// This needs root and a sched_ext kernel, so it has no Output and only
// compiles; examples/interactive is the whole program, tested in a VM.
func ExampleController() {
	var spec *scx.Spec // from scx.Open with the scheduler's objects
	sched, err := spec.Load(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer sched.Close()
	ctl, err := preempt.NewController(sched.Collection(), nil)
	if err != nil {
		log.Fatal(err)
	}
	cfg, err := preempt.ParseFile("/etc/scxkit/classes.conf")
	if err != nil {
		log.Fatal(err)
	}
	if err := ctl.Apply(cfg); err != nil {
		log.Fatal(err)
	}
	if err := sched.Attach(); err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	go ctl.Watch(ctx, "/etc/scxkit/classes.conf", time.Second, func(cfg *preempt.Config, err error) {
		if err != nil {
			log.Printf("kept the policy in force: %v", err)
		}
	})
	if _, err := sched.Run(ctx, nil); err != nil {
		log.Fatal(err)
	}
	stats, err := ctl.Read(nil)
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range stats {
		fmt.Println(&s)
	}
}
