//! Benchmarks of the planner: the ILP against the FFD baseline on the same inputs.
//!
//! Two kinds of input: Karpenter's scheduling benchmark setup (400 synthetic instance types and
//! 1k–20k synthetic pods, see [`karpenter`]) and a mixed AI/ML cluster on the embedded AWS
//! catalog (see [`aiml`]). For each case both strategies plan the same snapshot; the result
//! records cost, the proven lower bound, wall-clock time of the `plan` call, status, peak
//! memory and the violations the independent validator finds.
//!
//! Each case normally runs in a fresh child process (see [`Runner`]) so that its peak resident
//! memory is its own; the child prints one [`RESULT_PREFIX`] line with the JSON outcome.
//! `purser bench` and `cargo bench --bench planner` both drive this module.

pub mod aiml;
pub mod consolidation;
pub mod karpenter;
pub mod measure;
pub mod objects;
pub mod report;
pub mod rng;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;
use crate::model::Snapshot;
use crate::solver::{self, Plan, PlanOptions, Problem, Strategy, bound, ffd, ilp, plan as plan_mod};

use measure::PhasePeaks;

/// The marker that starts a child's result line on its standard output.
pub const RESULT_PREFIX: &str = "PURSER_BENCH_CASE ";

/// Violation messages kept per plan (the count is always complete).
const VIOLATION_SAMPLES: usize = 3;

/// A benchmark input: a snapshot and the catalog it is priced from.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Case name.
    pub name: String,
    /// The cluster to plan for.
    pub snapshot: Snapshot,
    /// The instance types.
    pub catalog: Catalog,
}

/// Which input a case plans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseSpec {
    /// Karpenter's benchmark setup with this many pods.
    Karpenter(usize),
    /// The mixed AI/ML cluster on the embedded AWS catalog.
    AiMl,
}

impl CaseSpec {
    /// The case name: `karpenter-<pods>` or `ai-ml-mixed`.
    pub fn name(&self) -> String {
        match self {
            CaseSpec::Karpenter(n) => format!("karpenter-{n}"),
            CaseSpec::AiMl => "ai-ml-mixed".into(),
        }
    }

    /// Parse a case name as [`CaseSpec::name`] writes it.
    pub fn parse(name: &str) -> Option<CaseSpec> {
        if name == "ai-ml-mixed" {
            return Some(CaseSpec::AiMl);
        }
        name.strip_prefix("karpenter-")?
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .map(CaseSpec::Karpenter)
    }

    /// Build the input.
    pub fn workload(&self) -> Result<Workload, String> {
        match self {
            CaseSpec::Karpenter(n) => karpenter::workload(*n),
            CaseSpec::AiMl => aiml::workload(),
        }
    }
}

/// How cases are planned.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// The ILP's wall-clock limit (`PlanOptions::time_limit`).
    pub time_limit: Duration,
    /// Also time the planner's phases (problem build, FFD, ILP, materialize and bound).
    pub phases: bool,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            time_limit: PlanOptions::default().time_limit,
            phases: true,
        }
    }
}

/// One strategy's plan of one case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StrategyRun {
    /// List price of the new nodes, USD/hour.
    pub cost: f64,
    /// The plan's proven lower bound, USD/hour.
    pub lower_bound: f64,
    /// Wall-clock seconds of the `plan` call (problem build and FFD included).
    pub seconds: f64,
    /// Solver status (`optimal`, `feasible`, `fallback`).
    pub status: String,
    /// New nodes.
    pub nodes: usize,
    /// Pods the plan leaves unschedulable.
    pub unplaced: usize,
    /// Number of rules the validator finds broken.
    pub violations: usize,
    /// The first few violation messages.
    pub violation_samples: Vec<String>,
    /// Peak resident memory of the process during the `plan` call, MiB (inputs included).
    pub peak_mib: f64,
}

/// Wall-clock seconds of the planner's phases, timed by calling them one by one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Phases {
    /// `Problem::build`: node kinds, pod classes, topology pins, node rules.
    pub build: f64,
    /// `ffd::solve`: the greedy baseline.
    pub ffd: f64,
    /// `ilp::solve`: column generation, integer master, repair.
    pub ilp: f64,
    /// `plan::materialize` and `bound::lower_bound`.
    pub finish: f64,
    /// Cost of the ILP assignment of this run (it can differ from the timed run near the limit).
    pub ilp_cost: f64,
}

