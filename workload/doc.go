// Package workload runs bounded, self-checking CPU workloads for scheduler
// tests, demos and benchmarks, in this repository and in a scheduler
// author's own module (package scxtest has the rest of a test's tools):
//
//   - Run: CPU-bound spinners and wakeup-heavy ping-pong pairs, described
//     below;
//   - Requests: a light periodic load, a request/response pattern: threads
//     that wake on an absolute timer every Period, use Work of CPU time and
//     sleep again, reporting each wakeup's latency. With Work well below
//     Period it keeps the machine mostly idle, the load under which a
//     scheduler that packs work onto few CPUs differs from one that
//     spreads it.
//
// A sched_ext test has to show more than "the scheduler attached": it has to
// show that, while the scheduler ran, every runnable thread got CPU time and
// every sleeping thread was woken. Run starts two kinds of threads, each
// locked to its own OS thread so that the kernel's scheduler, not the Go
// runtime's, decides who runs:
//
//   - spinners: CPU-bound threads, each doing a fixed number of units of
//     integer arithmetic (a starved spinner never finishes);
//   - ping-pong pairs: two threads bouncing one byte through two pipes with
//     blocking reads, so every round trip is two sleeps and two wakeups in
//     the kernel (a lost wakeup stalls the pair).
//
// Run returns when every thread has done all its work, or stops all threads
// when its deadline passes or its context is done and returns an
// *IncompleteError naming each thread that did not finish and how far it
// got. Either way it returns a Report with every thread's progress and time,
// and it leaves no goroutine, thread or file descriptor behind.
//
// The workload is small by default (each spinner runs for about 200ms
// natively) and bounded by Config.Deadline (60s by default), so it fits the
// slow qemu TCG virtual machines the scheduler tests run in.
//
// The package needs Linux: it uses pipe2(2) and blocking read(2) and write(2).
package workload
