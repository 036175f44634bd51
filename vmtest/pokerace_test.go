package vmtest

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// From a CI run on Debian's 7.3 kernel under qemu 10 (TCG, 4 vCPUs on two
// host threads): sched_ext's disable path flipping static keys.
var pokeRaceConsole = []string{
	"[   38.552201] Oops: int3: 0000 [#1] SMP NOPTI",
	"[   38.553729] CPU: 2 UID: 0 PID: 164 Comm: sched_ext_helpe Not tainted 7.3.4+deb13-amd64 #1 PREEMPT(lazy)  Debian 7.3.4-1~bpo13+1 ",
	"[   38.554977] Sched_ext: domains (disabling)",
	"[   38.555081] RIP: 0010:__schedule+0x643/0x1080",
	"[   38.555693] Code: c0 48 81 fb b0 13 5c b9 74 43 48 8b 43 30 48 85 c0 74 0f 4c 89 ee 4c 89 e7 2e 2e 2e ff d0 85 c0 75 2b 48 8d 83 f0 00 00 00 0f <1f> 44 00 00 e9 91 00 00 00 48 3d c0 1",
	"[   38.556055] RSP: 0018:ff4d60b58078fa58 EFLAGS: 00000046",
}

func TestTCGPokeRace(t *testing.T) {
	stillThere := append([]string(nil), pokeRaceConsole...)
	stillThere[4] = "[   38.555693] Code: c0 48 81 fb b0 13 5c b9 74 43 00 00 cc <1f> 44 00 00 e9 91"
	noCode := append([]string(nil), pokeRaceConsole[:4]...)
	for _, tc := range []struct {
		name string
		err  RunError
		want bool
	}{
		{"int3 gone", RunError{Kind: FailOops, Line: pokeRaceConsole[0], Console: pokeRaceConsole}, true},
		{"int3 still there", RunError{Kind: FailOops, Line: pokeRaceConsole[0], Console: stillThere}, false},
		{"no Code line", RunError{Kind: FailOops, Line: pokeRaceConsole[0], Console: noCode}, false},
		{"other oops", RunError{Kind: FailOops, Line: "[ 1.0] Oops: general protection fault", Console: pokeRaceConsole}, false},
		{"panic", RunError{Kind: FailPanic, Line: "[ 1.0] Kernel panic", Console: pokeRaceConsole}, false},
	} {
		if got := tc.err.TCGPokeRace(); got != tc.want {
			t.Errorf("%s: TCGPokeRace() = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestTCGPokeRaceAfterLongDump feeds the monitor an oops followed by more
// console lines than the rolling tail keeps (as when sched_ext dumps its
// state while disabling): the race must still be recognised from the
// failure report.
func TestTCGPokeRaceAfterLongDump(t *testing.T) {
	m := newMonitor("n")
	events := make(chan monitorEvent, 16)
	for _, l := range pokeRaceConsole {
		m.console(l, nil, events)
	}
	for i := range 2 * consoleTail {
		m.console(fmt.Sprintf("[   38.6%05d] sched_ext dump line %d", i, i), nil, events)
	}
	ev := <-events
	re := RunError{Kind: ev.failure, Line: ev.line, Console: m.tail(), Report: m.failureReport()}
	if strings.Contains(strings.Join(re.Console, "\n"), "Oops") {
		t.Fatalf("the test's dump is too short: the oops is still in the console tail")
	}
	if len(re.Report) != reportLines+1 || re.Report[0] != pokeRaceConsole[0] {
		t.Errorf("report has %d lines starting %q; want %d starting with the oops", len(re.Report), re.Report[0], reportLines+1)
	}
	if !re.TCGPokeRace() {
		t.Errorf("TCGPokeRace() = false for an oops whose Code line is in the report")
	}
	re.Report = nil
	if re.TCGPokeRace() {
		t.Errorf("TCGPokeRace() = true with neither report nor oops in the tail")
	}
}

// TestRetryPokeRace: a poke race runs again once, after the callback; a
// second one, any other failure, or a cancelled context is returned.
func TestRetryPokeRace(t *testing.T) {
	race := &RunError{Kind: FailOops, Line: pokeRaceConsole[0], Console: pokeRaceConsole}
	other := &RunError{Kind: FailPanic, Line: "[ 1.0] Kernel panic"}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name  string
		ctx   context.Context
		errs  []error
		calls int
		fails bool
	}{
		{"ok", context.Background(), []error{nil}, 1, false},
		{"race then ok", context.Background(), []error{race, nil}, 2, false},
		{"race twice", context.Background(), []error{race, race}, 2, true},
		{"other failure", context.Background(), []error{other}, 1, true},
		{"race after cancel", cancelled, []error{race}, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls, noted := 0, 0
			_, err := retryPokeRace(tc.ctx, func() (*Result, error) {
				calls++
				return &Result{}, tc.errs[calls-1]
			}, func(*RunError) { noted++ })
			if calls != tc.calls || noted != tc.calls-1 || (err != nil) != tc.fails {
				t.Errorf("%d runs, %d notes, error %v; want %d runs, %d notes, failure %v", calls, noted, err, tc.calls, tc.calls-1, tc.fails)
			}
		})
	}
}
