package preempt

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf"

	"github.com/scxkit/scxkit/dsq"
	"github.com/scxkit/scxkit/internal/percpu"
	"github.com/scxkit/scxkit/latency"
	"github.com/scxkit/scxkit/scx"
)

// Name is the component's name (Controller.Name): it prefixes its stats
// ("preempt.runtime_ns") and names it in errors.
const Name = "preempt"

// maxIDs is the number of counter slots (SK_PREEMPT_MAX_IDS): the most
// distinct class names a Controller can see in one binding.
const maxIDs = int(preempttypesSkPreemptConstsSK_MAX_IDS)

// DefaultWatchInterval is how often a Controller looks at
// Options.ConfigFile when Options.WatchInterval is 0.
const DefaultWatchInterval = time.Second

// Options configures a Controller. The zero Options (or nil) watches no
// file and logs to the scheduler's logger.
type Options struct {
	// ConfigFile, if set, is the file of classes (Parse's text form) the
	// Controller watches while the scheduler runs (scx.Worker): whenever
	// its contents change, it writes the Config they hold, as Write does.
	// A file that cannot be read, or holds a bad Config, is logged and
	// the policy in force stays. New does not read it: the Config given
	// to New is the one Bind writes.
	ConfigFile string
	// WatchInterval is how often ConfigFile is looked at; 0 means
	// DefaultWatchInterval.
	WatchInterval time.Duration
	// ProcRoot is where proc is mounted, for the check that no task falls
	// into two classes; empty means /proc.
	ProcRoot string
	// OnDSQ makes the Controller an orderer over the dsq component's
	// queues instead of their owner: the scheduler also has a dsq.Layout
	// with at least as many Classes as the Config, listed before the
	// Controller, includes scxkit/dsq.bpf.h before scxkit/preempt.bpf.h
	// and calls sk_preempt_select_cpu_on, sk_preempt_enqueue_on and
	// sk_preempt_dispatch_on with the task's or CPU's domain, and not
	// sk_preempt_init. Needs then Requires "dsq", owns no callback and
	// asks for no DSQ ids of its own. Bind and Write refuse a Config with
	// more classes than the layout has per domain (ErrTooBig).
	OnDSQ bool
	// Logger receives a debug record for every configuration written and
	// the watcher's reports. Nil: the scheduler's logger once bound
	// (scx.Binding.Logger), slog.Default() before.
	Logger *slog.Logger
}

// bpfObjects are the maps and globals of preempt.bpf.h the Controller
// writes and reads.
type bpfObjects struct {
	Active  *ebpf.Variable `ebpf:"sk_preempt_active"`
	Configs *ebpf.Map      `ebpf:"sk_preempt_configs"`
	Cgroups *ebpf.Map      `ebpf:"sk_preempt_cgroups"`
	Comms   *ebpf.Map      `ebpf:"sk_preempt_comms"`
	Stats   *ebpf.Map      `ebpf:"sk_preempt_stats"`
}

// Controller is the preemption-policy component (scx.Component, Worker
// and Reporter): the Go half of scxkit/preempt.bpf.h. It writes the
// policy of every class to the scheduler at Bind and whenever it changes
// (Write, or a change of Options.ConfigFile), and reads the per-class
// counters (Read, ReadStats). Its methods may be called from several
// goroutines.
type Controller struct {
	mu   sync.Mutex
	opts Options
	log  *slog.Logger

	// The Config in force once bound, or the one Bind writes: normalized
	// (the default class in place) and owned by the Controller.
	cfg *Config

	// What Bind found and wrote; reset at every Bind.
	bound  bool
	objs   bpfObjects
	slot   uint32                                                // the slot in force
	gen    uint64                                                // its generation
	ids    map[string]int                                        // counter slot of each class name seen
	stats  *percpu.Reader[uint32, preempttypesSkPreemptCounters] // reads sk_preempt_stats
	bounds []time.Duration
	// queueClasses is, with Options.OnDSQ, the classes per domain of the
	// dsq layout bound before (0: unknown); a Config may not have more.
	queueClasses int
	statBuf      []ClassStats // ReadStats's buffer

	// The watcher's state (Options.ConfigFile), used by its goroutine only.
	watchText []byte // the contents it last acted on
	watchSeen bool   // watchText is set
	watchErr  string // the last read error reported, "" if none
}

