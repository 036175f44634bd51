package energy

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/scxkit/scxkit/topology"
)

// Assumptions of Estimate.
const (
	// estimateVMin and estimateVMax are the relative voltages assumed at
	// the machine's lowest and highest frequency; voltage is linear in
	// frequency between them.
	estimateVMin, estimateVMax = 0.6, 1.0
	// estimateAlpha is the exponent of Pollack's rule: a core's switched
	// capacitance grows as the square of its work per cycle. The device
	// trees of the RK3399 (coefficients 100 and 436 for work per cycle
	// 0.47 : 1) and Hi3660 (110 and 550 for 0.58 : 1) give 2.0 and 2.9.
	estimateAlpha = 2.0
	// estimatePower is the power of the costliest state, in the
	// estimate's relative unit.
	estimatePower = 1_000_000
	// defaultSteps is the default of Options.Steps.
	defaultSteps = 8
)

// Estimate builds an energy model for a machine that has neither a kernel
// energy model nor OPP data: a guess, in relative power units
// (Microwatts is false), good for ranking placements on a machine whose
// cores differ, not for absolute figures. opts may be nil; Estimate reads
// cpufreq files from the same root as ReadDebugfs.
//
// Performance domains are the cpufreq policies
// (cpuN/cpufreq/related_cpus), else one domain per CPU. A domain's states
// are its frequencies (cpufreq/scaling_available_frequencies), else
// Options.Steps frequencies evenly spaced from cpuinfo_min_freq to
// cpuinfo_max_freq (else the topology's MinFreqKHz and MaxFreqKHz), else a
// made-up range proportional to capacity. Capacities come from the
// topology. The power of a CPU at frequency f is
//
//	P(f) = (capacity / fmax)^2 × f × V(f)^2
//
// the dynamic power C·f·V² with C growing as the square of the work per
// cycle (Pollack's rule), and V rising linearly from 0.6 at the machine's
// lowest frequency to 1.0 at its highest; it is scaled so that the
// costliest state draws 1000000. Performance, cost and inefficient flags
// follow as in NewPerfDomain. Model.Assumed lists what was guessed.
func Estimate(topo *topology.Topology, opts *Options) (*Model, error) {
	if topo == nil || len(topo.CPUs) == 0 {
		return nil, fmt.Errorf("energy: Estimate: %w", invalidf("no topology", "pass the result of topology.Discover"))
	}
	e := &estimator{emReader: emReader{fsys: opts.fsys()}, steps: defaultSteps}
	if opts != nil && opts.Steps > 0 {
		e.steps = min(opts.Steps, 64)
	}
	m, err := e.estimate(topo)
	if err != nil {
		return nil, fmt.Errorf("energy: Estimate: %w", err)
	}
	return m, nil
}

type estimator struct {
	emReader
	steps int
	// Notes about CPUs, merged by format.
	cpuNoteFormats []string
	cpuNoteCPUs    []topology.Cpumask
}

type estDomain struct {
	cpus     topology.Cpumask
	capacity uint64
	freqs    []uint64 // kHz, ascending
}