/// Everything measured for one case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseResult {
    /// Case name.
    pub case: String,
    /// Pending pods.
    pub pods: usize,
    /// Distinct pod classes the planner sees.
    pub classes: usize,
    /// Node kinds (offerings in pools, existing nodes) the planner sees.
    pub kinds: usize,
    /// The FFD baseline.
    pub ffd: StrategyRun,
    /// The ILP.
    pub ilp: StrategyRun,
    /// Peak resident memory while building the inputs, MiB.
    pub inputs_mib: f64,
    /// Peak resident memory of the whole process, MiB.
    pub process_mib: f64,
    /// True when each phase's peak was measured on its own (`/proc/self/clear_refs` works);
    /// false when every figure is the process peak up to that point.
    pub per_phase_memory: bool,
    /// True when the case ran in its own process.
    pub isolated: bool,
    /// The ILP time limit, seconds.
    pub time_limit: f64,
    /// Phase timings, when asked for.
    pub phases: Option<Phases>,
}

impl CaseResult {
    /// ILP cost above the lower bound, percent of the bound (None when the bound is 0).
    pub fn gap_percent(&self) -> Option<f64> {
        let lb = self.ilp.lower_bound;
        (lb > 0.0).then(|| (self.ilp.cost - lb) / lb * 100.0)
    }

    /// ILP saving against FFD, percent of the FFD cost (None when FFD costs nothing).
    pub fn saving_percent(&self) -> Option<f64> {
        (self.ffd.cost > 0.0).then(|| (self.ffd.cost - self.ilp.cost) / self.ffd.cost * 100.0)
    }
}

/// A case that could not be measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseError {
    /// Case name.
    pub case: String,
    /// What went wrong.
    pub message: String,
}

/// The outcome of one case.
pub type Outcome = Result<CaseResult, CaseError>;

fn strategy_run(snapshot: &Snapshot, catalog: &Catalog, plan: &Plan, seconds: f64, peak_mib: f64) -> StrategyRun {
    let violations = solver::validate::violations(snapshot, catalog, plan);
    StrategyRun {
        cost: plan.hourly_cost,
        lower_bound: plan.lower_bound,
        seconds,
        status: plan.solver.status.clone(),
        nodes: plan.node_claims.len(),
        unplaced: plan.unschedulable.len(),
        violations: violations.len(),
        violation_samples: violations.into_iter().take(VIOLATION_SAMPLES).collect(),
        peak_mib,
    }
}

/// Time the planner's phases by calling them in the order `solver::plan` does.
fn time_phases(snapshot: &Snapshot, catalog: &Catalog, options: &PlanOptions) -> Phases {
    let start = Instant::now();
    let problem = Problem::build(snapshot, catalog, options);
    let built = Instant::now();
    let baseline = ffd::solve(&problem);
    let greedy = Instant::now();
    let (assignment, _) = ilp::solve(&problem, &baseline, start + options.time_limit);
    let solved = Instant::now();
    let _ = plan_mod::materialize(&problem, snapshot, &assignment);
    let _ = bound::lower_bound(&problem, &assignment);
    let finished = Instant::now();
    Phases {
        build: (built - start).as_secs_f64(),
        ffd: (greedy - built).as_secs_f64(),
        ilp: (solved - greedy).as_secs_f64(),
        finish: (finished - solved).as_secs_f64(),
        ilp_cost: plan_mod::list_cost(&problem, &assignment),
    }
}

/// Run one case in this process: build the input, plan it with FFD then with the ILP (each
/// `plan` call timed on its own), validate both plans, and optionally time the phases.
pub fn run_case(spec: &CaseSpec, options: &BenchOptions, isolated: bool) -> Outcome {
    let case = spec.name();
    let mut peaks = PhasePeaks::start();
    let workload = spec.workload().map_err(|message| CaseError {
        case: case.clone(),
        message: format!("cannot build the input: {message}"),
    })?;
    let inputs_mib = peaks.end_phase();
    let (snapshot, catalog) = (&workload.snapshot, &workload.catalog);
    let ilp_options = PlanOptions {
        strategy: Strategy::Ilp,
        time_limit: options.time_limit,
        ..PlanOptions::default()
    };
    let ffd_options = PlanOptions {
        strategy: Strategy::Ffd,
        ..ilp_options.clone()
    };

    let start = Instant::now();
    let ffd_plan = solver::plan(snapshot, catalog, &ffd_options);
    let ffd_seconds = start.elapsed().as_secs_f64();
    let ffd_peak = peaks.end_phase();

    let start = Instant::now();
    let ilp_plan = solver::plan(snapshot, catalog, &ilp_options);
    let ilp_seconds = start.elapsed().as_secs_f64();
    let ilp_peak = peaks.end_phase();

    let ffd = strategy_run(snapshot, catalog, &ffd_plan, ffd_seconds, ffd_peak);
    let ilp = strategy_run(snapshot, catalog, &ilp_plan, ilp_seconds, ilp_peak);
    let problem = Problem::build(snapshot, catalog, &ilp_options);
    let phases = options.phases.then(|| time_phases(snapshot, catalog, &ilp_options));
    peaks.end_phase();
    Ok(CaseResult {
        case,
        pods: snapshot.pending().count(),
        classes: problem.classes.len(),
        kinds: problem.kinds.len(),
        ffd,
        ilp,
        inputs_mib,
        process_mib: peaks.process,
        per_phase_memory: peaks.resettable,
        isolated,
        time_limit: options.time_limit.as_secs_f64(),
        phases,
    })
}

