package preempt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf"

	"github.com/scxkit/scxkit/latency"
)

// Names of the globals and maps preempt.bpf.h defines.
const (
	bpfActive  = "sk_preempt_active"
	bpfConfigs = "sk_preempt_configs"
	bpfCgroups = "sk_preempt_cgroups"
	bpfComms   = "sk_preempt_comms"
	bpfStats   = "sk_preempt_stats"
)

// maxIDs is the number of counter slots (SK_PREEMPT_MAX_IDS): the most
// distinct class names a Controller can see in its life.
const maxIDs = int(preempttypesSkPreemptConstsSK_MAX_IDS)

// Options configures a Controller.
type Options struct {
	// ProcRoot is where proc is mounted, for the check that no task falls
	// into two classes; empty means /proc.
	ProcRoot string
	// Logger receives a debug message for every configuration applied.
	// Nil: slog.Default().
	Logger *slog.Logger
}

// Controller sets the preemption policy of a loaded scheduler that
// includes scxkit/preempt.bpf.h, and reads its per-class counters. It
// may be used before and after the scheduler attaches, and from several
// goroutines.
type Controller struct {
	mu      sync.Mutex
	opts    Options
	active  *ebpf.Variable
	configs *ebpf.Map
	cgroups *ebpf.Map
	comms   *ebpf.Map
	stats   *ebpf.Map

	slot    uint32         // the slot in force
	gen     uint64         // its generation
	applied *Config        // the Config in force, normalized; nil before the first Apply
	ids     map[string]int // counter slot of each class name seen
	perCPU  []preempttypesSkPreemptCounters
	bounds  []time.Duration
}

// NewController finds preempt.bpf.h's maps in coll, the collection of a
// loaded scheduler (scx.Scheduler.Collection). Until the first Apply,
// every task is in one class with the scheduler's slice, yields at its end
// and preempts nothing.
func NewController(coll *ebpf.Collection, opts *Options) (*Controller, error) {
	c := &Controller{
		active:  coll.Variables[bpfActive],
		configs: coll.Maps[bpfConfigs],
		cgroups: coll.Maps[bpfCgroups],
		comms:   coll.Maps[bpfComms],
		stats:   coll.Maps[bpfStats],
		ids:     map[string]int{},
		bounds:  latency.Log2Bounds(),
	}
	if opts != nil {
		c.opts = *opts
	}
	if c.opts.Logger == nil {
		c.opts.Logger = slog.Default()
	}
	if c.opts.ProcRoot == "" {
		c.opts.ProcRoot = "/proc"
	}
	if c.active == nil || c.configs == nil || c.cgroups == nil || c.comms == nil || c.stats == nil {
		return nil, fmt.Errorf("preempt: the object lacks preempt.bpf.h's maps (%s, %s, %s, %s, %s): include scxkit/preempt.bpf.h",
			bpfActive, bpfConfigs, bpfCgroups, bpfComms, bpfStats)
	}
	if len(c.bounds) != len(preempttypesSkPreemptCounters{}.WaitBuckets)-1 {
		return nil, fmt.Errorf("preempt: %d histogram bounds in Go, %d in BPF", len(c.bounds), len(preempttypesSkPreemptCounters{}.WaitBuckets)-1)
	}
	n, err := ebpf.PossibleCPU()
	if err != nil {
		return nil, fmt.Errorf("preempt: %w", err)
	}
	c.perCPU = make([]preempttypesSkPreemptCounters, n)
	if err := c.active.Get(&c.slot); err != nil {
		return nil, fmt.Errorf("preempt: read %s: %w", bpfActive, err)
	}
	return c, nil
}

// Apply makes cfg the policy in force. It checks cfg (Config.Validate),
// resolves its cgroups, and checks that no running task falls into two
// classes (one by its name, another by its cgroup); then it writes the
// new configuration beside the one in force and switches over in one
// step. On any error the policy in force is left as it was; the error
// wraps ErrInvalidConfig when cfg is at fault.
//
// The switch applies to the next scheduling decision: to waking and
// queued tasks at once, and to running tasks at their next tick (their
// class and the length of their current slice).
func (c *Controller) Apply(cfg *Config) error {
	classes, err := cfg.normalize()
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	byPath, err := c.resolve(classes)
	if err != nil {
		return err
	}
	if err := c.checkTasks(classes, byPath); err != nil {
		return err
	}
	ids, err := c.assignIDs(classes)
	if err != nil {
		return err
	}
	slot := 1 - c.slot
	if err := c.writeSlot(slot, classes, byPath, ids); err != nil {
		return err
	}
	if err := c.active.Set(slot); err != nil {
		return fmt.Errorf("preempt: switch to the new configuration: %w", err)
	}
	c.slot = slot
	c.gen++
	for name, id := range ids {
		c.ids[name] = id
	}
	c.applied = &Config{Classes: classes}
	c.opts.Logger.Debug("preempt: configuration applied", "generation", c.gen, "classes", len(classes))
	return nil
}