func (e *estimator) estimate(topo *topology.Topology) (*Model, error) {
	var online topology.Cpumask
	for _, c := range topo.CPUs {
		online.Set(c.KernelID)
	}
	var done topology.Cpumask
	var doms []estDomain
	for _, c := range topo.CPUs {
		if done.Has(c.KernelID) {
			continue
		}
		d, err := e.domain(topo, c, online.AndNot(done))
		if err != nil {
			return nil, err
		}
		done = done.Or(d.cpus)
		doms = append(doms, d)
	}
	gmin, gmax := uint64(math.MaxUint64), uint64(0)
	for _, d := range doms {
		gmin, gmax = min(gmin, d.freqs[0]), max(gmax, d.freqs[len(d.freqs)-1])
	}
	volt := func(f uint64) float64 {
		if gmax == gmin {
			return estimateVMax
		}
		return estimateVMin + (estimateVMax-estimateVMin)*float64(f-gmin)/float64(gmax-gmin)
	}
	power := make([][]float64, len(doms))
	var top float64
	for i, d := range doms {
		c := math.Pow(float64(d.capacity)/float64(d.freqs[len(d.freqs)-1]), estimateAlpha)
		for _, f := range d.freqs {
			v := volt(f)
			p := c * float64(f) * v * v
			power[i] = append(power[i], p)
			top = max(top, p)
		}
	}
	m := &Model{}
	for i, d := range doms {
		states := make([]PerfState, len(d.freqs))
		for j, f := range d.freqs {
			states[j] = PerfState{FrequencyKHz: f, Power: max(1, uint64(math.Round(power[i][j]/top*estimatePower)))}
		}
		pd, err := newPerfDomain(d.cpus, d.capacity, states)
		if err != nil {
			return nil, fmt.Errorf("cpus %s: %w", d.cpus, err)
		}
		pd.Name = fmt.Sprintf("cpu%d", d.cpus.First())
		m.Domains = append(m.Domains, pd)
	}
	sortDomains(m.Domains)
	for i, f := range e.cpuNoteFormats {
		e.notes = append(e.notes, fmt.Sprintf(f, e.cpuNoteCPUs[i]))
	}
	m.Assumed = append(e.notes, "power estimated as (capacity/fmax)^2 × f × V(f)^2, V linear in f from 0.6 to 1.0 over the machine's frequency range, in relative units (1000000 for the costliest state)")
	if err := m.validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// domain builds the domain of CPU c from its cpufreq policy; free are the
// online CPUs not yet in a domain.
func (e *estimator) domain(topo *topology.Topology, c *topology.CPU, free topology.Cpumask) (estDomain, error) {
	d := estDomain{cpus: topology.MaskOf(c.KernelID)}
	dir := fmt.Sprintf("%s/cpu%d/cpufreq", cpuSysfsDir, c.KernelID)
	related := false
	for _, name := range []string{"related_cpus", "affected_cpus"} {
		s, ok, err := e.attr(dir + "/" + name)
		if err != nil {
			return d, err
		}
		if !ok {
			continue
		}
		// related_cpus is a space-separated list of CPU ids.
		list, err := topology.ParseCPUList(strings.Join(strings.Fields(s), ","))
		if err != nil {
			return d, invalidf(dir+"/"+name, "malformed CPU list %s: want CPU ids separated by spaces, as the kernel prints them", quote(s))
		}
		d.cpus = d.cpus.Or(list.And(free))
		related = true
		break
	}
	if !related {
		e.noteCPU("cpufreq policy missing for cpus %s: one performance domain per CPU", c.KernelID)
	}
	for cpu := range d.cpus.All() {
		if tc, ok := topo.CPU(cpu); ok {
			d.capacity = max(d.capacity, uint64(tc.Capacity))
		}
	}
	d.capacity = min(max(d.capacity, 1), CapacityScale)

	freqs, err := e.frequencies(dir, c)
	if err != nil {
		return d, err
	}
	if len(freqs) == 0 {
		fmax := d.capacity * 3_000_000 / CapacityScale // 3 GHz for the fastest CPU
		freqs = e.interpolate(fmax*2/5, fmax)
		e.noteCPU("no frequencies for cpus %s: assumed a range up to 3 GHz × capacity/1024", c.KernelID)
	}
	d.freqs = freqs
	return d, nil
}

// noteCPU records that a note, a format with one %s for a CPU list,
// applies to cpu.
func (e *estimator) noteCPU(format string, cpu int) {
	i := slices.Index(e.cpuNoteFormats, format)
	if i < 0 {
		i = len(e.cpuNoteFormats)
		e.cpuNoteFormats = append(e.cpuNoteFormats, format)
		e.cpuNoteCPUs = append(e.cpuNoteCPUs, topology.Cpumask{})
	}
	e.cpuNoteCPUs[i].Set(cpu)
}

// frequencies returns the CPU's frequencies in kHz, ascending, or nil.
func (e *estimator) frequencies(dir string, c *topology.CPU) ([]uint64, error) {
	avail := dir + "/scaling_available_frequencies"
	s, ok, err := e.attr(avail)
	if err != nil {
		return nil, err
	}
	if ok {
		var freqs []uint64
		for _, f := range strings.Fields(s) {
			v, err := strconv.ParseUint(f, 10, 64)
			if err != nil {
				return nil, invalidf(avail, "malformed frequency %s: want frequencies in kHz, as the kernel prints them", quote(f))
			}
			if v > 0 && v < 1<<40 {
				freqs = append(freqs, v)
			}
		}
		slices.Sort(freqs)
		freqs = slices.Compact(freqs)
		if len(freqs) > 0 {
			return freqs, nil
		}
	}
	lo, hi := uint64(c.MinFreqKHz), uint64(c.MaxFreqKHz)
	for _, f := range []struct {
		name string
		v    *uint64
	}{{"cpuinfo_min_freq", &lo}, {"cpuinfo_max_freq", &hi}} {
		v, ok, err := e.number(dir + "/" + f.name)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		if ok && v > 0 && v < 1<<40 {
			*f.v = v
		}
	}
	if hi == 0 {
		return nil, nil
	}
	if lo == 0 || lo > hi {
		lo = hi * 2 / 5
		e.noteCPU("no minimum frequency for cpus %s: assumed 40%% of the maximum", c.KernelID)
	}
	return e.interpolate(lo, hi), nil
}

// interpolate returns e.steps frequencies evenly spaced from lo to hi.
func (e *estimator) interpolate(lo, hi uint64) []uint64 {
	if lo >= hi || e.steps == 1 {
		return []uint64{max(hi, 1)}
	}
	freqs := make([]uint64, 0, e.steps)
	for i := range e.steps {
		f := lo + (hi-lo)*uint64(i)/uint64(e.steps-1)
		if len(freqs) == 0 || f > freqs[len(freqs)-1] {
			freqs = append(freqs, f)
		}
	}
	return freqs
}
