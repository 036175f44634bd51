// Package behavior is the userspace half of scxkit's behavior component
// (bpf/include/scxkit/behavior.bpf.h): it tells latency-sensitive tasks
// from CPU-bound ones by how they run, without any configuration, and
// lets the first preempt the second when they wake up.
//
// The kernel's default scheduler gives a task that wakes after a sleep a
// short wait: it preempts a task that has had more than its share of the
// CPU. A sched_ext scheduler that only queues wakeups makes them wait for
// the running task's slice to end, milliseconds on a busy machine. This
// component gives a scheduler that wakeup preemption, but only where it
// pays: for tasks that wake, run briefly and sleep again.
//
// # Glossary
//
//   - Burst: the CPU time a task uses from one wakeup until it sleeps
//     again. A task that never sleeps is in one endless burst.
//   - Burst average: a decaying average of a task's bursts (each new burst
//     weighs a quarter, and counts as at most twice Options.ShortBurst, so
//     that one long burst does not reclassify a task; three in a row do).
//     A task's current burst counts once it outgrows the average, so a
//     CPU-bound task's average climbs while it runs.
//   - Latency-sensitive: a task whose burst average is below
//     Options.ShortBurst.
//   - Sync wakeup: a wakeup whose waker says it will sleep soon
//     (SCX_WAKE_SYNC): pipe and socket writes, futex handoffs. Such a
//     wakeup never preempts: producer and consumer would preempt each
//     other at every message, which costs message-passing work (hackbench)
//     several times its run time. It may follow the waker to its CPU
//     instead (affine), to run there once the waker sleeps.
//   - Victim: a task a latency-sensitive wakeup may preempt: it has run at
//     least Options.VictimMinRun since it last woke, and its burst average
//     or its current burst is not short.
//
// # Use
//
// A *Tracker is a component (scx.Component) named "behavior". The
// scheduler's object includes scxkit/behavior.bpf.h and calls its hooks
// (the header's comment lists them):
//
//	tracker, err := behavior.New(nil) // defaults
//	cfg := scx.Config{Components: []scx.Component{topo, layout, tracker}}
//
// It owns no callback and needs no DSQ: the scheduler's ops.enqueue asks
// sk_behavior_preempt_wakeup first and queues the task as usual when it
// declines, so it combines with any queueing component (dsq, lb).
// Its stats (Counters) count wakeups by kind and preemptions.
package behavior

import (
	"errors"
	"fmt"
	"sync"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"

	"github.com/scxkit/scxkit/internal/percpu"
	"github.com/scxkit/scxkit/scx"
)

// ErrInvalid is wrapped by the errors about invalid Options.
var ErrInvalid = errors.New("invalid behavior options")

// Defaults of Options.
const (
	// DefaultShortBurst: a task that runs under half a millisecond per
	// wakeup on average is latency-sensitive. Timer, input and request
	// handling tasks run microseconds; a task that runs longer has work
	// to do that a slice of waiting hardly delays in proportion.
	DefaultShortBurst = 500 * time.Microsecond
	// DefaultVictimMinRun: a task that ran a millisecond since it woke
	// may be preempted, like the fair class's minimum granularity: it
	// got some work done before it is interrupted.
	DefaultVictimMinRun = time.Millisecond
)

// Options configure a Tracker. The zero value takes the defaults.
type Options struct {
	// ShortBurst: tasks whose burst average is below it are
	// latency-sensitive (DefaultShortBurst when 0).
	ShortBurst time.Duration
	// VictimMinRun: how long a task must have run since it last woke
	// before a latency-sensitive wakeup may preempt it
	// (DefaultVictimMinRun when 0).
	VictimMinRun time.Duration
	// NoPreempt classifies and counts only: latency-sensitive wakeups
	// are queued like the others. For comparing with and without.
	NoPreempt bool
	// NoAffine keeps sync wakeups off the waker's CPU.
	NoAffine bool
}

func (o *Options) withDefaults() Options {
	var d Options
	if o != nil {
		d = *o
	}
	if d.ShortBurst == 0 {
		d.ShortBurst = DefaultShortBurst
	}
	if d.VictimMinRun == 0 {
		d.VictimMinRun = DefaultVictimMinRun
	}
	return d
}

// Validate reports whether o can configure a Tracker.
func (o Options) Validate() error {
	d := o.withDefaults()
	if d.ShortBurst < 0 || d.ShortBurst > time.Second {
		return fmt.Errorf("ShortBurst %v: %w: give a duration from 1ns to 1s (default %v)", o.ShortBurst, ErrInvalid, DefaultShortBurst)
	}
	if d.VictimMinRun < 0 || d.VictimMinRun > time.Second {
		return fmt.Errorf("VictimMinRun %v: %w: give a duration from 1ns to 1s (default %v)", o.VictimMinRun, ErrInvalid, DefaultVictimMinRun)
	}
	return nil
}

// Counters are the component's counts since the scheduler was loaded,
// summed over CPUs.
type Counters struct {
	// Wakeups counts wakeups through ops.select_cpu (a task that may
	// run on one CPU only skips it); SyncWakeups those whose waker was
	// about to sleep; Affine the sync wakeups placed on the waker's CPU.
	Wakeups, SyncWakeups, Affine uint64
	// Sensitive counts non-sync wakeups of latency-sensitive tasks;
	// Preempted those that preempted a victim, NoVictim those that found
	// none and were queued.
	Sensitive, Preempted, NoVictim uint64
}

// Tracker is the behavior component. Build it with New.
type Tracker struct {
	opts Options

	mu    sync.Mutex
	objs  objects
	stats *percpu.Reader[uint32, behaviortypesSkBehaviorCounters]
	bound bool
}

