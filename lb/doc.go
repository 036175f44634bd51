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
// # The component
//
// A *Balancer is the scheduler component "lb" (scx.Component, scx.Worker,
// scx.Reporter), used like every other component. Its domains are the
// DSQs of the scheduler's dsq layout, so it requires the "dsq" component
// before it in Config.Components:
//
//	layout, err := dsq.New(topo, &dsq.Options{Kind: dsq.PerLLC})
//	bal, err := lb.New(lb.DomainsOf(layout), &lb.Options{Interval: 500 * time.Millisecond})
//	cfg := scx.Config{Name: "mysched", Components: []scx.Component{layout, bal}}
//
// New takes Domains, not a layout, so that Balance plans for any machine
// without a kernel (tests, simulations); Bind checks that they are the
// layout's DSQs. Once bound, Work runs a round every Options.Interval:
// ReadTasks, ReadLoads, Balance, WritePlan. The BPF half,
// scxkit/lb.bpf.h, is called from these callbacks, which Needs declares:
//
//	ops.enable       sk_lb_task_enable(p, sk_dsq_of_cpu(cpu))  start tracking p
//	ops.runnable     sk_lb_runnable(p)                         duty cycles: runnable
//	ops.quiescent    sk_lb_quiescent(p)                        duty cycles: not runnable
//	ops.enqueue      dom = sk_lb_domain(p, cur)                applies a pending move;
//	                 sk_dsq_enqueue_vtime(p, dom, ...)         the dsq component inserts
//	ops.stopping     sk_lb_charge(p, used_ns)                  per-domain run time
//	ops.set_cpumask  sk_lb_set_cpumask(p, mask)                allowed domains
//	ops.disable      sk_lb_task_disable(p)
//
// It tracks, in maps the balancer reads:
//
//   - per task (sk_lb_tasks): its duty cycle, weight, domain and allowed
//     domains, the domains holding a CPU of its affinity mask, recomputed
//     in ops.set_cpumask. ReadTasks turns them into Tasks: a task
//     allowed in some domains gets them as Task.Affinity, one allowed in
//     a single domain is Pinned;
//   - per domain (sk_lb_domains): the number of runnable tasks of each
//     weight bucket as decaying averages, so a domain's load is known
//     without a pass over its tasks (ReadLoads);
//   - per domain and CPU (sk_lb_domain_stats): run time, migrations in,
//     and planned moves refused because the task's affinity changed
//     (ReadCounters).
//
// WritePlan writes a plan into sk_lb_plan; each task moves at its next
// enqueue, where the BPF half checks the move against its affinity again.
// Run time is best measured with scxkit/runtime.bpf.h, which counts the
// time a task keeps running when the kernel refills its slice. With debug
// logging (the Binding's logger), each round is logged with its
// RoundStats.
//
// # Stats
//
//	rounds                    counter  balancing rounds run
//	moved_tasks               counter  migrations planned
//	cross_node_moved_tasks    counter  migrations between NUMA nodes
//	imbalance_before, _after  gauge    spread of load per CPU around the last round's plan
//	runtime_ns{domain}        counter  time the domain's tasks ran
//	runnable_tasks{domain}    gauge    runnable tasks (sum of duty cycles), last round
//	load{domain}              gauge    weight × duty cycle, last round
//	migrated_in_tasks{domain} counter  moves applied into the domain
//	refused_moves{domain}     counter  moves refused: affinity changed
package lb
