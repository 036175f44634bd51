package energy

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/scxkit/scxkit/topology"
)

// Where the cpufreq knobs live, relative to the root. Since Linux 4.3 each
// cpufreq policy has a directory cpufreq/policyN (N is a CPU of the policy,
// usually the first) and cpuN/cpufreq is a symbolic link to it; older
// kernels only have the cpuN/cpufreq directories.
const (
	knobCPUDir    = "sys/devices/system/cpu"
	knobPolicyDir = knobCPUDir + "/cpufreq"
)

// The cpufreq attributes Knobs reads and writes, in a policy directory.
const (
	knobGovernor     = "scaling_governor"
	knobGovernors    = "scaling_available_governors"
	knobEPP          = "energy_performance_preference"
	knobEPPs         = "energy_performance_available_preferences"
	knobMinFreq      = "scaling_min_freq"
	knobMaxFreq      = "scaling_max_freq"
	knobHWMinFreq    = "cpuinfo_min_freq"
	knobHWMaxFreq    = "cpuinfo_max_freq"
	knobDriver       = "scaling_driver"
	knobRelatedCPUs  = "related_cpus"
	knobAffectedCPUs = "affected_cpus"
)

// knobSentinel is the type of ErrNoKnob and ErrReadOnly: a sentinel that
// also matches a standard fs error, so that callers can test for either.
type knobSentinel struct {
	msg  string
	like error
}

func (e *knobSentinel) Error() string        { return e.msg }
func (e *knobSentinel) Is(target error) bool { return target == e.like }

var (
	// ErrNoKnob is wrapped by the errors of Knobs methods that find a
	// knob missing: a CPU without a cpufreq policy, or a policy without
	// the attribute. It matches fs.ErrNotExist too. It is common: virtual
	// machines usually have no cpufreq driver at all, and drivers other
	// than intel_pstate (with HWP) and amd-pstate (in active mode) have no
	// energy_performance_preference.
	ErrNoKnob error = &knobSentinel{"no such cpufreq knob", fs.ErrNotExist}

	// ErrReadOnly is wrapped by the errors of Knobs methods that may not
	// write a knob: the write failed with EACCES, EPERM or EROFS, because
	// the process is not root or sysfs is mounted read-only, as in most
	// containers. It matches fs.ErrPermission too.
	ErrReadOnly error = &knobSentinel{"cpufreq knob is read-only", fs.ErrPermission}
)

// KnobOptions says where Knobs finds sysfs and where it logs. The zero
// value, like a nil *KnobOptions, uses the running system's /sys and logs
// to slog.Default().
type KnobOptions struct {
	// Root is the directory holding sys/, as topology.Options.Root; ""
	// means "/". Tests point it at a copy of sysfs.
	Root string
	// Logger gets a Debug record for every knob written and an Info
	// record for every knob restored, or a Warn record for every knob
	// that could not be restored. Nil: slog.Default(); to log nothing,
	// pass slog.New(slog.DiscardHandler).
	Logger *slog.Logger
}

// FreqPolicy is one cpufreq policy: a set of CPUs that share their
// frequency knobs. Writing a knob of a policy changes it for all its CPUs.
type FreqPolicy struct {
	// Dir is the policy's directory relative to the root, such as
	// sys/devices/system/cpu/cpufreq/policy0, or
	// sys/devices/system/cpu/cpu0/cpufreq on kernels before 4.3.
	Dir string
	// CPUs are the policy's CPUs, online or not (related_cpus).
	CPUs topology.Cpumask
	// Driver is the scaling driver (scaling_driver), such as
	// intel_pstate, amd-pstate-epp or acpi-cpufreq; "" if unreadable.
	Driver string
}

// KnobChange is one knob a Knobs changed and has not restored yet.
type KnobChange struct {
	// Path is the knob's file relative to the root, such as
	// sys/devices/system/cpu/cpufreq/policy0/scaling_governor.
	Path string
	// CPUs are the CPUs the knob applies to: all CPUs of its policy.
	CPUs topology.Cpumask
	// Old is the knob's value before the first write, which Restore
	// writes back; New is the value last written. Both are without the
	// trailing newline.
	Old, New string
}

// String formats c for a log line, such as
// "policy0/scaling_governor (cpus 0-3): powersave -> performance".
func (c KnobChange) String() string {
	p := strings.TrimPrefix(c.Path, knobPolicyDir+"/")
	p = strings.TrimPrefix(p, knobCPUDir+"/")
	return fmt.Sprintf("%s (cpus %s): %s -> %s", p, c.CPUs, c.Old, c.New)
}

