package energy

import (
	"fmt"
	"math"
	"slices"

	"github.com/scxkit/scxkit/topology"
)

// TableOptions tunes CheapestSets. A nil *TableOptions means the defaults.
type TableOptions struct {
	// Granularity is the step between demand levels, in capacity units;
	// 0 means DefaultGranularity. Each level is solved exactly; the step
	// only sets how many levels the table holds.
	Granularity int64
	// CPUCost is an energy charged for every warm CPU, in the unit of
	// Level.Energy (cost × capacity), standing for what the kernel's
	// model leaves out: the static power of a CPU kept out of deep idle.
	// With 0, the cheapest sets carry the demand at the lowest model
	// energy with as few CPUs as that energy allows.
	CPUCost uint64
}

// DefaultGranularity is the demand step of a table when TableOptions does
// not give one: 1/64 of the fastest CPU.
const DefaultGranularity = 16

// Limits of CheapestSets: the table's search keeps a byte array of
// 8 × domains × (total capacity + 1) bytes and does about
// 3 × options × total capacity steps, where a domain with n CPUs and s
// efficient states has n × s options.
const (
	maxTableCells = 1 << 23 // domains × (capacity+1): 64 MiB of choices
	maxTableWork  = 1 << 30 // inner-loop steps
)

// Table gives, for demand levels from 0 to the machine's capacity, the
// cheapest way to carry the demand: which CPUs to keep warm, at which
// performance state, and the model's energy. Build it with
// Model.CheapestSets.
type Table struct {
	// Granularity is the demand step: Levels[i].Demand is
	// i × Granularity, except the last level, whose demand is Capacity.
	Granularity int64
	// Capacity is the total capacity of the model's CPUs.
	Capacity int64
	// CPUCost is TableOptions.CPUCost.
	CPUCost uint64
	// Levels are the demand levels, from demand 0 (no warm CPU).
	Levels []Level
}

// Level is the cheapest way to carry one level of demand.
type Level struct {
	// Demand is the total utilisation carried, in capacity units.
	Demand int64
	// Energy is the model's energy for the placement (the sum of the
	// shares' Cost × Util, see PerfDomain.Energy) plus CPUCost per warm
	// CPU.
	Energy float64
	// CPUs are the kernel ids of the warm CPUs, cheapest first: by the
	// cost of their share's state, then by domain and CPU.
	CPUs []int
	// Shares say how the demand is spread, one per domain used, in the
	// order of CPUs.
	Shares []Share
}

// Share is the part of a level's demand that one performance domain
// carries.
type Share struct {
	// Domain is the index of the domain in Model.Domains.
	Domain int
	// CPUs are the domain's warm CPUs: its lowest-numbered ones. The
	// mask may share storage with other levels' masks: Clone it before
	// modifying it.
	CPUs topology.Cpumask
	// State is the index of the domain's performance state, the one
	// SelectPerfState gives for Util spread evenly over CPUs.
	State int
	// Util is the utilisation the domain carries, spread evenly over
	// CPUs: at most len(CPUs) × the state's Performance.
	Util int64
}

// Lookup returns the level for a demand: the first level whose demand is
// at least demand, or the last level when demand exceeds the capacity.
func (t *Table) Lookup(demand float64) *Level {
	if !(demand > 0) || len(t.Levels) == 1 {
		return &t.Levels[0]
	}
	i := math.Ceil(demand / float64(t.Granularity))
	if i >= float64(len(t.Levels)-1) {
		return &t.Levels[len(t.Levels)-1]
	}
	return &t.Levels[int(i)]
}

// CheapestSets builds the cheapest-set table of a valid model.
//
// For a demand D, the search chooses for each domain a number k of warm
// CPUs, an efficient performance state s and a utilisation u, with
// 0 ≤ u ≤ k × Performance(s) and the u adding up to D, and minimizes
//
//	Σ Cost(s) × u  +  CPUCost × Σ k
//
// then, among placements of equal energy, the number of warm CPUs. The
// utilisations range over the real numbers; the minimum is exact (for the
// integer demand of each level) because an optimal placement fills every
// domain it uses to k × Performance(s) except at most one, so all but one
// share are integers and the last is D minus them. With the state chosen
// from the utilisation, as the kernel does, rather than freely, the
// minimum is the same: the kernel picks the lowest efficient state that
// covers the utilisation, never costlier than a higher efficient one.
//
// The search is a knapsack over capacity: the model's classes of
// equivalent domains share their option lists, and each domain adds its
// options — k × s full placements, plus the one partial placement, whose
// best source is found with a sliding-window minimum — so the time is
// O(options × capacity) and linear in the number of domains, never in the
// number of CPU subsets. Models beyond its bounds (about 8 million
// domain × capacity cells, 10⁹ steps) give an error wrapping ErrTooBig;
// an invalid model (see Validate) or options one wrapping ErrInvalid.
func (m *Model) CheapestSets(opts *TableOptions) (*Table, error) {
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("energy: CheapestSets: %w", err)
	}
	var o TableOptions
	if opts != nil {
		o = *opts
	}
	if o.Granularity < 0 {
		return nil, fmt.Errorf("energy: CheapestSets: TableOptions.Granularity %d: %w: want a positive step in capacity units, or 0 for %d", o.Granularity, ErrInvalid, DefaultGranularity)
	}
	if o.Granularity == 0 {
		o.Granularity = DefaultGranularity
	}
	if o.CPUCost > MaxCost*CapacityScale {
		return nil, fmt.Errorf("energy: CheapestSets: TableOptions.CPUCost %d: %w: want at most %d", o.CPUCost, ErrInvalid, uint64(MaxCost*CapacityScale))
	}
	s, err := newSearch(m, o.CPUCost)
	if err != nil {
		return nil, err
	}
	s.run()
	t := &Table{Granularity: o.Granularity, Capacity: s.w, CPUCost: o.CPUCost}
	n := (s.w + o.Granularity - 1) / o.Granularity
	t.Levels = make([]Level, 0, n+1)
	for i := int64(0); i <= n; i++ {
		t.Levels = append(t.Levels, s.level(min(i*o.Granularity, s.w)))
	}
	return t, nil
}

