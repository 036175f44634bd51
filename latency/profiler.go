package latency

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// ErrClosed is returned by the methods of a Profiler that was closed, or
// whose context ended.
var ErrClosed = errors.New("latency: profiler closed")

// CgroupStats is what a Profiler counted for one cgroup since Start or the
// last Reset. Durations are sums over the cgroup's tasks.
type CgroupStats struct {
	// Path is the cgroup's path in the v2 hierarchy ("/a/b"), "" if it
	// no longer exists.
	Path string
	// ID is its cgroup id (the inode number of its directory).
	ID uint64

	// Wakeups is the number of waits that began with a wakeup and ended
	// on a CPU; Preemptions the number that began with a switch-out of a
	// runnable task (preempted, or yielded).
	Wakeups, Preemptions uint64
	// QueueDelay is the histogram of both kinds of waits: the time from
	// becoming runnable to running. QueueDelay.Sum is the total.
	QueueDelay Histogram
	// The split of QueueDelay.Sum by what ran on the waiting task's CPU
	// meanwhile: a task of this cgroup, of another one, or none (the CPU
	// was idle, or switching). They add up to QueueDelay.Sum.
	SameCgroupWait, OtherCgroupWait, IdleWait time.Duration

	// OnCPU is the time the cgroup's tasks ran, including the current
	// stretch of those running now; OffCPU the time they slept (blocked
	// until woken), counted at the wakeup.
	OnCPU, OffCPU time.Duration

	// Outliers is the number of waits sent to the outlier stream,
	// OutliersLost those the full BPF ring buffer refused.
	Outliers, OutliersLost uint64
}

// Waits returns the number of waits counted, Wakeups + Preemptions.
func (s *CgroupStats) Waits() uint64 { return s.Wakeups + s.Preemptions }

// WaitKind says how a wait began.
type WaitKind uint8

// The wait kinds, as latency.h numbers them (SK_LAT_WAKEUP,
// SK_LAT_PREEMPT).
const (
	// Wakeup: the task was woken up (sched_wakeup, sched_wakeup_new).
	Wakeup = WaitKind(lattypesSkLatConstsSK_KIND_WAKEUP)
	// Preemption: the task was switched out while runnable.
	Preemption = WaitKind(lattypesSkLatConstsSK_KIND_PREEMPT)
)

func (k WaitKind) String() string {
	switch k {
	case Wakeup:
		return "wakeup"
	case Preemption:
		return "preemption"
	}
	return fmt.Sprintf("WaitKind(%d)", uint8(k))
}

// Outlier is one wait of at least Options.OutlierThreshold.
type Outlier struct {
	// Time is when the wait ended: the task was switched in.
	Time time.Time
	// PID is the thread id, TGID the process id, Comm the thread's name.
	PID, TGID int
	Comm      string
	// CgroupID and Cgroup name the task's cgroup (Cgroup is "" if it
	// no longer exists).
	CgroupID uint64
	Cgroup   string
	// CPU is the CPU the task got.
	CPU  int
	Kind WaitKind
	// Delay is the wait, and the rest its split as in CgroupStats.
	Delay, SameCgroupWait, OtherCgroupWait, IdleWait time.Duration
}

// Profiler profiles scheduling latency with BPF tracing programs, from
// Start until Close or the end of Start's context. Its methods are safe for
// concurrent use.
type Profiler struct {
	opts     Options
	log      *slog.Logger
	objs     latencybpfObjects
	links    []link.Link
	index    *cgroupIndex
	selected []Cgroup // nil: every cgroup
	ncpu     int

	outliers chan Outlier
	rb       *ringbuf.Reader
	wg       sync.WaitGroup
	dropped  atomic.Uint64
	wallOff  int64 // wall-clock ns minus CLOCK_MONOTONIC ns at Start
	stopCtx  func() bool

	mu     sync.Mutex // guards the fields below, and Read, Reset, Close
	closed bool
	base   map[uint64]latencybpfSkLatStats // summed counters at the last Reset
	sums   map[uint64]*latencybpfSkLatStats
	percpu []latencybpfSkLatStats
	cpus   []latencybpfSkLatCpu
	keys   []uint64
}