// New returns a Controller that puts cfg in force when the scheduler is
// loaded: cfg is validated now (Config.Validate; the error wraps
// ErrInvalid, or ErrTooBig), its cgroups are resolved at Bind. A nil cfg
// puts every task in DefaultClass, with the zero Policy. New needs no
// kernel; the Controller takes a copy of cfg.
func New(cfg *Config, opts *Options) (*Controller, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	classes, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	c := &Controller{cfg: &Config{Classes: cloneClasses(classes)}, bounds: latency.Log2Bounds()}
	if opts != nil {
		c.opts = *opts
	}
	if c.opts.WatchInterval < 0 {
		return nil, fmt.Errorf("preempt: watch interval %v: %w: must be positive, e.g. 1s (0: %v)", c.opts.WatchInterval, ErrInvalid, DefaultWatchInterval)
	}
	if c.opts.WatchInterval == 0 {
		c.opts.WatchInterval = DefaultWatchInterval
	}
	if c.opts.ProcRoot == "" {
		c.opts.ProcRoot = "/proc"
	}
	c.log = c.opts.Logger
	if c.log == nil {
		c.log = slog.Default()
	}
	if len(c.bounds) != len(preempttypesSkPreemptCounters{}.WaitBuckets)-1 {
		return nil, fmt.Errorf("preempt: %d histogram bounds in Go, %d in BPF", len(c.bounds), len(preempttypesSkPreemptCounters{}.WaitBuckets)-1)
	}
	return c, nil
}

// cloneClasses copies classes with their member lists.
func cloneClasses(classes []Class) []Class {
	out := slices.Clone(classes)
	for i := range out {
		out[i].Cgroups = slices.Clone(out[i].Cgroups)
		out[i].Comms = slices.Clone(out[i].Comms)
	}
	return out
}

// Name implements scx.Component: "preempt".
func (c *Controller) Name() string { return Name }

// Needs implements scx.Component. The scheduler calls the hooks of
// preempt.bpf.h from ten callbacks and leaves the decisions of two to
// the Controller: where ops.enqueue queues a task (its class's DSQ) and
// what ops.dispatch runs (the highest class with work). It must not set
// SCX_OPS_ENQ_LAST: a task alone on its CPU runs on through ops.dispatch,
// which refills its slice. Each class has a DSQ of the range Open
// allocates, whose first id Load writes into sk_preempt_dsq_base.
//
// With Options.OnDSQ it orders the dsq component's queues instead: it
// Requires "dsq", owns nothing, needs no DSQ ids and no ops.init (dsq's
// sk_dsq_create_all creates the queues), and forbids no flag, so that it
// composes with a component that requires SCX_OPS_ENQ_LAST, such as smt.
// The flag is harmless there: the kernel keeps a runnable task that
// ops.dispatch left a slice, whatever the flag says, and
// sk_preempt_dispatch_on grants the previous task a slice whenever it
// takes no other. The flag takes effect only when a filter's mask
// (sk_preempt_dispatch_on_mask) denies the previous task's class, or its
// task storage is missing: ops.enqueue (sk_preempt_enqueue_on) then gets
// it with SCX_ENQ_LAST, not as a wakeup, and queues it in its domain's
// queue of its class.
func (c *Controller) Needs() scx.Needs {
	if c.opts.OnDSQ {
		return scx.Needs{
			Callbacks: []string{"select_cpu", "runnable", "enqueue", "dispatch", "running", "stopping", "tick", "yield", "enable"},
			Requires:  []string{"dsq"},
			Objects:   (*bpfObjects)(nil),
			Header:    "scxkit/preempt.bpf.h",
		}
	}
	return scx.Needs{
		Forbids:   []scx.OpsFlag{scx.EnqLast},
		Callbacks: []string{"select_cpu", "runnable", "enqueue", "dispatch", "running", "stopping", "tick", "yield", "enable", "init"},
		Owns:      []string{"enqueue", "dispatch"},
		DSQs:      MaxClasses,
		DSQBase:   "sk_preempt_dsq_base",
		Objects:   (*bpfObjects)(nil),
		Header:    "scxkit/preempt.bpf.h",
	}
}

