package scx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// ErrBusy is wrapped by the *BusyError of an attach that found another
// sched_ext scheduler in charge.
var ErrBusy = errors.New("another sched_ext scheduler is attached")

// ErrClosed is wrapped by the errors of reads from a closed Scheduler.
var ErrClosed = errors.New("scheduler closed")

// BusyError names the scheduler that prevented an attach.
type BusyError struct {
	Ops   string // root/ops of the attached scheduler, "" if the kernel did not say
	State State
}

func (e *BusyError) Error() string {
	name := e.Ops
	if name == "" {
		name = "(unnamed)"
	}
	return fmt.Sprintf("%v: %q (state %s): stop it before attaching another", ErrBusy, name, e.State)
}

func (e *BusyError) Unwrap() error { return ErrBusy }

// Scheduler is a loaded scheduler. Attach hands it the CPUs, Run watches it
// until it stops, and Close detaches it and frees its kernel objects. A
// process that dies without Close detaches too: the kernel drops the
// struct_ops link with the last file descriptor, and every task returns to
// the fair class.
type Scheduler struct {
	name   string
	kernel *Kernel
	coll   *ebpf.Collection
	ops    *ebpf.Map

	exitVar    *ebpf.Variable
	exitLayout *exitLayout
	exitConsts *exitConsts
	exitBuf    []byte
	exitOut    any // exitBuf, boxed once so that polling does not allocate

	stats    *statsReader // nil when the object has no sk_stats and no sk_gauges
	statsMu  sync.Mutex   // guards statsBuf
	statsBuf Stats

	// What the components bound: their periodic work and stats.
	work      []Periodic
	reporters []reporter

	// closeMu keeps Close from freeing the kernel objects while a stats
	// read (ReadSnapshot, from any goroutine) uses them; taken before mu.
	closeMu sync.RWMutex

	mu   sync.Mutex
	link link.Link
}

// bind binds every component, in order, to the loaded scheduler.
func (s *Scheduler) bind(comps []bound, log *slog.Logger) error {
	for i, b := range comps {
		name := b.c.Name()
		bd := &Binding{name: name, coll: s.coll, kernel: s.kernel, dsqs: b.dsqs,
			header: b.needs.Header, log: log.With("component", name)}
		for _, req := range b.needs.Requires {
			for _, o := range comps[:i] { // Open put them first
				if o.c.Name() == req {
					if bd.requires == nil {
						bd.requires = map[string]Component{}
					}
					bd.requires[req] = o.c
				}
			}
		}
		// Components name themselves in their errors ("dsq: ...",
		// MissingError's "component dsq: ...").
		if err := b.c.Bind(bd); err != nil {
			return fmt.Errorf("bind: %w", err)
		}
		if w, ok := b.c.(Worker); ok {
			for _, p := range w.Work() {
				if p.Every <= 0 || p.Func == nil {
					return fmt.Errorf("component %s: periodic %q needs Every > 0 and a Func", name, p.Name)
				}
				p.Name = name + ": " + p.Name
				s.work = append(s.work, p)
			}
		}
		if r, ok := b.c.(Reporter); ok {
			descs := slices.Clone(r.Stats())
			if err := checkStats(name, descs); err != nil {
				return err
			}
			s.reporters = append(s.reporters, reporter{name: name, r: r, descs: descs})
		}
	}
	return nil
}

func newScheduler(name string, k *Kernel, spec *ebpf.CollectionSpec, coll *ebpf.Collection) (*Scheduler, error) {
	ms, err := opsMap(spec)
	if err != nil {
		return nil, err
	}
	s := &Scheduler{name: name, kernel: k, coll: coll, ops: coll.Maps[ms.Name]}
	if s.ops == nil {
		return nil, fmt.Errorf("struct_ops map %s was not created", ms.Name)
	}
	s.exitVar = coll.Variables[varExitInfo]
	if s.exitVar == nil {
		return nil, fmt.Errorf("no %s variable after load", varExitInfo)
	}
	if s.exitLayout, err = newExitLayout(s.exitVar.Type().Type); err != nil {
		return nil, err
	}
	if s.exitConsts, err = newExitConsts(k.Enums); err != nil {
		return nil, err
	}
	s.exitBuf = make([]byte, s.exitVar.Size())
	s.exitOut = s.exitBuf
	if s.stats, err = openStats(spec, coll); err != nil {
		return nil, err
	}
	return s, nil
}

// Name returns the scheduler's ops name.
func (s *Scheduler) Name() string { return s.name }

// Kernel returns what Load found out about the kernel.
func (s *Scheduler) Kernel() *Kernel { return s.kernel }

// Collection returns the loaded maps, programs and variables, for
// components that share maps with the BPF side. It is closed by Close.
func (s *Scheduler) Collection() *ebpf.Collection { return s.coll }