// option is one way a domain carries work: k warm CPUs at state, up to
// capacity k × performance, at rate cost per unit.
type option struct {
	state int
	k     int32
	cap   int64
	rate  int64
	full  int64 // energy when full: rate × cap + CPU cost × k
}

// search holds the knapsack of CheapestSets. Layer 0 holds placements
// where every used domain is full; layer 1 those with one partial domain.
type search struct {
	m       *Model
	cpuCost int64
	order   []int      // domains in search order: by class
	opts    [][]option // per class
	classOf []int      // class of each domain
	w       int64      // total capacity

	e0, e1 []int64 // best energy per total utilisation, after all domains
	c0, c1 []int32 // warm CPUs of those
	// Per step (domain in order) and utilisation: the choice, 0 for
	// "unused", i+1 for full option i, len(options)+i+1 for partial
	// option i; and for partial choices the utilisation before the step.
	ch0, ch1 []uint16
	src      []int32
	masks    map[[2]int]topology.Cpumask // see firstCPUs
	scratch  []Share
}

const inf = math.MaxInt64

func newSearch(m *Model, cpuCost uint64) (*search, error) {
	s := &search{m: m, cpuCost: int64(cpuCost), classOf: make([]int, len(m.Domains))}
	classes := m.Classes()
	var work int64
	for ci, c := range classes {
		states := c.States(m)
		var opts []option
		for k := 1; k <= c.CPUsPerDomain; k++ {
			for si, st := range states {
				if st.Inefficient {
					continue
				}
				capa := int64(k) * int64(st.Performance)
				rate := int64(st.Cost)
				opts = append(opts, option{state: si, k: int32(k), cap: capa, rate: rate, full: rate*capa + s.cpuCost*int64(k)})
			}
		}
		if 2*len(opts)+1 > math.MaxUint16 {
			return nil, fmt.Errorf("energy: CheapestSets: domain %d: %d CPUs × efficient states: %w: a table holds at most %d", c.Domains[0], len(opts), ErrTooBig, math.MaxUint16/2)
		}
		s.opts = append(s.opts, opts)
		for _, d := range c.Domains {
			s.order = append(s.order, d)
			s.classOf[d] = ci
			s.w += int64(c.CPUsPerDomain) * int64(m.Domains[d].Capacity())
			work += int64(len(opts))
		}
	}
	cells := int64(len(s.order)) * (s.w + 1)
	if s.w > math.MaxInt32 || cells > maxTableCells || work > maxTableWork/3/max(s.w, 1) {
		return nil, fmt.Errorf("energy: CheapestSets: %d domains with a total capacity of %d (%d options): %w: a table takes at most %d domain × capacity cells and %d steps", len(s.order), s.w, work, ErrTooBig, maxTableCells, maxTableWork)
	}
	return s, nil
}

// better reports whether (e, c) is a better placement than (be, bc):
// less energy, then fewer warm CPUs.
func better(e int64, c int32, be int64, bc int32) bool {
	return e < be || e == be && c < bc
}