// Start loads the BPF programs, attaches them to the scheduler's
// tracepoints and starts counting. It needs root (CAP_BPF and CAP_PERFMON),
// a kernel with BTF and bpf_map_lookup_percpu_elem (5.19 or later), and a
// mounted cgroup v2 hierarchy; without the privileges, the error wraps
// ErrPermission. opts may be nil. The Profiler stops when ctx ends or
// Close is called.
func Start(ctx context.Context, opts *Options) (*Profiler, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	mount, err := Cgroup2Mount()
	if err != nil {
		return nil, err
	}
	p := &Profiler{opts: o, log: o.Logger, index: newCgroupIndex(mount), base: map[uint64]latencybpfSkLatStats{},
		sums: map[uint64]*latencybpfSkLatStats{}}
	seen := map[uint64]bool{}
	for _, path := range o.Cgroups {
		c, err := lookupCgroup(mount, path)
		if err != nil {
			return nil, err
		}
		if !seen[c.ID] {
			seen[c.ID] = true
			p.selected = append(p.selected, c)
			p.index.add(c)
		}
	}
	if p.ncpu, err = ebpf.PossibleCPU(); err != nil {
		return nil, fmt.Errorf("count possible CPUs: %w", err)
	}
	if err := p.load(); err != nil {
		p.closeObjects()
		return nil, permissionError(err)
	}
	p.percpu = make([]latencybpfSkLatStats, p.ncpu)
	p.cpus = make([]latencybpfSkLatCpu, p.ncpu)
	p.wallOff = time.Now().UnixNano() - monotonicNow()
	if o.OutlierThreshold > 0 {
		p.outliers = make(chan Outlier, o.OutlierBuffer)
		if p.rb, err = ringbuf.NewReader(p.objs.SkLatOutliers); err != nil {
			p.closeObjects()
			return nil, fmt.Errorf("read the outlier ring buffer: %w", err)
		}
		p.wg.Add(1)
		go p.readOutliers()
	}
	p.stopCtx = context.AfterFunc(ctx, func() { p.Close() })
	p.log.Debug("latency: profiler started", "cgroups", len(p.selected), "bounds", len(o.Bounds),
		"outlier_threshold", o.OutlierThreshold, "cgroup2", mount)
	return p, nil
}

// load loads and attaches the BPF half.
func (p *Profiler) load() error {
	if err := rlimit.RemoveMemlock(); err != nil {
		return fmt.Errorf("raise the memlock limit: %w", err)
	}
	spec, err := loadLatencybpf()
	if err != nil {
		return fmt.Errorf("read the BPF object: %w", err)
	}
	var bounds [MaxBounds]uint64
	for i, b := range p.opts.Bounds {
		bounds[i] = uint64(b)
	}
	for name, v := range map[string]any{
		"sk_lat_nr_bounds":  uint32(len(p.opts.Bounds)),
		"sk_lat_bounds":     bounds,
		"sk_lat_filter":     uint32(min(len(p.selected), 1)),
		"sk_lat_outlier_ns": uint64(p.opts.OutlierThreshold),
	} {
		if err := spec.Variables[name].Set(v); err != nil {
			return fmt.Errorf("set %s: %w", name, err)
		}
	}
	nr := p.opts.MaxCgroups
	if p.selected != nil {
		nr = len(p.selected)
	}
	spec.Maps["sk_lat_cgstats"].MaxEntries = uint32(nr)
	spec.Maps["sk_lat_cgroups"].MaxEntries = uint32(max(len(p.selected), 1))
	spec.Maps["sk_lat_outliers"].MaxEntries = uint32(p.opts.RingBufferSize)
	if err := spec.LoadAndAssign(&p.objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return fmt.Errorf("load the BPF programs: %+v", ve)
		}
		return fmt.Errorf("load the BPF programs (as root, on a kernel with BTF, 5.19 or later): %w", err)
	}
	for _, c := range p.selected {
		if err := p.objs.SkLatCgroups.Put(c.ID, uint8(1)); err != nil {
			return fmt.Errorf("select cgroup %s: %w", c.Path, err)
		}
	}
	for _, prog := range []*ebpf.Program{p.objs.LatSwitch, p.objs.LatMigrate, p.objs.LatWakeup, p.objs.LatWakeupNew} {
		l, err := link.AttachTracing(link.TracingOptions{Program: prog})
		if err != nil {
			return fmt.Errorf("attach %s: %w", prog, err)
		}
		p.links = append(p.links, l)
	}
	return nil
}

// closeObjects detaches and unloads the BPF half.
func (p *Profiler) closeObjects() {
	for _, l := range p.links {
		l.Close()
	}
	p.links = nil
	p.objs.Close()
}

// Close detaches the BPF programs and frees them, and closes the Outliers
// channel once the outliers already read are sent. It returns nil when
// called again.
func (p *Profiler) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	if p.stopCtx != nil {
		p.stopCtx()
	}
	for _, l := range p.links {
		l.Close()
	}
	p.links = nil
	var err error
	if p.rb != nil {
		err = p.rb.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	if p.outliers != nil {
		close(p.outliers)
	}
	p.objs.Close()
	if err != nil {
		return fmt.Errorf("close the outlier ring buffer: %w", err)
	}
	return nil
}

