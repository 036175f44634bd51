package lb

import "log/slog"

// Migration is one step of a balancing plan: move a task to another domain.
// It is plain data, so that the BPF half can copy a plan into a map
// field by field.
type Migration struct {
	// Task is the task's Task.ID, e.g. its pid.
	Task uint64
	// Index is the task's index in the slice passed to Balance.
	Index int
	// From and To are domain ids: the task's domain and where it goes.
	From, To int
	// Load is the load that moves with the task: its adjusted weight
	// (see AdjustWeights) times its duty cycle.
	Load float64
}

// RoundStats describes a call of Balancer.Balance.
//
// The imbalance is the spread of load per CPU: the highest minus the lowest
// of each domain's load divided by its CPUs. A round never makes it larger.
//
// The Rejected counters count candidate checks, not distinct tasks: a task
// passed over for several domain pairs is counted each time. The checks run
// in the order of the fields, and a task counts only for the first check it
// fails.
type RoundStats struct {
	// ImbalanceBefore and ImbalanceAfter are the spread of per-CPU domain
	// load before the round and after the plan is applied.
	ImbalanceBefore, ImbalanceAfter float64
	// TotalLoad is the load of all tasks after infeasible-weight
	// adjustment; migrations never change it.
	TotalLoad float64
	// Clamped is how many tasks had an infeasible weight, lowered by
	// AdjustWeights.
	Clamped int
	// Moved is the number of migrations in the plan, and CrossNode the
	// number of those between domains of different nodes.
	Moved, CrossNode int
	// LoadMoved is the sum of the Load of the plan's migrations.
	LoadMoved float64
	// RejectedAlreadyMoved counts checks of tasks that had already moved
	// in this round: a task moves at most once a round.
	RejectedAlreadyMoved int
	// RejectedPinned counts checks of tasks with Task.Pinned set.
	RejectedPinned int
	// RejectedNoGain counts checks of tasks whose move would not narrow
	// the gap between the two domains (or nodes) without overshooting it,
	// or is not worth it: tasks too heavy for the gap, and tasks with no
	// load or less than Options.MinTaskLoad.
	RejectedNoGain int
	// RejectedAffinity counts checks of tasks whose affinity excludes the
	// destination domain.
	RejectedAffinity int
}

// LogValue groups the statistics for log/slog, so that
// logger.Info("balance", "round", st) logs each field as round.name.
func (st RoundStats) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Float64("imbalance_before", st.ImbalanceBefore),
		slog.Float64("imbalance_after", st.ImbalanceAfter),
		slog.Float64("total_load", st.TotalLoad),
		slog.Int("clamped", st.Clamped),
		slog.Int("moved", st.Moved),
		slog.Int("cross_node", st.CrossNode),
		slog.Float64("load_moved", st.LoadMoved),
		slog.Int("rejected_already_moved", st.RejectedAlreadyMoved),
		slog.Int("rejected_pinned", st.RejectedPinned),
		slog.Int("rejected_no_gain", st.RejectedNoGain),
		slog.Int("rejected_affinity", st.RejectedAffinity),
	)
}