func (s *search) run() {
	n := s.w + 1
	e0, e1 := make([]int64, n), make([]int64, n)
	c0, c1 := make([]int32, n), make([]int32, n)
	ne0, ne1 := make([]int64, n), make([]int64, n)
	nc0, nc1 := make([]int32, n), make([]int32, n)
	for _, e := range [][]int64{e0, e1, ne0, ne1} {
		for i := range e {
			e[i] = inf
		}
	}
	e0[0] = 0
	s.ch0 = make([]uint16, int64(len(s.order))*n)
	s.ch1 = make([]uint16, int64(len(s.order))*n)
	s.src = make([]int32, int64(len(s.order))*n)
	deque := make([]int32, 0, n) // utilisations, by increasing key
	var reach int64              // the largest utilisation the steps so far can carry
	for step, d := range s.order {
		opts := s.opts[s.classOf[d]]
		ch0 := s.ch0[int64(step)*n : int64(step+1)*n]
		ch1 := s.ch1[int64(step)*n : int64(step+1)*n]
		src := s.src[int64(step)*n : int64(step+1)*n]
		prev := reach
		reach += int64(s.m.Domains[d].CPUs.Weight()) * int64(s.m.Domains[d].Capacity())
		copy(ne0[:reach+1], e0[:reach+1])
		copy(nc0[:reach+1], c0[:reach+1])
		copy(ne1[:reach+1], e1[:reach+1])
		copy(nc1[:reach+1], c1[:reach+1])
		for oi, o := range opts {
			choice := uint16(oi + 1)
			// The domain full, in either layer: from w−cap to w.
			for v := int64(0); v <= prev; v++ {
				w := v + o.cap
				if pe := e0[v]; pe != inf {
					if e, c := pe+o.full, c0[v]+o.k; e < ne0[w] || e == ne0[w] && c < nc0[w] {
						ne0[w], nc0[w], ch0[w] = e, c, choice
					}
				}
				if pe := e1[v]; pe != inf {
					if e, c := pe+o.full, c1[v]+o.k; e < ne1[w] || e == ne1[w] && c < nc1[w] {
						ne1[w], nc1[w], ch1[w] = e, c, choice
					}
				}
			}
			// The domain partial, carrying x in [1, cap] on top of a
			// layer-0 placement of w−x: energy e0[w−x] + rate × x + CPU
			// cost × k. That is rate × w + CPU cost × k plus the
			// minimum of e0[v] − rate × v over the window v in
			// [w−cap, w−1], which the deque tracks.
			choice = uint16(len(opts) + oi + 1)
			deque, head := deque[:0], 0
			add := s.cpuCost * int64(o.k)
			for w := int64(1); w <= min(prev+o.cap, reach); w++ {
				if v := w - 1; v <= prev && e0[v] != inf {
					ke, kc := e0[v]-o.rate*v, c0[v]
					for len(deque) > head {
						b := int64(deque[len(deque)-1])
						be, bc := e0[b]-o.rate*b, c0[b]
						if ke < be || ke == be && kc <= bc {
							deque = deque[:len(deque)-1]
							continue
						}
						break
					}
					deque = append(deque, int32(v))
				}
				for len(deque) > head && int64(deque[head]) < w-o.cap {
					head++
				}
				if len(deque) == head {
					continue
				}
				v := int64(deque[head])
				if e, c := e0[v]-o.rate*v+o.rate*w+add, c0[v]+o.k; e < ne1[w] || e == ne1[w] && c < nc1[w] {
					ne1[w], nc1[w], ch1[w], src[w] = e, c, choice, int32(v)
				}
			}
		}
		e0, ne0 = ne0, e0
		c0, nc0 = nc0, c0
		e1, ne1 = ne1, e1
		c1, nc1 = nc1, c1
	}
	s.e0, s.e1, s.c0, s.c1 = e0, e1, c0, c1
}

// firstCPUs returns the mask of the k lowest CPUs of domain d, made once
// and shared by the levels.
func (s *search) firstCPUs(d, k int) topology.Cpumask {
	key := [2]int{d, k}
	if m, ok := s.masks[key]; ok {
		return m
	}
	var m topology.Cpumask
	for cpu := range s.m.Domains[d].CPUs.All() {
		if k == 0 {
			break
		}
		m.Set(cpu)
		k--
	}
	if s.masks == nil {
		s.masks = map[[2]int]topology.Cpumask{}
	}
	s.masks[key] = m
	return m
}

// level reconstructs the cheapest placement of demand w.
func (s *search) level(w int64) Level {
	lv := Level{Demand: w}
	n := s.w + 1
	layer := 0
	e, c := s.e0[w], s.c0[w]
	if better(s.e1[w], s.c1[w], e, c) {
		layer, e, c = 1, s.e1[w], s.c1[w]
	}
	lv.Energy = float64(e)
	shares := s.scratch[:0]
	for step := len(s.order) - 1; step >= 0; step-- {
		d := s.order[step]
		opts := s.opts[s.classOf[d]]
		i := int64(step)*n + w
		var ch int
		if layer == 0 {
			ch = int(s.ch0[i])
		} else {
			ch = int(s.ch1[i])
		}
		if ch == 0 {
			continue
		}
		var o option
		var util int64
		if ch <= len(opts) {
			o, util = opts[ch-1], opts[ch-1].cap
		} else {
			o = opts[ch-len(opts)-1]
			util = w - int64(s.src[i])
			layer = 0
		}
		w -= util
		shares = append(shares, Share{Domain: d, CPUs: s.firstCPUs(d, int(o.k)), State: o.state, Util: util})
	}
	s.scratch = shares
	lv.Shares = slices.Clone(shares)
	slices.SortFunc(lv.Shares, func(a, b Share) int {
		ca := s.m.Domains[a.Domain].States[a.State].Cost
		cb := s.m.Domains[b.Domain].States[b.State].Cost
		switch {
		case ca < cb:
			return -1
		case ca > cb:
			return 1
		}
		return a.Domain - b.Domain
	})
	lv.CPUs = make([]int, 0, c)
	for _, sh := range lv.Shares {
		for cpu := range sh.CPUs.All() {
			lv.CPUs = append(lv.CPUs, cpu)
		}
	}
	return lv
}