// objects are what behavior.bpf.h defines and the Tracker uses.
type objects struct {
	Conf  *ebpf.Variable `ebpf:"sk_behavior_conf"`
	Stats *ebpf.Map      `ebpf:"sk_behavior_stats"`
}

// New returns a Tracker with opts (nil: the defaults).
func New(opts *Options) (*Tracker, error) {
	d := opts.withDefaults()
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("behavior: %w", err)
	}
	return &Tracker{opts: d}, nil
}

// Options returns the Tracker's options, defaults filled in.
func (t *Tracker) Options() Options { return t.opts }

// Name implements scx.Component: "behavior".
func (t *Tracker) Name() string { return "behavior" }

// Needs implements scx.Component: the hooks of behavior.bpf.h in
// ops.select_cpu, ops.enqueue, ops.running and ops.stopping. It owns nothing: the scheduler queues every task the
// component does not place.
func (t *Tracker) Needs() scx.Needs {
	return scx.Needs{
		Callbacks: []string{"select_cpu", "enqueue", "running", "stopping"},
		Objects:   (*objects)(nil),
		Header:    "scxkit/behavior.bpf.h",
	}
}

// Bind implements scx.Component: it writes the options into
// sk_behavior_conf. Load calls it after every load, before attach.
func (t *Tracker) Bind(b *scx.Binding) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.bound = false
	if err := b.Assign(&t.objs); err != nil {
		return err
	}
	var conf behaviortypesSkBehaviorConf
	if size := uint32(unsafe.Sizeof(conf)); t.objs.Conf.Size() != size {
		return fmt.Errorf("behavior: bind: sk_behavior_conf is %d bytes, this package expects %d: rebuild the object against this version of scxkit/behavior.h", t.objs.Conf.Size(), size)
	}
	conf.ShortBurstNs = uint64(t.opts.ShortBurst)
	conf.VictimMinRunNs = uint64(t.opts.VictimMinRun)
	if t.opts.NoPreempt {
		conf.Flags |= uint32(behaviortypesSkBehaviorConstsSK_NO_PREEMPT)
	}
	if t.opts.NoAffine {
		conf.Flags |= uint32(behaviortypesSkBehaviorConstsSK_NO_AFFINE)
	}
	if err := t.objs.Conf.Set(&conf); err != nil {
		return fmt.Errorf("behavior: bind: sk_behavior_conf: %w", err)
	}
	n, err := ebpf.PossibleCPU()
	if err != nil {
		return fmt.Errorf("behavior: bind: %w", err)
	}
	if t.stats, err = percpu.New[uint32, behaviortypesSkBehaviorCounters](t.objs.Stats, n); err != nil {
		return fmt.Errorf("behavior: bind: sk_behavior_stats: %w", err)
	}
	t.bound = true
	return nil
}

// Read returns the counters, summed over CPUs; before Bind, an error
// wrapping scx.ErrNotBound.
func (t *Tracker) Read() (Counters, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.read()
}

func (t *Tracker) read() (Counters, error) {
	if !t.bound {
		return Counters{}, fmt.Errorf("behavior: read: %w", scx.ErrNotBound)
	}
	per, err := t.stats.Lookup(0)
	if err != nil {
		return Counters{}, fmt.Errorf("behavior: read sk_behavior_stats: %w", err)
	}
	var c Counters
	for i := range per {
		v := &per[i]
		c.Wakeups += v.Wakeups
		c.SyncWakeups += v.SyncWakeups
		c.Affine += v.Affine
		c.Sensitive += v.Sensitive
		c.Preempted += v.Preempted
		c.NoVictim += v.NoVictim
	}
	return c, nil
}

// Indexes of Stats.
const (
	statWakeups = iota
	statSync
	statAffine
	statSensitive
	statPreempted
	statNoVictim
)

// Stats implements scx.Reporter: the fields of Counters.
func (t *Tracker) Stats() []scx.StatDesc {
	return []scx.StatDesc{
		statWakeups:   {Name: "wakeups", Help: "Wakeups through ops.select_cpu (a task that may run on one CPU only skips it).", Kind: scx.Counter},
		statSync:      {Name: "sync_wakeups", Help: "Wakeups whose waker was about to sleep (SCX_WAKE_SYNC); they never preempt.", Kind: scx.Counter},
		statAffine:    {Name: "affine", Help: "Sync wakeups placed on the waker's CPU, to run once the waker sleeps.", Kind: scx.Counter},
		statSensitive: {Name: "sensitive_wakeups", Help: "Non-sync wakeups of latency-sensitive tasks (short run bursts).", Kind: scx.Counter},
		statPreempted: {Name: "preempted", Help: "Latency-sensitive wakeups that preempted a longer-running task.", Kind: scx.Counter},
		statNoVictim:  {Name: "no_victim", Help: "Latency-sensitive wakeups that found no task to preempt and were queued.", Kind: scx.Counter},
	}
}

// ReadStats implements scx.Reporter.
func (t *Tracker) ReadStats(dst []scx.Sample) ([]scx.Sample, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, err := t.read()
	if err != nil {
		return dst, err
	}
	return append(dst,
		scx.Sample{Stat: statWakeups, Value: float64(c.Wakeups)},
		scx.Sample{Stat: statSync, Value: float64(c.SyncWakeups)},
		scx.Sample{Stat: statAffine, Value: float64(c.Affine)},
		scx.Sample{Stat: statSensitive, Value: float64(c.Sensitive)},
		scx.Sample{Stat: statPreempted, Value: float64(c.Preempted)},
		scx.Sample{Stat: statNoVictim, Value: float64(c.NoVictim)},
	), nil
}

var _ scx.Reporter = (*Tracker)(nil)
