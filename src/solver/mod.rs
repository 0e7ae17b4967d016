//! The planner: which pending pods go on existing capacity, which nodes to create, at minimum
//! hourly cost, inside NodePool requirements, taints, limits, budgets and the capacity mix.
//!
//! In: a `Snapshot`, a `Catalog` and `PlanOptions`. Out: a `Plan`. The controller, `purser plan`
//! and the simulator all call `plan`.

pub mod anchored;
pub mod bound;
pub mod clock;
pub mod ffd;
pub mod ilp;
pub mod local_search;
pub mod neighbourhood;
pub mod packing;
pub mod plan;
pub mod preferences;
pub mod problem;
pub mod refill;
pub mod topology;
pub mod validate;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::catalog::{CapacityType, Catalog};
use crate::model::Snapshot;

pub use plan::{ExistingPlacement, Plan, PlannedNode, SolverReport, Unschedulable};
pub use problem::Problem;

/// Which algorithm plans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// Column generation over node patterns with an integer master (the default).
    #[default]
    Ilp,
    /// Karpenter's first-fit-decreasing baseline.
    Ffd,
}

/// Planner settings.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// Algorithm.
    pub strategy: Strategy,
    /// Wall-clock limit for a whole `plan` call; the ILP's search stops at `SEARCH_SHARE` of it.
    pub time_limit: Duration,
    /// Expected cost of one spot interruption, in hours of the instance's on-demand price.
    pub spot_rework_hours: f64,
    /// Offerings known to be unavailable: (instance type, zone, capacity type).
    pub unavailable: HashSet<(String, String, CapacityType)>,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            strategy: Strategy::Ilp,
            time_limit: Duration::from_secs(1),
            spot_rework_hours: 1.0,
            unavailable: HashSet::new(),
        }
    }
}

/// Share of the time limit the ILP's search may use; the rest turns its assignment into a plan
/// (pod names, node claims, the lower bound), so the whole call ends within the limit.
pub const SEARCH_SHARE: f64 = 0.9;

/// Plan the pending pods of `snapshot`.
pub fn plan(snapshot: &Snapshot, catalog: &Catalog, options: &PlanOptions) -> Plan {
    let start = Instant::now();
    let begun = clock::now();
    let search = options.time_limit.mul_f64(SEARCH_SHARE);
    let Some(strict) = preferences::as_required(snapshot) else {
        return plan_once(snapshot, catalog, options, start, begun + search);
    };
    let base = plan_once(snapshot, catalog, options, start, begun + search / 2);
    let preferred = plan_once(&strict, catalog, options, start, begun + search);
    let mut chosen = if preferences::costs_nothing(&base, &preferred) {
        preferred
    } else {
        base.clone()
    };
    // The bound of the plan without preferences holds for every plan placing those pods.
    chosen.lower_bound = base.lower_bound;
    if chosen.solver.status == "optimal" && chosen.hourly_cost > chosen.lower_bound + 1e-6 {
        chosen.solver.status = "feasible".into();
    }
    chosen.solver.seconds = start.elapsed().as_secs_f64();
    chosen
}

/// One planning pass over `snapshot`, with the ILP stopping at `deadline` (on `clock`'s time);
/// `start` is the wall-clock start, for the reported seconds.
fn plan_once(snapshot: &Snapshot, catalog: &Catalog, options: &PlanOptions, start: Instant, deadline: Instant) -> Plan {
    // Topology pins assume every pinned pod is placed in its domain. A pinned pod the greedy
    // plan cannot place is left out and the pins are chosen again without it, until every
    // pinned pod is placed; the ILP never places fewer units of a class than the greedy plan.
    let mut excluded: Vec<(usize, String)> = vec![];
    let (problem, baseline) = loop {
        let problem = Problem::build_excluding(snapshot, catalog, options, &excluded);
        let baseline = ffd::solve(&problem);
        let stranded = problem.stranded(&baseline);
        if stranded.is_empty() {
            break (problem, baseline);
        }
        excluded.extend(stranded);
    };
    let (assignment, strategy, status) = match options.strategy {
        Strategy::Ffd => (baseline.clone(), "ffd", "feasible".to_string()),
        Strategy::Ilp => {
            let (a, status) = ilp::solve(&problem, &baseline, deadline);
            (a, "ilp", status)
        }
    };
    let (node_claims, existing_nodes, unschedulable) = plan::materialize(&problem, snapshot, &assignment);
    let hourly_cost = plan::list_cost(&problem, &assignment);
    let lower_bound = bound::lower_bound(&problem, &assignment);
    let status = if status != "fallback" && hourly_cost <= lower_bound + 1e-6 {
        "optimal".to_string()
    } else {
        status
    };
    Plan {
        node_claims,
        existing_nodes,
        unschedulable,
        hourly_cost,
        lower_bound,
        solver: SolverReport {
            strategy: strategy.into(),
            status,
            seconds: start.elapsed().as_secs_f64(),
            objective: plan::objective(&problem, &assignment),
            baseline_cost: (options.strategy == Strategy::Ilp).then(|| plan::list_cost(&problem, &baseline)),
        },
    }
}