// resolve maps every cgroup of classes to its id, keyed by the cgroup's
// path in the hierarchy (under the cgroup2 mount that /proc/self/mounts
// names, latency.Cgroup2Mount).
func (c *Controller) resolve(classes []Class) (map[string]resolved, error) {
	byPath := map[string]resolved{}
	byID := map[uint64]string{}
	for i, k := range classes {
		for _, g := range k.Cgroups {
			cg, err := latency.LookupCgroup(g)
			if errors.Is(err, fs.ErrNotExist) {
				return nil, &ConfigError{Class: k.Name, Msg: fmt.Sprintf("cgroup %s does not exist: create it or fix the path (cgroup v2 paths as /proc/PID/cgroup shows them)", g)}
			}
			if err != nil {
				return nil, fmt.Errorf("%w: class %q: %w", ErrInvalidConfig, k.Name, err)
			}
			if other, ok := byID[cg.ID]; ok && other != k.Name {
				return nil, &ConfigError{Class: k.Name, Msg: fmt.Sprintf("cgroup %s is also in class %q (the same directory): its tasks would be in two classes; list it once", g, other)}
			}
			byID[cg.ID] = k.Name
			byPath[cg.Path] = resolved{id: cg.ID, class: i}
		}
	}
	return byPath, nil
}

// CheckCgroups checks that the cgroups of cfg exist and that no two of
// them are the same directory, as Apply does, without a scheduler: a
// command line tool calls it to refuse a config before loading one. The
// error wraps ErrInvalidConfig.
func (cfg *Config) CheckCgroups() error {
	classes, err := cfg.normalize()
	if err != nil {
		return err
	}
	_, err = (&Controller{}).resolve(classes)
	return err
}

type resolved struct {
	id    uint64
	class int
}

// checkTasks returns an error naming a running task that one class
// matches by name and another by cgroup.
func (c *Controller) checkTasks(classes []Class, byPath map[string]resolved) error {
	byComm := map[string]int{}
	for i, k := range classes {
		for _, n := range k.Comms {
			byComm[n] = i
		}
	}
	if len(byComm) == 0 || len(byPath) == 0 {
		return nil
	}
	tasks, err := filepath.Glob(filepath.Join(c.opts.ProcRoot, "[0-9]*", "task", "[0-9]*"))
	if err != nil {
		return fmt.Errorf("preempt: list tasks: %w", err)
	}
	for _, dir := range tasks {
		comm, err := os.ReadFile(filepath.Join(dir, "comm"))
		if err != nil {
			continue // the task exited
		}
		byName, ok := byComm[strings.TrimSuffix(string(comm), "\n")]
		if !ok {
			continue
		}
		cg, err := os.ReadFile(filepath.Join(dir, "cgroup"))
		if err != nil {
			continue
		}
		path, ok := unifiedPath(cg)
		if !ok {
			continue
		}
		for p := path; ; p = filepath.Dir(p) {
			if r, ok := byPath[p]; ok {
				if r.class != byName {
					return &ConfigError{Class: classes[byName].Name, Msg: fmt.Sprintf(
						"task %s (%s) is in class %q by its name and in class %q by its cgroup %s: a task can be in one class only; drop comm=%s or move the task",
						filepath.Base(dir), strings.TrimSpace(string(comm)), classes[byName].Name, classes[r.class].Name, path, strings.TrimSpace(string(comm)))}
				}
				break
			}
			if p == "/" {
				break
			}
		}
	}
	return nil
}

// unifiedPath returns the cgroup v2 path from the text of /proc/PID/cgroup
// ("0::/a/b").
func unifiedPath(text []byte) (string, bool) {
	for _, line := range bytes.Split(text, []byte("\n")) {
		if p, ok := bytes.CutPrefix(line, []byte("0::")); ok && len(p) > 0 && p[0] == '/' {
			return filepath.Clean(string(p)), true
		}
	}
	return "", false
}

// assignIDs returns the counter slot of every class: the one it had, or a
// new one.
func (c *Controller) assignIDs(classes []Class) (map[string]int, error) {
	ids := map[string]int{}
	next := len(c.ids)
	for _, k := range classes {
		if id, ok := c.ids[k.Name]; ok {
			ids[k.Name] = id
			continue
		}
		if next >= maxIDs {
			return nil, fmt.Errorf("%w: class %q: this scheduler has counted %d class names already, the most it can; reuse a name or restart the scheduler", ErrInvalidConfig, k.Name, maxIDs)
		}
		ids[k.Name] = next
		next++
	}
	return ids, nil
}