// Attach makes the scheduler the kernel's sched_ext scheduler. It refuses
// with a *BusyError when another one is attached, and returns an
// *ExitError if the kernel ejected the scheduler while enabling it (an
// error in ops.init, for instance).
func (s *Scheduler) Attach() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.link != nil {
		return fmt.Errorf("attach %s: already attached", s.name)
	}
	if st, err := s.kernel.Status(); err != nil {
		return fmt.Errorf("attach %s: %w", s.name, err)
	} else if st.State != StateDisabled {
		return fmt.Errorf("attach %s: %w", s.name, &BusyError{Ops: st.Ops, State: st.State})
	}
	l, err := link.AttachStructOps(link.StructOpsOptions{Map: s.ops})
	if err != nil {
		if info, ok := s.exitedLocked(); ok {
			return fmt.Errorf("attach %s: %w", s.name, info.Err())
		}
		if st, serr := s.kernel.Status(); serr == nil && st.State != StateDisabled && st.Ops != s.name {
			return fmt.Errorf("attach %s: %w", s.name, &BusyError{Ops: st.Ops, State: st.State})
		}
		return fmt.Errorf("attach %s: %w", s.name, err)
	}
	s.link = l
	if info, ok := s.exitedLocked(); ok {
		s.detachLocked()
		if err := info.Err(); err != nil {
			return fmt.Errorf("attach %s: %w", s.name, err)
		}
		return fmt.Errorf("attach %s: scheduler exited while enabling: %s", s.name, info)
	}
	return nil
}

// RunOptions steers Run. A nil *RunOptions uses the defaults.
type RunOptions struct {
	// StatsInterval is how often OnStats is called; zero means every
	// second.
	StatsInterval time.Duration
	// OnStats, if set, receives the scheduler's own stats (the counters
	// and gauges of stats.bpf.h) every StatsInterval; it is not called
	// for an object that defines none. Run reads them once before the
	// first call, so each call's Stats has Delta and Rate for every
	// counter over the interval since the call before (Interval says how
	// long it was). The Stats value is reused: copy what you keep.
	//
	// The callback gets the Scheduler being run, so that it can read more
	// than its own stats (ReadSnapshot, a component's state, a map of
	// Collection) without closing over a Scheduler that does not exist
	// yet when the options are built, as with Serve, which loads a new
	// one at every restart.
	OnStats func(*Scheduler, *Stats)
	// OnSnapshot, if set, receives every stat of the scheduler and its
	// components (ReadSnapshot) every StatsInterval. The Snapshot is
	// reused: copy what you keep. A failed read stops the run: Run
	// detaches and returns the error.
	OnSnapshot func(*Snapshot)
	// Periodic work that runs alongside the scheduler, each on its own
	// goroutine, such as a userspace load balancer. An error from one
	// stops the run: Run detaches and returns it.
	Periodic []Periodic
}

// Periodic is work Run does every Every while the scheduler is attached.
type Periodic struct {
	Name  string // for errors
	Every time.Duration
	Func  func(context.Context, *Scheduler) error
}

// pollInterval is how often Run checks whether the kernel removed the
// scheduler.
const pollInterval = 50 * time.Millisecond