// Bounds returns the histograms' bucket bounds. Do not modify them.
func (p *Profiler) Bounds() []time.Duration { return p.opts.Bounds }

// Outliers returns the channel on which the profiler sends every wait of
// at least Options.OutlierThreshold, nil when the threshold is 0. The
// channel is closed by Close. Receive from it promptly: outliers that find
// it full are dropped (OutliersDropped counts them).
func (p *Profiler) Outliers() <-chan Outlier { return p.outliers }

// OutliersDropped returns the number of outliers dropped because the
// Outliers channel was full. Those the BPF ring buffer refused are counted
// per cgroup, in CgroupStats.OutliersLost.
func (p *Profiler) OutliersDropped() uint64 { return p.dropped.Load() }

// CgroupsTurnedAway returns the number of times a cgroup found no room in
// the BPF counters (more than Options.MaxCgroups cgroups had tasks) and
// went uncounted.
func (p *Profiler) CgroupsTurnedAway() (uint64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0, ErrClosed
	}
	var n uint64
	if err := p.objs.SkLatNrFull.Get(&n); err != nil {
		return 0, fmt.Errorf("read sk_lat_nr_full: %w", err)
	}
	return n, nil
}

// readOutliers forwards the ring buffer's records to the Outliers channel
// until the reader is closed.
func (p *Profiler) readOutliers() {
	defer p.wg.Done()
	var rec ringbuf.Record
	for {
		if err := p.rb.ReadInto(&rec); err != nil {
			if !errors.Is(err, ringbuf.ErrClosed) {
				p.log.Warn("latency: read outliers", "err", err)
			}
			return
		}
		var r latencybpfSkLatOutlier
		if len(rec.RawSample) < binarySize(&r) {
			p.log.Warn("latency: short outlier record", "bytes", len(rec.RawSample))
			continue
		}
		decodeOutlier(&r, rec.RawSample)
		o := Outlier{
			Time:            time.Unix(0, int64(r.AtNs)+p.wallOff),
			PID:             int(r.Pid),
			TGID:            int(r.Tgid),
			Comm:            comm(r.Comm[:]),
			CgroupID:        r.Cgid,
			Cgroup:          p.index.path(r.Cgid),
			CPU:             int(r.Cpu),
			Kind:            WaitKind(r.Kind),
			Delay:           time.Duration(r.DelayNs),
			SameCgroupWait:  time.Duration(r.SameNs),
			OtherCgroupWait: time.Duration(r.OtherNs),
			IdleWait:        time.Duration(r.IdleNs),
		}
		select {
		case p.outliers <- o:
		default:
			p.dropped.Add(1)
		}
	}
}

func comm(c []int8) string {
	var b strings.Builder
	for _, ch := range c {
		if ch == 0 {
			break
		}
		b.WriteByte(byte(ch))
	}
	return b.String()
}

// Reset makes the counters start again from zero, without reloading: the
// next Read reports what happened since. It is exact: the BPF counters
// keep counting, and Read subtracts their values at the Reset.
func (p *Profiler) Reset() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	if err := p.read(); err != nil {
		return err
	}
	clear(p.base)
	for id, s := range p.sums {
		p.base[id] = *s
	}
	return nil
}

// Read returns the counters of every profiled cgroup since Start or the
// last Reset, sorted by path and id, in dst's array when it has the room
// (the Counts of dst's histograms are reused too): with the dst of the
// previous call, a Read in steady state allocates little. Every
// selected cgroup is listed, with zeros if its tasks did nothing; without
// a selection, every cgroup whose tasks were seen.
func (p *Profiler) Read(dst []CgroupStats) ([]CgroupStats, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return dst[:0], ErrClosed
	}
	if err := p.read(); err != nil {
		return dst[:0], err
	}
	p.keys = p.keys[:0]
	for id := range p.sums {
		p.keys = append(p.keys, id)
	}
	dst = dst[:0]
	for i, id := range p.keys {
		if i < cap(dst) {
			dst = dst[:i+1]
		} else {
			dst = append(dst, CgroupStats{})
		}
		s := *p.sums[id]
		if b, ok := p.base[id]; ok {
			subStats(&s, &b)
		}
		p.fill(&dst[i], id, &s)
	}
	slices.SortFunc(dst, func(a, b CgroupStats) int {
		if c := strings.Compare(a.Path, b.Path); c != 0 {
			return c
		}
		return compareUint(a.ID, b.ID)
	})
	return dst, nil
}

func compareUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// fill sets c from the summed counters s of cgroup id.
func (p *Profiler) fill(c *CgroupStats, id uint64, s *latencybpfSkLatStats) {
	counts := resize(c.QueueDelay.Counts, len(p.opts.Bounds)+1)
	copy(counts, s.Buckets[:])
	*c = CgroupStats{
		Path:            p.index.path(id),
		ID:              id,
		Wakeups:         s.Wakeups,
		Preemptions:     s.Preempts,
		QueueDelay:      Histogram{Bounds: p.opts.Bounds, Counts: counts, Sum: time.Duration(s.DelayNs)},
		SameCgroupWait:  time.Duration(s.SameNs),
		OtherCgroupWait: time.Duration(s.OtherNs),
		IdleWait:        time.Duration(s.IdleNs),
		OnCPU:           time.Duration(s.OncpuNs),
		OffCPU:          time.Duration(s.OffcpuNs),
		Outliers:        s.Outliers,
		OutliersLost:    s.OutliersLost,
	}
}

// read sums the BPF counters over the CPUs into p.sums, one entry per
// selected cgroup (or per cgroup seen), and adds the stretches the running
// tasks have run so far to their cgroups' on-CPU time.
func (p *Profiler) read() error {
	for _, s := range p.sums {
		*s = latencybpfSkLatStats{}
	}
	if p.selected != nil {
		for _, c := range p.selected {
			if err := p.add(c.ID); err != nil {
				return err
			}
		}
	} else {
		for id := range p.sums {
			delete(p.sums, id)
		}
		var key, next uint64
		var prev any // nil: start from the first key
		for {
			err := p.objs.SkLatCgstats.NextKey(prev, &next)
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				break
			}
			if err != nil {
				return fmt.Errorf("list cgroups in sk_lat_cgstats: %w", err)
			}
			key = next
			prev = &key
			if err := p.add(key); err != nil {
				return err
			}
		}
	}
	if err := p.objs.SkLatCpus.Lookup(uint32(0), p.cpus); err != nil {
		return fmt.Errorf("read sk_lat_cpus: %w", err)
	}
	now := uint64(monotonicNow())
	for _, c := range p.cpus {
		if c.Tracked == 0 || c.SinceNs == 0 || now <= c.SinceNs {
			continue
		}
		if s, ok := p.sums[c.Cgid]; ok {
			s.OncpuNs += now - c.SinceNs
		}
	}
	return nil
}

// add adds cgroup id's counters, summed over CPUs, to p.sums.
func (p *Profiler) add(id uint64) error {
	s := p.sums[id]
	if s == nil {
		s = new(latencybpfSkLatStats)
		p.sums[id] = s
	}
	err := p.objs.SkLatCgstats.Lookup(id, p.percpu)
	if errors.Is(err, ebpf.ErrKeyNotExist) {
		return nil // nothing counted yet, or removed while we iterated
	}
	if err != nil {
		return fmt.Errorf("read sk_lat_cgstats of cgroup %d: %w", id, err)
	}
	for i := range p.percpu {
		addStats(s, &p.percpu[i])
	}
	return nil
}

func addStats(d, s *latencybpfSkLatStats) {
	d.Wakeups += s.Wakeups
	d.Preempts += s.Preempts
	d.DelayNs += s.DelayNs
	d.SameNs += s.SameNs
	d.OtherNs += s.OtherNs
	d.IdleNs += s.IdleNs
	d.OncpuNs += s.OncpuNs
	d.OffcpuNs += s.OffcpuNs
	d.Outliers += s.Outliers
	d.OutliersLost += s.OutliersLost
	for i := range d.Buckets {
		d.Buckets[i] += s.Buckets[i]
	}
}

// subStats subtracts s (an earlier reading) from d, clamping at 0.
func subStats(d, s *latencybpfSkLatStats) {
	sub := func(a *uint64, b uint64) { *a -= min(*a, b) }
	sub(&d.Wakeups, s.Wakeups)
	sub(&d.Preempts, s.Preempts)
	sub(&d.DelayNs, s.DelayNs)
	sub(&d.SameNs, s.SameNs)
	sub(&d.OtherNs, s.OtherNs)
	sub(&d.IdleNs, s.IdleNs)
	sub(&d.OncpuNs, s.OncpuNs)
	sub(&d.OffcpuNs, s.OffcpuNs)
	sub(&d.Outliers, s.Outliers)
	sub(&d.OutliersLost, s.OutliersLost)
	for i := range d.Buckets {
		sub(&d.Buckets[i], s.Buckets[i])
	}
}

// monotonicNow returns CLOCK_MONOTONIC in ns, the clock of bpf_ktime_get_ns.
func monotonicNow() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic("latency: clock_gettime(CLOCK_MONOTONIC): " + err.Error())
	}
	return ts.Nano()
}