// writeSlot writes classes into configuration slot, which is not in force.
func (c *Controller) writeSlot(slot uint32, classes []Class, byPath map[string]resolved, ids map[string]int) error {
	if err := clearSlot[preempttypesSkPreemptCgroupKey](c.cgroups, slot, func(k *preempttypesSkPreemptCgroupKey) uint32 { return k.Slot }); err != nil {
		return err
	}
	if err := clearSlot[preempttypesSkPreemptCommKey](c.comms, slot, func(k *preempttypesSkPreemptCommKey) uint32 { return k.Slot }); err != nil {
		return err
	}
	for _, r := range byPath {
		key := preempttypesSkPreemptCgroupKey{Cgid: r.id, Slot: slot}
		if err := c.cgroups.Update(&key, uint32(r.class), ebpf.UpdateAny); err != nil {
			return fmt.Errorf("preempt: write %s: %w", bpfCgroups, err)
		}
	}
	var cfg preempttypesSkPreemptConfig
	cfg.Gen = c.gen + 1
	cfg.NrClasses = uint32(len(classes))
	for i, k := range classes {
		for _, n := range k.Comms {
			key := preempttypesSkPreemptCommKey{Slot: slot}
			for j := 0; j < len(n); j++ {
				key.Comm[j] = int8(n[j])
			}
			if err := c.comms.Update(&key, uint32(i), ebpf.UpdateAny); err != nil {
				return fmt.Errorf("preempt: write %s: %w", bpfComms, err)
			}
		}
		if k.Name == DefaultClass {
			cfg.DefaultClass = uint32(i)
		}
		p := &cfg.Classes[i]
		p.SliceNs = uint64(k.slice())
		p.AfterNs = uint64(k.After)
		p.RunOnNs = uint64(k.runOnMax())
		p.Wakeup = uint32(bpfWakeup[k.Wakeup])
		p.Tick = uint32(bpfTick[k.Tick])
		if k.NoPreempt {
			p.Flags |= flagNoPreempt
		}
		if k.Background {
			p.Flags |= flagBackground
		}
		p.Id = uint32(ids[k.Name])
	}
	if err := c.configs.Update(slot, &cfg, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("preempt: write %s: %w", bpfConfigs, err)
	}
	return nil
}

// The values of sk_preempt_policy.wakeup and .tick for each Wakeup and
// Tick (validate refuses others).
var (
	bpfWakeup = [...]preempttypesSkPreemptConsts{
		WakeupNever: preempttypesSkPreemptConstsSK_WAKEUP_NEVER,
		WakeupLower: preempttypesSkPreemptConstsSK_WAKEUP_LOWER,
		WakeupAfter: preempttypesSkPreemptConstsSK_WAKEUP_AFTER,
	}
	bpfTick = [...]preempttypesSkPreemptConsts{
		TickYield: preempttypesSkPreemptConstsSK_TICK_YIELD,
		TickRunOn: preempttypesSkPreemptConstsSK_TICK_RUN_ON,
	}
)

// Flags of struct sk_preempt_policy.
const (
	flagNoPreempt  = uint32(preempttypesSkPreemptConstsSK_F_NO_PREEMPT)
	flagBackground = uint32(preempttypesSkPreemptConstsSK_F_BACKGROUND)
)

// clearSlot deletes the entries of slot from a membership map.
func clearSlot[K any](m *ebpf.Map, slot uint32, slotOf func(*K) uint32) error {
	var (
		key   K
		val   uint32
		stale []K
	)
	it := m.Iterate()
	for it.Next(&key, &val) {
		if slotOf(&key) == slot {
			stale = append(stale, key)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("preempt: read %s: %w", m, err)
	}
	for i := range stale {
		if err := m.Delete(&stale[i]); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("preempt: clear %s: %w", m, err)
		}
	}
	return nil
}

// Config returns the Config in force, with its default class in place, or
// nil before the first Apply.
func (c *Controller) Config() *Config {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.applied == nil {
		return nil
	}
	cfg := &Config{Classes: make([]Class, len(c.applied.Classes))}
	copy(cfg.Classes, c.applied.Classes)
	return cfg
}

// Generation returns the generation of the configuration in force as the
// BPF side sees it: 0 before the first Apply, then one more with every
// successful Apply.
func (c *Controller) Generation() (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var slot uint32
	if err := c.active.Get(&slot); err != nil {
		return 0, fmt.Errorf("preempt: read %s: %w", bpfActive, err)
	}
	var cfg preempttypesSkPreemptConfig
	if err := c.configs.Lookup(slot&1, &cfg); err != nil {
		return 0, fmt.Errorf("preempt: read %s: %w", bpfConfigs, err)
	}
	return cfg.Gen, nil
}

