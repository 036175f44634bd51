package vmtest

import (
	"bufio"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// A monitor reads the two serial ports of a running guest: the kernel
// console, where it looks for kernel failures, and the payload's output,
// which it copies through. Status lines from init ("<nonce> start",
// "<nonce> exit N") are recognised on either port and never copied.
type monitor struct {
	nonce string

	mu       sync.Mutex
	lines    []string  // ring of the last consoleTail console lines
	next     int       // ring position of the next line
	start    time.Time // when the payload started
	code     int       // payload exit status
	haveCode bool
	expect   []*regexp.Regexp // sched_ext disables the guest announced
	report   []string         // the first failure's line and up to reportLines after it

	// activity is when either port last delivered a line, in Unix
	// nanoseconds: the run loop reports a guest that stays quiet.
	activity atomic.Int64
}

// reportLines is how many console lines after a failure's first line the
// monitor keeps apart from the rolling tail: a kernel report (an oops with
// its Code line, say) followed by a long sched_ext dump would otherwise
// scroll out of the tail before the run stops.
const reportLines = 80

// monitorEvent reports a kernel failure seen on the console.
type monitorEvent struct {
	failure FailureKind
	line    string
}

func newMonitor(nonce string) *monitor {
	m := &monitor{nonce: nonce}
	m.touch()
	return m
}

// touch records output from the guest.
func (m *monitor) touch() { m.activity.Store(time.Now().UnixNano()) }

// quietFor returns how long neither port has delivered a line.
func (m *monitor) quietFor(now time.Time) time.Duration {
	return now.Sub(time.Unix(0, m.activity.Load()))
}

// expectMarker starts a kmsg line by which the guest announces a sched_ext
// disable it expects (see ExpectSchedExtDisable); a regular expression
// follows it.
const expectMarker = "vmtest: expect sched_ext disable: "

// schedExtDisabled matches the kernel's line when a BPF scheduler is
// disabled; the group is the exit reason.
var schedExtDisabled = regexp.MustCompile(`sched_ext: .*disabled \(([^)]*)\)`)

// classify returns the kernel failure a console line reports, if any.
func classify(line string) (FailureKind, bool) {
	switch {
	case strings.Contains(line, "Kernel panic - not syncing"):
		return FailPanic, true
	case strings.Contains(line, "Oops: "):
		return FailOops, true
	case strings.Contains(line, "BUG: ") || strings.Contains(line, "kernel BUG at "):
		return FailBug, true
	}
	if m := schedExtDisabled.FindStringSubmatch(line); m != nil && !strings.HasPrefix(m[1], "unregistered from") {
		return FailSchedExtDisabled, true
	}
	return 0, false
}

// status records an init status line and reports whether line was one.
func (m *monitor) status(line string) bool {
	i := strings.Index(line, m.nonce+" ")
	if i < 0 {
		return false
	}
	fields := strings.Fields(line[i+len(m.nonce):])
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case len(fields) == 1 && fields[0] == "start":
		if m.start.IsZero() {
			m.start = time.Now()
		}
		return true
	case len(fields) == 2 && fields[0] == "exit":
		code, err := strconv.Atoi(fields[1])
		if err != nil {
			return false
		}
		if !m.haveCode {
			m.code, m.haveCode = code, true
		}
		return true
	}
	return false
}

// watchConsole reads the kernel console until r is closed.
func (m *monitor) watchConsole(r io.ReadCloser, tee io.Writer, events chan<- monitorEvent) {
	defer r.Close()
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		raw, err := br.ReadString('\n')
		if raw != "" {
			m.touch()
			line := strings.TrimRight(raw, "\r\n")
			if !m.status(line) {
				m.console(line, tee, events)
			}
		}
		if err != nil {
			return
		}
	}
}

func (m *monitor) console(line string, tee io.Writer, events chan<- monitorEvent) {
	if tee != nil {
		io.WriteString(tee, line+"\n")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.lines) < consoleTail {
		m.lines = append(m.lines, line)
	} else {
		m.lines[m.next] = line
	}
	m.next = (m.next + 1) % consoleTail
	if len(m.report) > 0 && len(m.report) <= reportLines {
		m.report = append(m.report, line)
	}

	if _, pattern, ok := strings.Cut(line, expectMarker); ok {
		if re, err := regexp.Compile(strings.TrimSpace(pattern)); err == nil {
			m.expect = append(m.expect, re)
		}
		return
	}
	kind, bad := classify(line)
	if !bad {
		return
	}
	if kind == FailSchedExtDisabled {
		for i, re := range m.expect {
			if re.MatchString(line) {
				m.expect = append(m.expect[:i], m.expect[i+1:]...)
				return
			}
		}
	}
	if len(m.report) == 0 {
		m.report = append(m.report, line)
	}
	select {
	case events <- monitorEvent{failure: kind, line: line}:
	default:
	}
}

// watchPayload copies the payload's output to w until r is closed.
func (m *monitor) watchPayload(r io.ReadCloser, w io.Writer) {
	defer r.Close()
	if w == nil {
		w = io.Discard
	}
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		raw, err := br.ReadString('\n')
		if raw != "" {
			m.touch()
			if !m.status(strings.TrimRight(raw, "\r\n")) {
				io.WriteString(w, strings.ReplaceAll(raw, "\r\n", "\n"))
			}
		}
		if err != nil {
			return
		}
	}
}

// tail returns the kept console lines, oldest first.
func (m *monitor) tail() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.lines) < consoleTail {
		return append([]string(nil), m.lines...)
	}
	return append(append([]string(nil), m.lines[m.next:]...), m.lines[:m.next]...)
}

// failureReport returns the first failure's console line and the lines
// that followed it, up to reportLines.
func (m *monitor) failureReport() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.report...)
}

func (m *monitor) exitCode() (int, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.code, m.haveCode
}

func (m *monitor) started() (time.Time, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.start, !m.start.IsZero()
}