/// The line a child prints for its outcome.
pub fn result_line(outcome: &Outcome) -> String {
    let json = serde_json::to_string(outcome)
        .unwrap_or_else(|e| format!(r#"{{"Err":{{"case":"?","message":"cannot encode the result: {e}"}}}}"#));
    format!("{RESULT_PREFIX}{json}")
}

/// Where cases run.
#[derive(Debug, Clone)]
pub enum Runner {
    /// In this process, one after the other (peak memory then includes earlier cases' leftovers).
    InProcess,
    /// Each case in a fresh child: `exe args... --case NAME --time-limit MS [--no-phases]`.
    Child {
        /// The executable.
        exe: PathBuf,
        /// Arguments before the case flags (`bench` for the `purser` binary).
        args: Vec<String>,
    },
}

impl Runner {
    /// Run children of the current executable with `args` before the case flags.
    pub fn current_exe(args: &[&str]) -> std::io::Result<Runner> {
        Ok(Runner::Child {
            exe: std::env::current_exe()?,
            args: args.iter().map(|s| s.to_string()).collect(),
        })
    }

    /// Run one case.
    pub fn run(&self, spec: &CaseSpec, options: &BenchOptions) -> Outcome {
        let (exe, args) = match self {
            Runner::InProcess => return run_case(spec, options, false),
            Runner::Child { exe, args } => (exe, args),
        };
        let case = spec.name();
        let fail = |message: String| CaseError {
            case: case.clone(),
            message,
        };
        let mut command = Command::new(exe);
        command
            .args(args)
            .arg("--case")
            .arg(&case)
            .arg("--time-limit")
            .arg(format!("{}ms", options.time_limit.as_millis().max(1)));
        if !options.phases {
            command.arg("--no-phases");
        }
        let output = command
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| fail(format!("cannot start {}: {e}", exe.display())))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let Some(line) = stdout.lines().rev().find_map(|l| l.strip_prefix(RESULT_PREFIX)) else {
            return Err(fail(format!("the child process printed no result ({})", output.status)));
        };
        serde_json::from_str::<Outcome>(line).map_err(|e| fail(format!("unreadable child result: {e}")))?
    }
}

/// Run every case in order, reporting progress on standard error.
pub fn run_all(cases: &[CaseSpec], options: &BenchOptions, runner: &Runner) -> Vec<Outcome> {
    cases
        .iter()
        .map(|spec| {
            eprintln!("purser bench: running {} ...", spec.name());
            let outcome = runner.run(spec, options);
            match &outcome {
                Ok(r) => eprintln!(
                    "purser bench: {}: FFD ${:.2}/h in {:.3}s, ILP ${:.2}/h in {:.3}s ({})",
                    r.case, r.ffd.cost, r.ffd.seconds, r.ilp.cost, r.ilp.seconds, r.ilp.status
                ),
                Err(e) => eprintln!("purser bench: {}: failed: {}", e.case, e.message),
            }
            outcome
        })
        .collect()
}

/// The default cases: Karpenter's setup at each pod count, then the AI/ML cluster.
pub fn default_cases(pods: &[usize], ai_ml: bool) -> Vec<CaseSpec> {
    let mut cases: Vec<CaseSpec> = pods.iter().map(|&n| CaseSpec::Karpenter(n)).collect();
    if ai_ml {
        cases.push(CaseSpec::AiMl);
    }
    cases
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_names_round_trip() {
        for spec in [CaseSpec::Karpenter(1000), CaseSpec::AiMl] {
            assert_eq!(CaseSpec::parse(&spec.name()), Some(spec));
        }
        assert_eq!(CaseSpec::parse("karpenter-0"), None);
        assert_eq!(CaseSpec::parse("other"), None);
    }

    #[test]
    fn small_case_runs_and_round_trips_through_json() {
        let options = BenchOptions {
            time_limit: Duration::from_millis(500),
            phases: true,
        };
        let outcome = run_case(&CaseSpec::Karpenter(100), &options, false);
        let result = outcome.clone().unwrap();
        assert_eq!(result.pods, 100);
        assert!(result.ffd.cost > 0.0 && result.ilp.cost <= result.ffd.cost + 1e-9);
        assert!(result.ilp.lower_bound <= result.ilp.cost + 1e-9);
        let line = result_line(&outcome);
        let back: Outcome = serde_json::from_str(line.strip_prefix(RESULT_PREFIX).unwrap()).unwrap();
        assert_eq!(back, outcome);
    }
}