// Bind implements scx.Component: it finds preempt.bpf.h's maps and
// writes the Config in force (the one given to New, or the last one
// written), resolving its cgroups as Write does. After a reload (a
// restart after CPU hotplug), the new scheduler's counters start from
// zero and its generation from 1.
func (c *Controller) Bind(b *scx.Binding) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.bound = false
	if err := b.Assign(&c.objs); err != nil {
		return err
	}
	if c.opts.Logger == nil {
		c.log = b.Logger()
	}
	n, err := ebpf.PossibleCPU()
	if err != nil {
		return fmt.Errorf("preempt: %w", err)
	}
	if c.stats, err = percpu.New[uint32, preempttypesSkPreemptCounters](c.objs.Stats, n); err != nil {
		return fmt.Errorf("preempt: %w", err)
	}
	if err := c.objs.Active.Get(&c.slot); err != nil {
		return fmt.Errorf("preempt: read %s: %w", c.objs.Active, err)
	}
	c.gen = 0
	c.ids = map[string]int{}
	c.queueClasses = 0
	if c.opts.OnDSQ {
		// scx.Open made sure dsq is there and bound first (Requires).
		if d, ok := b.Required("dsq"); ok {
			if l, ok := d.(*dsq.Layout); ok {
				c.queueClasses = l.Classes
			}
		}
	}
	if err := c.write(c.cfg.Classes); err != nil {
		return err
	}
	c.bound = true
	return nil
}

// Write makes cfg the policy in force. It checks cfg (Config.Validate),
// resolves its cgroups, and checks that no running task falls into two
// classes (one by its name, another by its cgroup); then it writes the
// new configuration beside the one in force and switches over in one
// step. On any error the policy in force is left as it was; the error
// wraps ErrInvalid when cfg is at fault, or ErrTooBig when it exceeds a
// limit of the BPF side, and scx.ErrNotBound before Bind.
//
// The switch applies to the next scheduling decision: to waking and
// queued tasks at once, and to running tasks at their next tick (their
// class and the length of their current slice). A Config written stays
// in force across reloads of the scheduler: Bind writes it again.
func (c *Controller) Write(cfg *Config) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.bound {
		return fmt.Errorf("preempt: write config: %w", scx.ErrNotBound)
	}
	classes, err := cfg.normalize()
	if err != nil {
		return err
	}
	return c.write(classes)
}

// write puts the normalized classes in force; c.mu is held and the maps
// are assigned.
func (c *Controller) write(classes []Class) error {
	if c.queueClasses > 0 && len(classes) > c.queueClasses {
		return fmt.Errorf("preempt: %d classes (the default one included) on dsq's %d classes per domain: %w: raise dsq.Options.Classes to %d", len(classes), c.queueClasses, ErrTooBig, len(classes))
	}
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
	if err := c.objs.Active.Set(slot); err != nil {
		return fmt.Errorf("preempt: switch to the new configuration: %w", err)
	}
	c.slot = slot
	c.gen++
	for name, id := range ids {
		c.ids[name] = id
	}
	c.cfg = &Config{Classes: cloneClasses(classes)}
	c.log.Debug("preempt: configuration written", "generation", c.gen, "classes", classNames(c.cfg))
	return nil
}