// ClassStats are one class's counters, summed over CPUs, since the
// scheduler was loaded (a class keeps its counters across Apply calls as
// long as it keeps its name).
type ClassStats struct {
	Class string
	// Preempts counts preemption kicks sent for its waking tasks.
	Preempts uint64
	// Preempted counts its tasks stopped while runnable before their
	// slice ran out, other than by their own sched_yield: by a kick, or
	// by a configuration change that shortened the slice. Preemption by
	// higher scheduling classes (RT, deadline) is not counted.
	Preempted uint64
	// Kept counts preemption kicks that landed on its no-preempt tasks,
	// which ran on.
	Kept uint64
	// RunOns counts slices it got past the first under TickRunOn.
	RunOns uint64
	// Starved counts the times it was boosted above all classes for
	// 100ms because none of its queued tasks had run for 500ms (the
	// starvation bound).
	Starved uint64
	// Runtime is how long its tasks ran.
	Runtime time.Duration
	// Wakeups is the number of wakeup-to-run waits of its tasks; Wait
	// their histogram (bounds latency.Log2Bounds) and sum.
	Wakeups uint64
	Wait    latency.Histogram
}

// String summarizes s on one line.
func (s *ClassStats) String() string {
	return fmt.Sprintf("%s: run=%dms wakeups=%d wait_p50=%dus wait_p99=%dus preempts=%d preempted=%d kept=%d run_ons=%d starved=%d",
		s.Class, s.Runtime.Milliseconds(), s.Wakeups, s.Wait.Percentile(50).Microseconds(), s.Wait.Percentile(99).Microseconds(),
		s.Preempts, s.Preempted, s.Kept, s.RunOns, s.Starved)
}

// Read returns the counters of every class in force, in priority order,
// reusing dst's storage.
func (c *Controller) Read(dst []ClassStats) ([]ClassStats, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	dst = dst[:0]
	classes := []Class{{Name: DefaultClass}}
	if c.applied != nil {
		classes = c.applied.Classes
	}
	for _, k := range classes {
		id := c.ids[k.Name] // 0 for the default class before the first Apply
		if err := c.stats.Lookup(uint32(id), &c.perCPU); err != nil {
			return dst, fmt.Errorf("preempt: read %s: class %q: %w", bpfStats, k.Name, err)
		}
		dst = append(dst, ClassStats{})
		s := &dst[len(dst)-1]
		s.Class = k.Name
		counts := s.Wait.Counts
		if cap(counts) < len(c.bounds)+1 {
			counts = make([]uint64, len(c.bounds)+1)
		}
		counts = counts[:len(c.bounds)+1]
		clear(counts)
		s.Wait = latency.Histogram{Bounds: c.bounds, Counts: counts}
		for i := range c.perCPU {
			v := &c.perCPU[i]
			s.Preempts += v.Preempts
			s.Preempted += v.Preempted
			s.Kept += v.Kept
			s.RunOns += v.RunOns
			s.Starved += v.Starved
			s.Runtime += time.Duration(v.RuntimeNs)
			s.Wakeups += v.Wakeups
			s.Wait.Sum += time.Duration(v.WaitNs)
			for b, n := range v.WaitBuckets {
				counts[b] += n
			}
		}
	}
	return dst, nil
}

// Watch applies the Config in file path whenever its contents change
// from what they are when Watch starts (apply the starting Config
// yourself, ParseFile and Apply, to fail early on a bad one), looking
// every interval, until ctx is done; then it returns nil. After every
// change it calls report, if not nil, with the Config applied or the
// error (an unreadable file, a bad Config), in which case the policy in
// force stays as it was. The file is read as by ParseFile: a file that
// is not regular (a FIFO, a device) or larger than MaxFileSize is such an
// error, and is neither read nor blocks Watch. A file that disappears and
// comes back with the same contents is not applied again.
func (c *Controller) Watch(ctx context.Context, path string, interval time.Duration, report func(*Config, error)) error {
	if interval <= 0 {
		return fmt.Errorf("preempt: watch %s: interval %v: must be positive, e.g. 1s", path, interval)
	}
	if report == nil {
		report = func(*Config, error) {}
	}
	last, lastErr := readFile(path)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		text, err := readFile(path)
		switch {
		case err != nil:
			if lastErr == nil || lastErr.Error() != err.Error() {
				report(nil, fmt.Errorf("preempt: config file: %w", err))
			}
			lastErr = err
			continue
		case lastErr == nil && bytes.Equal(text, last):
			continue
		}
		last, lastErr = text, nil
		cfg, err := Parse(text)
		if err == nil {
			err = c.Apply(cfg)
		}
		if err != nil {
			report(nil, fmt.Errorf("%s: %w", path, err))
		} else {
			report(cfg, nil)
		}
	}
}
