package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"syscall"

	"github.com/scxkit/scxkit/scx"
)

func statusCommand() (*flag.FlagSet, func(context.Context, io.Writer, io.Writer) error) {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	jsonOut := fs.Bool("json", false, "print one JSON object instead of text")
	setUsage(fs, "scxkit status [--json]", `Status shows what the running kernel offers sched_ext schedulers: whether it
has sched_ext, the scheduler attached, the sysfs counters, the kfunc
generation, the members of struct sched_ext_ops and key SCX_ enumerators.
A kernel without sched_ext is a normal answer (exit status 0); --json then
has "supported": false and the reason.`)
	return fs, func(_ context.Context, stdout, _ io.Writer) error {
		return status(stdout, statusProbeOptions, *jsonOut)
	}
}

// statusProbeOptions tells the status command where to look: nil means the
// running kernel. Tests set it to a fake kernel.
var statusProbeOptions *scx.ProbeOptions

// statusReport is what status prints. Its JSON form is the output of
// status --json: the keys are stable, and those of KernelStatus appear only
// when the kernel supports sched_ext.
type statusReport struct {
	Release   string `json:"release"`
	Supported bool   `json:"supported"`
	// Reason says why sched_ext is not supported.
	Reason string `json:"reason,omitempty"`
	*KernelStatus
}

// KernelStatus is what a kernel with sched_ext reports.
type KernelStatus struct {
	State      string            `json:"state"`
	Ops        string            `json:"ops"` // the attached scheduler, "" when none
	EnableSeq  uint64            `json:"enable_seq"`
	HotplugSeq uint64            `json:"hotplug_seq"`
	NrRejected uint64            `json:"nr_rejected"`
	SwitchAll  bool              `json:"switch_all"`
	KfuncGen   string            `json:"kfunc_gen"`   // "base" or "v2"
	OpsMembers []string          `json:"ops_members"` // struct sched_ext_ops, in BTF order
	Enums      map[string]uint64 `json:"enums"`       // every SCX_ enumerator
}

// keyEnums are the enumerators the text output shows.
var keyEnums = []string{"SCX_DSQ_LOCAL", "SCX_DSQ_GLOBAL", "SCX_DSQ_LOCAL_ON", "SCX_SLICE_DFL"}

// status probes the kernel that opts describes (nil: the running one) and
// prints the report to w, as text or JSON.
func status(w io.Writer, opts *scx.ProbeOptions, jsonOut bool) error {
	r, err := probeStatus(opts)
	if err != nil {
		return err
	}
	if jsonOut {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("write JSON: %w", err)
		}
		return nil
	}
	return writeStatus(w, r)
}

// probeStatus builds the report. A kernel without sched_ext (no struct
// sched_ext_ops in its BTF, no BTF at all, or no /sys/kernel/sched_ext) is a
// report with Supported false; other failures are errors.
func probeStatus(opts *scx.ProbeOptions) (*statusReport, error) {
	release := ""
	if opts != nil {
		release = opts.Release
	}
	if release == "" {
		release = unameRelease()
	}
	k, err := scx.Probe(opts)
	if errors.Is(err, scx.ErrNotSupported) {
		return &statusReport{Release: release, Reason: err.Error()}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("probe the kernel: %w", err)
	}
	st, err := k.Status()
	if errors.Is(err, scx.ErrNotSupported) {
		return &statusReport{Release: k.Release, Reason: err.Error()}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("kernel %s: %w", k.Release, err)
	}
	ks := &KernelStatus{
		State:      string(st.State),
		Ops:        st.Ops,
		EnableSeq:  st.EnableSeq,
		HotplugSeq: st.HotplugSeq,
		NrRejected: st.NrRejected,
		SwitchAll:  st.SwitchAll,
		KfuncGen:   k.Gen.String(),
		OpsMembers: k.Ops,
		Enums:      make(map[string]uint64, k.Enums.Len()),
	}
	if ks.OpsMembers == nil {
		ks.OpsMembers = []string{}
	}
	for _, name := range k.Enums.Names("SCX_") {
		ks.Enums[name], _ = k.Enums.Lookup(name)
	}
	return &statusReport{Release: k.Release, Supported: true, KernelStatus: ks}, nil
}

// writeStatus prints r for people.
func writeStatus(w io.Writer, r *statusReport) error {
	var b strings.Builder
	row := func(key, format string, args ...any) {
		fmt.Fprintf(&b, "%-13s %s\n", key+":", fmt.Sprintf(format, args...))
	}
	release := r.Release
	if release == "" {
		release = "unknown"
	}
	row("kernel", "%s", release)
	if !r.Supported {
		row("sched_ext", "not available")
		row("reason", "%s", r.Reason)
		row("hint", "try `scxkit demo` (from a checkout: go run ./cmd/scxkit demo), which runs a scheduler in a VM on a sched_ext kernel")
		_, err := io.WriteString(w, b.String())
		return err
	}
	k := r.KernelStatus
	row("sched_ext", "available")
	row("state", "%s", k.State)
	ops := k.Ops
	if ops == "" {
		ops = "none"
	}
	row("scheduler", "%s", ops)
	row("enable_seq", "%d", k.EnableSeq)
	row("hotplug_seq", "%d", k.HotplugSeq)
	row("nr_rejected", "%d", k.NrRejected)
	row("switch_all", "%t", k.SwitchAll)
	row("kfuncs", "%s", k.KfuncGen)
	row("ops members", "%d", len(k.OpsMembers))
	for _, line := range wrap(k.OpsMembers, 64) {
		fmt.Fprintf(&b, "  %s\n", line)
	}
	row("enums", "%d SCX_ enumerators; key values:", len(k.Enums))
	for _, name := range keyEnums {
		if v, ok := k.Enums[name]; ok {
			fmt.Fprintf(&b, "  %-17s %#x (%d)\n", name, v, v)
		} else {
			fmt.Fprintf(&b, "  %-17s missing\n", name)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// wrap joins words with ", " into lines of at most width bytes (a longer
// word gets a line of its own).
func wrap(words []string, width int) []string {
	var lines []string
	var cur strings.Builder
	for i, word := range words {
		sep := ""
		if i < len(words)-1 {
			sep = ","
		}
		if cur.Len() > 0 && cur.Len()+1+len(word)+len(sep) > width {
			lines = append(lines, cur.String())
			cur.Reset()
		}
		if cur.Len() > 0 {
			cur.WriteByte(' ')
		}
		cur.WriteString(word + sep)
	}
	if cur.Len() > 0 {
		lines = append(lines, cur.String())
	}
	return lines
}

// unameRelease returns uname -r, or "" if uname fails.
func unameRelease() string {
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		return ""
	}
	var b []byte
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	return string(b)
}
