//! Under the work clock (`solver::clock::with_work_clock`, which the simulator uses) the
//! planner's limits count work, so an input the ILP cannot finish within its limit still gives
//! the same plan every time, whatever else the machine is doing.

use std::time::Duration;

use purser::bench::karpenter;
use purser::solver::{self, PlanOptions, clock};

#[test]
fn a_search_cut_short_by_its_limit_repeats_under_the_work_clock() {
    let w = karpenter::workload(300).expect("benchmark input");
    let options = PlanOptions {
        time_limit: Duration::from_millis(100),
        ..PlanOptions::default()
    };
    let plan = || clock::with_work_clock(|| solver::plan(&w.snapshot, &w.catalog, &options));
    let first = plan();
    // The limit cut the search short: the plan is not proven optimal.
    assert_ne!(first.solver.status, "optimal");
    for _ in 0..2 {
        let mut again = plan();
        again.solver.seconds = first.solver.seconds;
        assert_eq!(again, first);
    }
}
