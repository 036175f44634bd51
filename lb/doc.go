// Package lb balances load between a scheduler's domains: it reads duty
// cycles, corrects infeasible weights and plans task migrations in Go, for
// the BPF half of a scheduler to apply.
//
// # Glossary
//
//   - Weight: a task's scheduling weight, from 1 to 10000, 100 for nice 0
//     (the kernel's sched_prio_to_weight scaled by 1/1024 × 100).
//   - Duty cycle: the fraction of time a task is runnable, from 0 to 1, as
//     a decaying average. DutyCycle in this package tracks it, twin of the
//     BPF half in bpf/include/scxkit/dutycycle.bpf.h; DutyCycle.Fraction
//     gives the number Task.DutyCycle takes.
//   - Load: weight × duty cycle, the share of CPU time a task claims. A
//     domain's load is the sum over its tasks; loads are compared per CPU
//     (load divided by the domain's CPUs).
//   - Domain: a group of CPUs that shares a dispatch queue and a load
//     figure, usually one LLC. Domains are grouped into NUMA nodes.
//   - Infeasible weight: a weight so large that the task's share of the
//     machine would exceed one CPU, which it cannot use since a task runs
//     on one CPU at a time. Left as is, it makes its domain look loaded
//     with work no other CPU could take, and the balancer would empty the
//     domain around it while CPUs elsewhere idle.
//
// # Formulas
//
// With N CPUs, L the total load and D the sum of the duty cycles:
//
//	load(task)        = weight × dutyCycle
//	share(task)       = weight × N / L      CPUs, while the task is runnable
//	infeasible        : share > 1, i.e. weight > L / N
//
// Clamping an infeasible task lowers L and may make others infeasible.
// AdjustWeights finds the fixed point λ, as the iteration: mark the heaviest
// task infeasible while weight × N' > L', where L' is the load of the
// unmarked tasks (the marked one included) and N' is N minus the duty cycles
// of the marked tasks; then
//
//	λ                 = L(unmarked) / (N − D(marked))
//	weight'           = min(weight, λ)
//
// so that every clamped task gets exactly one CPU while runnable
// (λ × N = total adjusted load) and no other task changes. When D ≤ N the
// tasks need not share CPUs on average and no weight is infeasible.
//
// # A round
//
// Balancer.Balance takes the tasks with their domain, weight, duty cycle,
// affinity and pinning, and returns a plan: a list of Migrations. It
// adjusts infeasible weights over all CPUs, sums the domains' loads, and
// evens out load per CPU first between NUMA nodes (moving a task from the
// busiest domain of a busy node to the idlest domain of an idle one), then
// between the domains of each node. A node or domain more than
// Options.PushThreshold above the average of its level gives tasks to one
// more than Options.PullThreshold below it; each step moves the task that
// leaves the smallest gap between the two, never a pinned task, never one
// whose affinity excludes the destination, never one already moved this
// round, and never so much that either side passes the other. So the
// spread of per-CPU domain load never grows, and Options.MaxMigrationsPerDomain
// bounds each round's work; balance converges over rounds.
//
// The plan is plain data. Applying it, by writing the task-to-domain
// assignments into a BPF map, is the BPF half's job.
//
// # The BPF half
//
// A scheduler that includes scxkit/lb.bpf.h tracks, in maps that Tracker
// reads:
//
//   - per task (sk_lb_tasks): its duty cycle, weight, domain and allowed
//     domains, the domains holding a CPU of its affinity mask, recomputed
//     in ops.set_cpumask. Tracker.Tasks turns them into Tasks: a task
//     allowed in some domains gets them as Task.Affinity, one allowed in
//     a single domain is Pinned;
//   - per domain (sk_lb_domains): the number of runnable tasks of each
//     weight bucket as decaying averages, so a domain's load is known
//     without a pass over its tasks (Tracker.DomainLoads);
//   - per domain and CPU (sk_lb_domain_stats): run time, migrations in,
//     and planned moves refused because the task's affinity changed
//     (Tracker.DomainCounters).
//
// Tracker.Apply writes a plan into sk_lb_plan; each task moves at its next
// enqueue, where the BPF half checks the move against its affinity again.
// Run time is best measured with scxkit/runtime.bpf.h, which counts the
// time a task keeps running when the kernel refills its slice.
package lb
