// Package scxtest holds what a scheduler's tests need around the scheduler
// itself, for tests in this repository and in an author's own module:
//
//   - [Start] loads, attaches and runs a scheduler in the background until
//     the test ends; [WaitAttached] and [WaitState] wait until the kernel
//     reports a scheduler attached (or sched_ext in any state), failing
//     early if the scheduler returns first;
//   - [ReadCPUTimes], [BusyFraction] and [SampleBusy] measure how busy each
//     CPU was from /proc/stat, the kernel's own accounting, which a test
//     compares with what a scheduler claims to have done;
//   - [Hogs] starts CPU-bound processes, optionally born in a cgroup or on
//     chosen CPUs;
//   - [Buffer] collects a scheduler's output while it writes from its own
//     goroutines and the test reads.
//
// The workloads a test runs under a scheduler (spinners, ping-pong pairs,
// request/response, a light periodic load) are in package
// github.com/scxkit/scxkit/workload; package
// github.com/scxkit/scxkit/vmtest runs the tests in a VM on a sched_ext
// kernel.
//
// The functions that take a testing.TB fail the test on error; they wait
// for conditions with a bound and never decide on a timing.
package scxtest