// classNames lists the classes of cfg, for logs.
func classNames(cfg *Config) string {
	var b strings.Builder
	for i, k := range cfg.Classes {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k.Name)
	}
	return b.String()
}

// resolve maps every cgroup of classes to its id, keyed by the cgroup's
// path in the hierarchy (under the cgroup2 mount that /proc/self/mounts
// names; see lookupCgroup).
func (c *Controller) resolve(classes []Class) (map[string]resolved, error) {
	byPath := map[string]resolved{}
	byID := map[uint64]string{}
	for i, k := range classes {
		for _, g := range k.Cgroups {
			cg, err := lookupCgroup(g)
			if errors.Is(err, fs.ErrNotExist) {
				return nil, &ConfigError{Class: k.Name, Msg: fmt.Sprintf("cgroup %s does not exist: create it or fix the path (cgroup v2 paths as /proc/PID/cgroup shows them)", g)}
			}
			if err != nil {
				return nil, fmt.Errorf("preempt: class %q: %w (%w)", k.Name, err, ErrInvalid)
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
// them are the same directory, as Write and Bind do, without a scheduler: a
// command line tool calls it to refuse a config before loading one. The
// error wraps ErrInvalid.
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
			return nil, fmt.Errorf("preempt: class %q: %w: this scheduler has counted %d class names already, the most it can (SK_PREEMPT_MAX_IDS); reuse a name or restart the scheduler", k.Name, ErrTooBig, maxIDs)
		}
		ids[k.Name] = next
		next++
	}
	return ids, nil
}

// writeSlot writes classes into configuration slot, which is not in force.
func (c *Controller) writeSlot(slot uint32, classes []Class, byPath map[string]resolved, ids map[string]int) error {
	if err := clearSlot[preempttypesSkPreemptCgroupKey](c.objs.Cgroups, slot, func(k *preempttypesSkPreemptCgroupKey) uint32 { return k.Slot }); err != nil {
		return err
	}
	if err := clearSlot[preempttypesSkPreemptCommKey](c.objs.Comms, slot, func(k *preempttypesSkPreemptCommKey) uint32 { return k.Slot }); err != nil {
		return err
	}
	for _, r := range byPath {
		key := preempttypesSkPreemptCgroupKey{Cgid: r.id, Slot: slot}
		if err := c.objs.Cgroups.Update(&key, uint32(r.class), ebpf.UpdateAny); err != nil {
			return fmt.Errorf("preempt: write %s: %w", c.objs.Cgroups, err)
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
			if err := c.objs.Comms.Update(&key, uint32(i), ebpf.UpdateAny); err != nil {
				return fmt.Errorf("preempt: write %s: %w", c.objs.Comms, err)
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
	if err := c.objs.Configs.Update(slot, &cfg, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("preempt: write %s: %w", c.objs.Configs, err)
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

// Config returns a copy of the Config in force, with its default class
// in place: the one given to New until another is written.
func (c *Controller) Config() *Config {
	c.mu.Lock()
	defer c.mu.Unlock()
	return &Config{Classes: cloneClasses(c.cfg.Classes)}
}

// Generation returns the generation of the configuration in force as the
// BPF side sees it: 1 once Bind wrote the first, then one more with every
// successful Write. Before Bind it fails with scx.ErrNotBound.
func (c *Controller) Generation() (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.bound {
		return 0, fmt.Errorf("preempt: generation: %w", scx.ErrNotBound)
	}
	var slot uint32
	if err := c.objs.Active.Get(&slot); err != nil {
		return 0, fmt.Errorf("preempt: read %s: %w", c.objs.Active, err)
	}
	var cfg preempttypesSkPreemptConfig
	if err := c.objs.Configs.Lookup(slot&1, &cfg); err != nil {
		return 0, fmt.Errorf("preempt: read %s: %w", c.objs.Configs, err)
	}
	return cfg.Gen, nil
}
