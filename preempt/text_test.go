package preempt

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	cfg, err := Parse([]byte(`
# comment line
web cgroup=/web cgroup=/api/ comm=nginx wakeup=lower slice=3ms   # trailing comment
default wakeup=after:2ms
batch cgroup=/batch slice=50ms tick=runon runon-max=500ms nopreempt

scrub cgroup=/scrub background
`))
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{Classes: []Class{
		{Name: "web", Cgroups: []string{"/web", "/api/"}, Comms: []string{"nginx"}, Policy: Policy{Wakeup: WakeupLower, Slice: 3 * time.Millisecond}},
		{Name: "default", Policy: Policy{Wakeup: WakeupAfter, After: 2 * time.Millisecond}},
		{Name: "batch", Cgroups: []string{"/batch"}, Policy: Policy{Slice: 50 * time.Millisecond, Tick: TickRunOn, RunOnMax: 500 * time.Millisecond, NoPreempt: true}},
		{Name: "scrub", Cgroups: []string{"/scrub"}, Policy: Policy{Background: true}},
	}}
	if d := cmp.Diff(want, cfg); d != "" {
		t.Errorf("Parse (-want +got):\n%s", d)
	}
}

func TestNormalizeDefault(t *testing.T) {
	for _, c := range []struct {
		text string
		want []string
	}{
		{"a cgroup=/a", []string{"a", "default"}},
		{"a cgroup=/a\nbg cgroup=/bg background\nbg2 cgroup=/bg2 background", []string{"a", "default", "bg", "bg2"}},
		{"bg cgroup=/bg background\ndefault\na cgroup=/a", []string{"bg", "default", "a"}},
		{"", []string{"default"}},
	} {
		cfg, err := Parse([]byte(c.text))
		if err != nil {
			t.Fatalf("%q: %v", c.text, err)
		}
		classes, err := cfg.normalize()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, k := range classes {
			got = append(got, k.Name)
		}
		if d := cmp.Diff(c.want, got); d != "" {
			t.Errorf("%q: classes (-want +got):\n%s", c.text, d)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct{ text, want string }{
		{"web cgroup=/web slice=0", "line 1: class \"web\": slice=0: must be positive"},
		{"web cgroup=/web slice=-3ms", "slice=-3ms: must be positive"},
		{"web cgroup=/web slice=fast", "not a duration"},
		{"web", "matches no task"},
		{"default cgroup=/x", "takes every task no other class matches"},
		{"web cgroup=/a\nweb cgroup=/b", "line 2: class \"web\": named twice"},
		{"a cgroup=/x\n\nb cgroup=/x/", "line 3: class \"b\": cgroup /x is also in class \"a\""},
		{"a comm=nginx\nb comm=nginx", "task name \"nginx\" is also in class \"a\""},
		{"a comm=averyveryverylongname", "is 21 bytes: the kernel keeps at most 15"},
		{"a cgroup=web", "give the path from the cgroup2 root, as /proc/PID/cgroup shows it, e.g. /web"},
		{"a cgroup=../x", `cgroup "../x": ".." is not allowed: give the path from the cgroup2 root, as /proc/PID/cgroup shows it, e.g. /x`},
		{"a cgroup=a/../../x", `".." is not allowed`},
		{"a cgroup=/a/../b", `cgroup "/a/../b": ".." is not allowed: give the path from the cgroup2 root, as /proc/PID/cgroup shows it, e.g. /b`},
		{"a cgroup=/a slice=9999999h", "slice=9999999h: too large: a duration is at most 2562047h47m16.854775807s"},
		{"a cgroup=/a wakeup=after:99999999999999999999ns", "too large"},
		{"a cgroup=/a slice=3", "not a duration"},
		{"a cgroup=/a wakeup=after", "after needs the run time"},
		{"a cgroup=/a wakeup=after:0s", "must be positive"},
		{"a cgroup=/a wakeup=soon", "want never, lower or after:DURATION"},
		{"a cgroup=/a tick=spin", "want yield or runon"},
		{"a cgroup=/a runon-max=1s", "runon-max only goes with tick=runon"},
		{"a cgroup=/a nopreempt background", "contradict"},
		{"a cgroup=/a background wakeup=lower", "a background class preempts nothing"},
		{"a cgroup=/a nopreempt=yes", "nopreempt is a flag"},
		{"a cgroup=/a slice", "want KEY=VALUE"},
		{"a cgroup=/a color=red", "unknown key \"color\""},
		{"a cgroup=/a slice=1ms slice=2ms", "slice given twice"},
		{"slice=1ms", "a line starts with the class name"},
		{"a cgroup=/a slice=2m", "longer than a minute"},
		{"a cgroup=/a slice=1us", "shorter than 10µs"},
		{strings.Repeat("c cgroup=/c\n", 1) + manyClasses(17), "classes, the default class included: at most 16"},
		{"a" + strings.Repeat(" comm=x", 1) + manyComms(MaxMembers), "257 cgroups and task names: at most 256"},
	} {
		_, err := Parse([]byte(c.text))
		if err == nil {
			t.Errorf("%q: no error, want %q", c.text, c.want)
			continue
		}
		want := ErrInvalid
		if strings.Contains(c.want, ": at most") { // a limit of the BPF side
			want = ErrTooBig
		}
		if !errors.Is(err, want) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %v containing %q", c.text, err, want, c.want)
		}
		if want == ErrTooBig && errors.Is(err, ErrInvalid) {
			t.Errorf("%q: %v matches ErrInvalid as well as ErrTooBig", c.text, err)
		}
	}
}

// manyComms returns n comm= members with distinct names.
func manyComms(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, " comm=t%d", i)
	}
	return b.String()
}

// manyClasses returns n classes with distinct names and cgroups.
func manyClasses(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString("k")
		b.WriteString(strings.Repeat("x", i+1))
		b.WriteString(" cgroup=/k")
		b.WriteString(strings.Repeat("x", i+1))
		b.WriteString("\n")
	}
	return b.String()
}

func TestPolicyDefaults(t *testing.T) {
	p := Policy{Tick: TickRunOn}
	if p.slice() != DefaultSlice || p.runOnMax() != DefaultRunOnFactor*DefaultSlice {
		t.Errorf("defaults: slice %v run-on %v", p.slice(), p.runOnMax())
	}
	p = Policy{Slice: time.Millisecond}
	if p.runOnMax() != 0 {
		t.Errorf("a yielding class runs on for %v", p.runOnMax())
	}
}

// FuzzParse checks that Parse never panics, that what it accepts is
// valid, and that String gives text that parses back to the same Config.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"web cgroup=/web comm=nginx wakeup=lower slice=3ms\n",
		"default wakeup=after:2ms\nbatch cgroup=/b slice=50ms tick=runon runon-max=1s nopreempt\n",
		"bg cgroup=/bg background # x\n",
		"a cgroup=/a\n\tb comm=b slice=1ms\n",
		"a cgroup=/a wakeup=after:1h",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		cfg, err := Parse(text)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrTooBig) {
				t.Fatalf("error %v wraps neither ErrInvalid nor ErrTooBig", err)
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Parse accepted an invalid config: %v", err)
		}
		again, err := Parse([]byte(cfg.String()))
		if err != nil {
			t.Fatalf("String gave text Parse refuses: %v\n%s", err, cfg)
		}
		if d := cmp.Diff(cfg, again); d != "" {
			t.Fatalf("round trip (-first +second):\n%s", d)
		}
	})
}
