package attachtest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/scxkit/scxkit/internal/percpu"
	"github.com/scxkit/scxkit/scx"
)

// Compose is compose.bpf.c: a scheduler whose queues belong to the
// stand-in component Tally.
var Compose = scx.Objects{Base: loadCompose, V2: loadComposeV2}

// maxTallyQueues is TALLY_MAX_DSQS of compose.bpf.c.
const maxTallyQueues = 8

// Tally is the Go half of compose.bpf.c's stand-in component: it owns
// Queues DSQs (allocated by scx.Open), turns its BPF half on at Bind, counts
// its rounds of periodic work and reports the tasks queued per DSQ.
type Tally struct {
	Queues int
	// FailStats makes ReadStats fail, to test that Run detaches then.
	FailStats atomic.Bool

	objs struct {
		Bound  *ebpf.Variable `ebpf:"tally_bound"`
		Queued *ebpf.Map      `ebpf:"tally_queued"`
	}
	dsqs   scx.DSQRange
	rounds atomic.Uint64
	queued *percpu.Reader[uint32, uint64]

	mu     sync.Mutex // guards what ReadStats reuses
	labels []string
	values []uint64
}

var errFailStats = errors.New("tally: stats failure asked for by the test")

// Name implements scx.Component.
func (t *Tally) Name() string { return "tally" }

// Needs implements scx.Component.
func (t *Tally) Needs() scx.Needs {
	return scx.Needs{
		DSQs:      t.Queues,
		DSQBase:   "tally_dsq_base",
		Constants: map[string]any{"tally_nr": uint32(t.Queues)},
		Callbacks: []string{"init", "enqueue"},
		Owns:      []string{"dispatch"},
		Objects:   &t.objs,
		Header:    "compose.bpf.c",
	}
}

// Bind implements scx.Component.
func (t *Tally) Bind(b *scx.Binding) error {
	if t.Queues < 1 || t.Queues > maxTallyQueues {
		return fmt.Errorf("tally: %d queues: want 1 to %d", t.Queues, maxTallyQueues)
	}
	if err := b.Assign(&t.objs); err != nil {
		return err
	}
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		return err
	}
	if t.queued, err = percpu.New[uint32, uint64](t.objs.Queued, cpus); err != nil {
		return err
	}
	t.dsqs = b.DSQs()
	t.labels = t.labels[:0]
	for i := range t.Queues {
		t.labels = append(t.labels, strconv.Itoa(i))
	}
	return t.objs.Bound.Set(uint32(1))
}

// Work implements scx.Worker: a round every 10ms that only counts itself.
func (t *Tally) Work() []scx.Periodic {
	return []scx.Periodic{{Name: "count", Every: 10 * time.Millisecond, Func: func(context.Context, *scx.Scheduler) error {
		t.rounds.Add(1)
		return nil
	}}}
}

// Stats implements scx.Reporter.
func (t *Tally) Stats() []scx.StatDesc {
	return []scx.StatDesc{
		{Name: "queued", Help: "Tasks tally queued, per DSQ index.", Kind: scx.Counter, Label: "dsq"},
		{Name: "rounds", Help: "Rounds of tally's periodic work.", Kind: scx.Counter},
		{Name: "first_dsq", Help: "The first DSQ id Open allocated to tally.", Kind: scx.Gauge},
	}
}

// ReadStats implements scx.Reporter.
func (t *Tally) ReadStats(dst []scx.Sample) ([]scx.Sample, error) {
	if t.FailStats.Load() {
		return dst, errFailStats
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range t.Queues {
		perCPU, err := t.queued.Lookup(uint32(i))
		if err != nil {
			return dst, fmt.Errorf("tally: read tally_queued[%d]: %w", i, err)
		}
		var sum uint64
		for _, v := range perCPU {
			sum += v
		}
		dst = append(dst, scx.Sample{Stat: 0, Label: t.labels[i], Value: float64(sum)})
	}
	dst = append(dst,
		scx.Sample{Stat: 1, Value: float64(t.rounds.Load())},
		scx.Sample{Stat: 2, Value: float64(t.dsqs.First)})
	return dst, nil
}

// Follower is a component that builds on Tally: it requires it, and its
// Bind finds it through the Binding, as lb finds the dsq layout.
type Follower struct {
	Found *Tally // the Tally its last Bind found
}

// Name implements scx.Component.
func (f *Follower) Name() string { return "follower" }

// Needs implements scx.Component.
func (f *Follower) Needs() scx.Needs { return scx.Needs{Requires: []string{"tally"}} }

// Bind implements scx.Component.
func (f *Follower) Bind(b *scx.Binding) error {
	c, ok := b.Required("tally")
	if !ok {
		return errors.New("follower: tally not found through the Binding")
	}
	if f.Found, ok = c.(*Tally); !ok {
		return fmt.Errorf("follower: tally is a %T", c)
	}
	if _, ok := b.Required("follower"); ok {
		return errors.New("follower: found a component it does not require")
	}
	return nil
}