// Knobs sets per-policy cpufreq knobs (governor, energy-performance
// preference, frequency limits) and puts them back: an energy-saving
// scheduler changes an operator's settings, and must return them when it
// exits, whether normally, with an error, or by a panic.
//
// Every first write to a knob records the knob's original content, and
// Restore writes the originals back. Call Restore with defer right after
// OpenKnobs, so that it runs on every return and while a panic unwinds:
//
//	k, err := energy.OpenKnobs(nil)
//	if err != nil {
//		return err
//	}
//	defer k.Restore()
//
// A scheduler on package runner opens its Knobs in Command.Setup, once
// Env.Kernel has found a kernel that can run it, and registers Restore
// with Env.OnExit, which runs it after the scheduler is detached:
//
//	k, err := energy.OpenKnobs(&energy.KnobOptions{Logger: env.Log})
//	if err != nil {
//		return scx.Config{}, err
//	}
//	env.OnExit(k.Restore)
//
// A process that is killed (SIGKILL, or a signal it does not handle)
// runs no deferred calls; a scheduler that should restore on SIGINT or
// SIGTERM must catch them, for example with signal.NotifyContext (as
// package runner does), and return normally.
//
// The Set methods take a CPU mask, but the kernel's knobs are per policy:
// a Set method writes each policy holding a CPU of the mask once, which
// changes the knob for all CPUs of that policy. Before writing anything,
// a Set method reads every policy's current value and checks the new
// value against what each policy allows, so a missing knob or an invalid
// value changes nothing. A write that fails part way leaves the policies
// written before it changed and recorded for Restore. A Set method skips
// a policy whose knob already holds the value.
//
// The methods of a Knobs may be called from several goroutines.
type Knobs struct {
	root     string
	log      *slog.Logger
	policies []FreqPolicy
	byCPU    map[int]int // CPU -> index in policies

	// write writes one knob; tests replace it to make writes fail.
	write func(name string, data []byte) error

	mu    sync.Mutex
	saved []savedKnob // changed knobs, in the order of their first write
}

// savedKnob is a knob Knobs changed.
type savedKnob struct {
	rel    string // path relative to the root
	policy int    // index in Knobs.policies
	orig   []byte // content before the first write, byte for byte
	cur    string // value last written
}