// Run watches an attached scheduler until ctx is done or the kernel removes
// it, then detaches it and returns why it stopped. The error is nil when
// ctx ended the run (an orderly unregistration), an *ExitError when the
// scheduler failed or exited on its own (errors.Is(err, ErrRestart) tells a
// restartable exit), or another error when the exit info cannot be read.
func (s *Scheduler) Run(ctx context.Context, opts *RunOptions) (*ExitInfo, error) {
	if opts == nil {
		opts = &RunOptions{}
	}
	interval := opts.StatsInterval
	if interval <= 0 {
		interval = time.Second
	}
	s.mu.Lock()
	attached := s.link != nil
	s.mu.Unlock()
	if !attached {
		return nil, fmt.Errorf("run %s: not attached", s.name)
	}

	periodic := slices.Concat(s.work, opts.Periodic)
	periodicCtx, stopPeriodic := context.WithCancel(ctx)
	periodicErr := make(chan error, len(periodic))
	var wg sync.WaitGroup
	defer func() {
		stopPeriodic()
		wg.Wait()
	}()
	for _, p := range periodic {
		if p.Every <= 0 || p.Func == nil {
			info, _ := s.stop()
			return info, fmt.Errorf("run %s: periodic %q needs Every > 0 and a Func", s.name, p.Name)
		}
	}
	for _, p := range periodic {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(p.Every)
			defer t.Stop()
			for {
				select {
				case <-periodicCtx.Done():
					return
				case <-t.C:
				}
				if err := p.Func(periodicCtx, s); err != nil && periodicCtx.Err() == nil {
					periodicErr <- fmt.Errorf("run %s: %s: %w", s.name, p.Name, err)
					return
				}
			}
		}()
	}

	poll := time.NewTicker(pollInterval)
	defer poll.Stop()
	var statsC <-chan time.Time
	var stats Stats
	var snap Snapshot
	if opts.OnStats != nil && s.stats != nil {
		// The baseline of the first call's deltas.
		if err := s.stats.read(&stats); err != nil {
			info, _ := s.stop()
			return info, fmt.Errorf("run %s: %w", s.name, err)
		}
	}
	if (opts.OnStats != nil && s.stats != nil) || opts.OnSnapshot != nil {
		t := time.NewTicker(interval)
		defer t.Stop()
		statsC = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return s.stop()
		case err := <-periodicErr:
			info, _ := s.stop()
			return info, err
		case <-poll.C:
			s.mu.Lock()
			_, ok := s.exitedLocked()
			s.mu.Unlock()
			if ok {
				return s.stop()
			}
		case <-statsC:
			// A failed read detaches first: Run always leaves the
			// kernel on the fair class.
			if opts.OnStats != nil && s.stats != nil {
				if err := s.stats.read(&stats); err != nil {
					info, _ := s.stop()
					return info, fmt.Errorf("run %s: %w", s.name, err)
				}
				opts.OnStats(s, &stats)
			}
			if opts.OnSnapshot != nil {
				if err := s.ReadSnapshot(&snap); err != nil {
					info, _ := s.stop()
					return info, fmt.Errorf("run %s: %w", s.name, err)
				}
				opts.OnSnapshot(&snap)
			}
		}
	}
}

// stop detaches and reads the final exit info.
func (s *Scheduler) stop() (*ExitInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.coll == nil {
		return nil, fmt.Errorf("run %s: the scheduler was closed while running", s.name)
	}
	s.detachLocked()
	info, ok := s.exitedLocked()
	if !ok {
		return nil, fmt.Errorf("run %s: detached, but ops.exit recorded nothing: call sk_exit_record(ei) in ops.exit", s.name)
	}
	return info, info.Err()
}

// exitedLocked reads sk_exit_info and reports whether ops.exit has run.
// s.mu must be held: the variable's memory goes away with Close.
func (s *Scheduler) exitedLocked() (*ExitInfo, bool) {
	if s.coll == nil {
		return nil, false
	}
	if err := s.exitVar.Get(s.exitOut); err != nil {
		return nil, false
	}
	return s.exitLayout.decode(s.exitBuf, s.exitConsts)
}

// ReadStats reads the scheduler's own stats into dst, reusing its slices:
// the counters and gauges of SK_STATS_DEFINE, summed over CPUs, then the
// gauges of SK_GAUGES_DEFINE. What dst held from an earlier ReadStats of
// this scheduler becomes its PrevTime and PrevValues (see Stats.Delta).
// It fails if the object defines neither. ReadSnapshot reads them
// together with the components' stats.
func (s *Scheduler) ReadStats(dst *Stats) error {
	if s.stats == nil {
		return fmt.Errorf("stats %s: the object has no %s map and no %s: use SK_STATS_DEFINE or SK_GAUGES_DEFINE", s.name, mapStats, varGauges)
	}
	if err := s.holdOpen(); err != nil {
		return err
	}
	defer s.closeMu.RUnlock()
	if err := s.stats.read(dst); err != nil {
		return fmt.Errorf("stats %s: %w", s.name, err)
	}
	return nil
}

// Detach removes the scheduler from the kernel, if attached; the kernel
// moves every task back to the fair class before Detach returns. The
// scheduler stays loaded, so its maps and exit info remain readable.
func (s *Scheduler) Detach() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.detachLocked()
}

func (s *Scheduler) detachLocked() error {
	if s.link == nil {
		return nil
	}
	err := s.link.Close()
	s.link = nil
	if err != nil {
		return fmt.Errorf("detach %s: %w", s.name, err)
	}
	return nil
}

// Close detaches the scheduler and releases its kernel objects. It is safe
// to call more than once.
func (s *Scheduler) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.detachLocked()
	if s.coll != nil {
		s.coll.Close()
		s.coll = nil
	}
	return err
}

// holdOpen keeps Close from freeing the kernel objects, for a read from
// any goroutine, until the caller calls s.closeMu.RUnlock; once the
// scheduler is closed it holds nothing and fails with ErrClosed.
func (s *Scheduler) holdOpen() error {
	s.closeMu.RLock()
	s.mu.Lock()
	closed := s.coll == nil
	s.mu.Unlock()
	if closed {
		s.closeMu.RUnlock()
		return fmt.Errorf("stats %s: %w", s.name, ErrClosed)
	}
	return nil
}