// OpenKnobs finds the cpufreq policies under opts.Root and returns a Knobs
// that changes nothing yet. opts may be nil. A machine without cpufreq (a
// virtual machine, or a kernel without a driver for the CPU) is not an
// error: the Knobs has no policies, and its Set methods return errors
// wrapping ErrNoKnob.
//
// OpenKnobs fails when the policy directories cannot be listed, or when
// a policy's CPU list is malformed or claims a CPU of another policy.
func OpenKnobs(opts *KnobOptions) (*Knobs, error) {
	var o KnobOptions
	if opts != nil {
		o = *opts
	}
	if o.Root == "" {
		o.Root = "/"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	k := &Knobs{root: o.Root, log: o.Logger, byCPU: map[int]int{}, write: writeKnobFile}
	if err := k.findPolicies(); err != nil {
		return nil, fmt.Errorf("energy: open cpufreq knobs: %w", err)
	}
	return k, nil
}

// abs returns the path of rel, a path relative to the root, in the file
// system.
func (k *Knobs) abs(rel string) string {
	return filepath.Join(k.root, filepath.FromSlash(rel))
}

// findPolicies fills k.policies and k.byCPU from the policyN directories
// or, failing them, the cpuN/cpufreq directories.
func (k *Knobs) findPolicies() error {
	dirs, err := k.listDirs(knobPolicyDir, "policy")
	if err != nil {
		return err
	}
	if len(dirs) == 0 {
		// Before Linux 4.3: cpuN/cpufreq, a directory for the first CPU
		// of a policy and a symbolic link to it for the others.
		cpus, err := k.listDirs(knobCPUDir, "cpu")
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, c := range cpus {
			dir := c + "/cpufreq"
			real, err := filepath.EvalSymlinks(k.abs(dir))
			if err != nil || seen[real] {
				continue
			}
			if fi, err := os.Stat(real); err != nil || !fi.IsDir() {
				continue
			}
			seen[real] = true
			dirs = append(dirs, dir)
		}
	}
	for _, dir := range dirs {
		p := FreqPolicy{Dir: dir}
		for _, attr := range []string{knobRelatedCPUs, knobAffectedCPUs} {
			b, err := os.ReadFile(k.abs(path.Join(dir, attr)))
			if err != nil {
				continue
			}
			// cpufreq prints CPU lists as numbers separated by spaces.
			list := strings.Join(strings.Fields(string(b)), ",")
			m, err := topology.ParseCPUList(list)
			if err != nil {
				return fmt.Errorf("%s: %w", path.Join(dir, attr), err)
			}
			p.CPUs = m
			if !m.Empty() {
				break
			}
		}
		if p.CPUs.Empty() {
			// No CPU list: the number in the directory name is a CPU of
			// the policy, and the only one known.
			base := path.Base(strings.TrimSuffix(dir, "/cpufreq"))
			num, ok := strings.CutPrefix(base, "policy")
			if !ok {
				num = strings.TrimPrefix(base, "cpu")
			}
			n, err := strconv.Atoi(num)
			if err != nil {
				continue
			}
			p.CPUs = topology.MaskOf(n)
		}
		if b, err := os.ReadFile(k.abs(path.Join(dir, knobDriver))); err == nil {
			p.Driver = strings.TrimSpace(string(b))
		}
		k.policies = append(k.policies, p)
	}
	slices.SortFunc(k.policies, func(a, b FreqPolicy) int { return a.CPUs.First() - b.CPUs.First() })
	for i, p := range k.policies {
		for c := range p.CPUs.All() {
			if j, ok := k.byCPU[c]; ok {
				return fmt.Errorf("cpu %d is in both %s and %s", c, k.policies[j].Dir, p.Dir)
			}
			k.byCPU[c] = i
		}
	}
	return nil
}

// listDirs returns the entries prefixN of directory dir (relative to the
// root), as paths relative to the root, in the order of N. A missing dir
// has no entries.
func (k *Knobs) listDirs(dir, prefix string) ([]string, error) {
	ents, err := os.ReadDir(k.abs(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	type entry struct {
		n    int
		name string
	}
	var es []entry
	for _, e := range ents {
		num, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok {
			continue
		}
		n, err := strconv.Atoi(num)
		if err != nil || n < 0 || strconv.Itoa(n) != num {
			continue
		}
		es = append(es, entry{n, e.Name()})
	}
	slices.SortFunc(es, func(a, b entry) int { return a.n - b.n })
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = dir + "/" + e.name
	}
	return out, nil
}

// Policies returns the cpufreq policies, in the order of their first CPU;
// none on a machine without cpufreq.
func (k *Knobs) Policies() []FreqPolicy {
	out := make([]FreqPolicy, len(k.policies))
	for i, p := range k.policies {
		out[i] = p
		out[i].CPUs = p.CPUs.Clone()
	}
	return out
}

// CPUs returns the CPUs that have a cpufreq policy, the mask to pass to a
// Set method to change every policy.
func (k *Knobs) CPUs() topology.Cpumask {
	var m topology.Cpumask
	for _, p := range k.policies {
		m = m.Or(p.CPUs)
	}
	return m
}

// SetGovernor sets the scaling governor (scaling_governor) of the
// policies of cpus, such as "powersave" or "schedutil". The governor must
// be listed in each policy's scaling_available_governors; intel_pstate and
// amd-pstate in active mode list only "performance" and "powersave". A
// governor built as a module that is not loaded is not listed yet:
// load it first (modprobe cpufreq_NAME).
//
// A name that is not a plain identifier (see CheckGovernor) is refused
// before any knob is read.
func (k *Knobs) SetGovernor(cpus topology.Cpumask, governor string) error {
	if err := checkGovernor(governor); err != nil {
		return fmt.Errorf("energy: set governor on cpus %s: %w", cpus, err)
	}
	err := k.set(cpus, knobGovernor, governor, func(k *Knobs, p *FreqPolicy) error {
		return k.checkListed(p, governor, "governor", knobGovernors,
			" (a governor built as a module is listed once loaded: modprobe cpufreq_"+governor+")")
	})
	if err != nil {
		return fmt.Errorf("energy: set governor %q on cpus %s: %w", governor, cpus, err)
	}
	return nil
}

// maxGovernorLen is the longest cpufreq governor name (CPUFREQ_NAME_LEN
// less the NUL).
const maxGovernorLen = 15

// governorRE matches a plain identifier, as every cpufreq governor's name
// is (performance, powersave, schedutil, ondemand, conservative,
// userspace).
var governorRE = regexp.MustCompile(`^[A-Za-z0-9_]+$`)

// CheckGovernor checks that governor has the form of a cpufreq governor
// name: letters, digits and '_', at most 15 bytes. It does not look at the
// machine; SetGovernor also checks that the governor is available. A
// command line tool calls it to refuse a bad name before changing
// anything. The error wraps ErrInvalid.
func CheckGovernor(governor string) error {
	if err := checkGovernor(governor); err != nil {
		return fmt.Errorf("energy: %w", err)
	}
	return nil
}

// checkGovernor is CheckGovernor with an error that does not name the
// package.
func checkGovernor(governor string) error {
	if len(governor) > maxGovernorLen || !governorRE.MatchString(governor) {
		return fmt.Errorf("governor %q: %w: not a cpufreq governor name (letters, digits and '_', at most %d bytes); use e.g. schedutil or powersave", governor, ErrInvalid, maxGovernorLen)
	}
	return nil
}

// CheckEPP checks that pref has the form of an energy-performance
// preference: a plain identifier such as balance_power, or a number from
// 0 to 255. It does not look at the machine; SetEPP also checks that the
// preference is available. The error wraps ErrInvalid.
func CheckEPP(pref string) error {
	if n, err := strconv.Atoi(pref); err == nil && strconv.Itoa(n) == pref {
		if n < 0 || n > 255 {
			return fmt.Errorf("energy: %w", eppRangeError(n))
		}
		return nil
	}
	if len(pref) > 63 || !governorRE.MatchString(pref) {
		return fmt.Errorf("energy: energy performance preference %q: %w: not a preference name (letters, digits and '_') or a number from 0 to 255; use e.g. balance_power", pref, ErrInvalid)
	}
	return nil
}

// eppRangeError is the error for a numeric preference n out of 0-255.
func eppRangeError(n int) error {
	return fmt.Errorf("energy performance preference %d: %w: out of range 0-255", n, ErrInvalid)
}

// SetEPP sets the energy-performance preference
// (energy_performance_preference) of the policies of cpus: a name listed
// in energy_performance_available_preferences, such as "performance",
// "balance_performance", "balance_power" or "power", or a number from 0
// (performance) to 255 (power), which the kernel accepts where the
// hardware has an EPP register. Only intel_pstate (with HWP) and
// amd-pstate in active mode have this knob.
//
// While a policy's governor is "performance", intel_pstate and amd-pstate
// refuse any preference but "performance" (0) with EBUSY; SetEPP's error
// then says so. Set another governor first.
func (k *Knobs) SetEPP(cpus topology.Cpumask, pref string) error {
	err := k.set(cpus, knobEPP, pref, func(k *Knobs, p *FreqPolicy) error {
		if n, err := strconv.Atoi(pref); err == nil && strconv.Itoa(n) == pref {
			if n < 0 || n > 255 {
				return eppRangeError(n)
			}
			return nil
		}
		return k.checkListed(p, pref, "energy performance preference", knobEPPs, " or a number from 0 to 255")
	})
	if err != nil {
		return fmt.Errorf("energy: set energy performance preference %q on cpus %s: %w", pref, cpus, err)
	}
	return nil
}

// SetMinFreq sets the lower frequency limit (scaling_min_freq) of the
// policies of cpus, in kHz. It must lie in each policy's hardware range,
// cpuinfo_min_freq to cpuinfo_max_freq.
func (k *Knobs) SetMinFreq(cpus topology.Cpumask, kHz int) error {
	return k.setFreq(cpus, knobMinFreq, "minimum", kHz)
}

// SetMaxFreq sets the upper frequency limit (scaling_max_freq) of the
// policies of cpus, in kHz. It must lie in each policy's hardware range,
// cpuinfo_min_freq to cpuinfo_max_freq. To raise both limits, set the
// maximum first; to lower both, the minimum first, so that the minimum
// never exceeds the maximum, which the kernel may refuse or clamp.
// Restore undoes the writes in reverse order, which keeps that property.
func (k *Knobs) SetMaxFreq(cpus topology.Cpumask, kHz int) error {
	return k.setFreq(cpus, knobMaxFreq, "maximum", kHz)
}

func (k *Knobs) setFreq(cpus topology.Cpumask, attr, what string, kHz int) error {
	err := k.set(cpus, attr, strconv.Itoa(kHz), func(k *Knobs, p *FreqPolicy) error {
		lo, loOK := k.readKHz(p, knobHWMinFreq)
		hi, hiOK := k.readKHz(p, knobHWMaxFreq)
		switch {
		case kHz <= 0:
			return fmt.Errorf("frequency %d kHz: %w: not positive", kHz, ErrInvalid)
		case loOK && kHz < lo, hiOK && kHz > hi:
			return fmt.Errorf("frequency %d kHz: %w: outside the hardware range %d-%d kHz of %s (cpus %s)",
				kHz, ErrInvalid, lo, hi, path.Base(p.Dir), p.CPUs)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("energy: set %s frequency %d kHz on cpus %s: %w", what, kHz, cpus, err)
	}
	return nil
}

// readKHz reads a frequency attribute of p; ok is false if it is missing
// or malformed, and then there is nothing to check against.
func (k *Knobs) readKHz(p *FreqPolicy, attr string) (kHz int, ok bool) {
	b, err := os.ReadFile(k.abs(path.Join(p.Dir, attr)))
	if err != nil {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return n, err == nil
}

// checkListed returns an error naming value and the allowed values if
// value is not among the words of p's attribute list. A missing list
// checks nothing: the kernel still validates the write.
func (k *Knobs) checkListed(p *FreqPolicy, value, what, list, hint string) error {
	b, err := os.ReadFile(k.abs(path.Join(p.Dir, list)))
	if err != nil {
		return nil
	}
	allowed := strings.Fields(string(b))
	if slices.Contains(allowed, value) {
		return nil
	}
	return fmt.Errorf("%s %q: %w: not available for %s (cpus %s); available: %s%s",
		what, value, ErrInvalid, path.Base(p.Dir), p.CPUs, strings.Join(allowed, " "), hint)
}

// set writes value to attribute attr of every policy of cpus, after
// reading all their current values and checking value with check.
func (k *Knobs) set(cpus topology.Cpumask, attr, value string, check func(*Knobs, *FreqPolicy) error) error {
	if cpus.Empty() {
		return fmt.Errorf("empty CPU mask: %w: give at least one CPU", ErrInvalid)
	}
	if value == "" || strings.ContainsAny(value, " \t\n") {
		return fmt.Errorf("value %q: %w: empty or with white space", value, ErrInvalid)
	}
	k.mu.Lock()
	defer k.mu.Unlock()

	// The policies of cpus, in order.
	var idx []int
	var missing topology.Cpumask
	for c := range cpus.All() {
		i, ok := k.byCPU[c]
		if !ok {
			missing.Set(c)
			continue
		}
		if !slices.Contains(idx, i) {
			idx = append(idx, i)
		}
	}
	if !missing.Empty() {
		return fmt.Errorf("%w: no cpufreq policy for cpus %s under %s (%s)",
			ErrNoKnob, missing, k.abs(knobPolicyDir), k.noPolicyHint())
	}
	slices.Sort(idx)

	// Read and check everything before writing anything.
	cur := make([][]byte, len(idx))
	for j, i := range idx {
		p := &k.policies[i]
		rel := path.Join(p.Dir, attr)
		b, err := os.ReadFile(k.abs(rel))
		if err != nil {
			return k.knobError("read", p, attr, value, err)
		}
		cur[j] = b
		if err := check(k, p); err != nil {
			return err
		}
	}

	for j, i := range idx {
		p := &k.policies[i]
		rel := path.Join(p.Dir, attr)
		old := strings.TrimSpace(string(cur[j]))
		if old == value {
			continue
		}
		if err := k.write(k.abs(rel), []byte(value+"\n")); err != nil {
			return k.knobError("write", p, attr, value, err)
		}
		k.record(rel, i, cur[j], value)
		k.log.Debug("energy: set cpufreq knob", "path", rel, "cpus", p.CPUs.String(), "old", old, "new", value)
	}
	return nil
}

// record notes that rel, a knob of policy i that held orig, now holds
// value. A knob set back to its original value is forgotten.
func (k *Knobs) record(rel string, i int, orig []byte, value string) {
	j := slices.IndexFunc(k.saved, func(s savedKnob) bool { return s.rel == rel })
	if j < 0 {
		k.saved = append(k.saved, savedKnob{rel: rel, policy: i, orig: orig, cur: value})
		return
	}
	if strings.TrimSpace(string(k.saved[j].orig)) == value {
		k.saved = slices.Delete(k.saved, j, j+1)
		return
	}
	k.saved[j].cur = value
}

// Changed returns the knobs changed and not restored, in the order of
// their first change.
func (k *Knobs) Changed() []KnobChange {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]KnobChange, len(k.saved))
	for i, s := range k.saved {
		out[i] = KnobChange{
			Path: s.rel,
			CPUs: k.policies[s.policy].CPUs.Clone(),
			Old:  strings.TrimSpace(string(s.orig)),
			New:  s.cur,
		}
	}
	return out
}

// Restore writes back the original content of every knob changed, byte
// for byte, in the reverse order of the changes, so that knobs that
// depend on each other (an EPP set under a governor) are undone in a
// valid order. It goes on past failures and returns them joined with
// errors.Join; the knobs it restored are forgotten, and those it could
// not restore stay recorded, so a later Restore tries them again. With
// nothing to restore, Restore does nothing and returns nil, so calling it
// twice is harmless.
func (k *Knobs) Restore() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	var errs []error
	var failed []savedKnob
	for _, s := range slices.Backward(k.saved) {
		p := &k.policies[s.policy]
		err := k.write(k.abs(s.rel), s.orig)
		if err != nil {
			errs = append(errs, k.knobError("restore", p, path.Base(s.rel), strings.TrimSpace(string(s.orig)), err))
			failed = append(failed, s)
			k.log.Warn("energy: cannot restore cpufreq knob", "path", s.rel, "value", strings.TrimSpace(string(s.orig)), "err", err)
			continue
		}
		k.log.Info("energy: restored cpufreq knob", "path", s.rel, "cpus", p.CPUs.String(),
			"value", strings.TrimSpace(string(s.orig)), "was", s.cur)
	}
	slices.Reverse(failed)
	k.saved = failed
	return errors.Join(errs...)
}

// Close restores the knobs, as Restore.
func (k *Knobs) Close() error { return k.Restore() }

// knobError describes the failure err of op ("read", "write" or
// "restore") on attribute attr of p, with value the value written, and
// wraps ErrNoKnob or ErrReadOnly where they apply.
func (k *Knobs) knobError(op string, p *FreqPolicy, attr, value string, err error) error {
	name := k.abs(path.Join(p.Dir, attr))
	// Name the path once, not again inside the error of os.
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	var verb string
	switch op {
	case "read":
		verb = "read " + name
	case "restore":
		verb = fmt.Sprintf("restore %s to %q", name, value)
	default:
		verb = fmt.Sprintf("write %q to %s", value, name)
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s: %w (%s): %w", verb, ErrNoKnob, noKnobHint(attr, p.Driver), err)
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EROFS):
		return fmt.Errorf("%s: %w (not root, or sysfs mounted read-only as in a container?): %w", verb, ErrReadOnly, err)
	case attr == knobEPP && errors.Is(err, syscall.EBUSY):
		if b, gerr := os.ReadFile(k.abs(path.Join(p.Dir, knobGovernor))); gerr == nil && strings.TrimSpace(string(b)) == "performance" {
			return fmt.Errorf("%s: %w: the governor of %s is \"performance\", under which %s refuses any preference but \"performance\"; set another governor, such as powersave, first",
				verb, err, path.Base(p.Dir), knobDriverName(p.Driver))
		}
		return fmt.Errorf("%s: %w (intel_pstate and amd-pstate refuse preferences other than \"performance\" under the performance governor)", verb, err)
	case errors.Is(err, syscall.EBUSY):
		return fmt.Errorf("%s: %w (are all CPUs of %s offline?)", verb, err, path.Base(p.Dir))
	}
	return fmt.Errorf("%s: %w", verb, err)
}

// noKnobHint says why attribute attr of a policy with driver may be
// missing.
func noKnobHint(attr, driver string) string {
	if attr == knobEPP {
		if driver == "" {
			return "the cpufreq driver has no energy performance preference; only intel_pstate with HWP and amd-pstate in active mode have one"
		}
		return "driver " + driver + " has no energy performance preference; only intel_pstate with HWP and amd-pstate in active mode have one"
	}
	if driver == "" {
		return "the cpufreq driver does not provide it"
	}
	return "driver " + driver + " does not provide it"
}

// noPolicyHint says why CPUs may have no policy.
func (k *Knobs) noPolicyHint() string {
	if len(k.policies) == 0 {
		return "no cpufreq driver, as usual in a virtual machine"
	}
	return "the CPUs do not exist, or the cpufreq driver skipped them"
}

func knobDriverName(d string) string {
	if d == "" {
		return "the driver"
	}
	return d
}

// writeKnobFile writes data to the existing file name in one write, as
// sysfs attributes need; it creates no file.
func writeKnobFile(name string, data []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
