//! `purser bench`: ILP vs FFD on the same inputs, one table. See `docs/benchmarks.md`.

use std::time::Duration;

use clap::Args;

use crate::bench::{self, BenchOptions, CaseSpec, Runner, report};
use crate::disruption::Replacement;

/// Arguments of `purser bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Pod counts for the Karpenter-style benchmark.
    #[arg(long, value_delimiter = ',', default_value = "1000,5000,10000,20000")]
    pub pods: Vec<usize>,
    /// Leave out the mixed AI/ML cluster case.
    #[arg(long)]
    pub skip_ai_ml: bool,
    /// The ILP's wall-clock limit (default: the planner's default, 1s).
    #[arg(long, value_parser = super::parse_duration)]
    pub time_limit: Option<Duration>,
    /// Run every case in this process instead of one child process per case (peak memory is
    /// then the process's, not the case's).
    #[arg(long)]
    pub in_process: bool,
    /// Skip the extra ILP run per case that times the planner phase by phase.
    #[arg(long)]
    pub no_phases: bool,
    /// Print one JSON outcome per line instead of the report.
    #[arg(long)]
    pub json: bool,
    /// Nodes of the consolidation benchmark's cluster (10 pods per node on average); 0 skips it.
    #[arg(long, default_value_t = 1000)]
    pub consolidation_nodes: usize,
    /// Run one case and print its result line (used by the parent process).
    #[arg(long, hide = true)]
    pub case: Option<String>,
}

/// Run `purser bench`.
pub fn run(args: BenchArgs) -> i32 {
    run_with(args, &["bench"])
}

/// Run the benchmark; child processes are this executable with `child_args` before the case
/// flags. Exit code 0, 1 when a case could not be measured, 2 for bad arguments. Validator
/// findings are reported in the table, not in the exit code.
pub fn run_with(args: BenchArgs, child_args: &[&str]) -> i32 {
    let options = BenchOptions {
        time_limit: args.time_limit.unwrap_or(BenchOptions::default().time_limit),
        phases: !args.no_phases,
    };
    if let Some(name) = &args.case {
        let Some(spec) = CaseSpec::parse(name) else {
            eprintln!("purser bench: unknown case {name:?} (expected karpenter-<pods> or ai-ml-mixed)");
            return 2;
        };
        let outcome = bench::run_case(&spec, &options, true);
        outln!("{}", bench::result_line(&outcome));
        return i32::from(outcome.is_err());
    }
    if let Some(zero) = args.pods.iter().find(|&&n| n == 0) {
        eprintln!("purser bench: --pods {zero}: pod counts must be positive");
        return 2;
    }
    let runner = if args.in_process {
        Runner::InProcess
    } else {
        match Runner::current_exe(child_args) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("purser bench: cannot find this executable ({e}); running in process");
                Runner::InProcess
            }
        }
    };
    let cases = bench::default_cases(&args.pods, !args.skip_ai_ml);
    let outcomes = bench::run_all(&cases, &options, &runner);
    if args.json {
        for o in &outcomes {
            outln!("{}", serde_json::to_string(o).unwrap_or_default());
        }
    } else {
        outln!("{}", report::render(&outcomes, &report::Machine::current()));
    }
    let consolidation_failed = args.consolidation_nodes > 0 && !consolidation(args.consolidation_nodes, args.json);
    i32::from(outcomes.iter().any(|o| o.is_err()) || consolidation_failed)
}

/// Run the consolidation benchmark (m→n vs m→1 on the same cluster) and print its table;
/// false when the cluster could not be built.
fn consolidation(nodes: usize, json: bool) -> bool {
    let catalog = crate::catalog::Catalog::embedded();
    eprintln!("purser bench: building the {nodes}-node consolidation cluster ...");
    let cluster = match bench::consolidation::cluster(nodes, &catalog) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("purser bench: consolidation cluster: {e}");
            return false;
        }
    };
    let runs: Vec<_> = [Replacement::ManyToMany, Replacement::ManyToOne]
        .into_iter()
        .map(|rule| {
            eprintln!("purser bench: consolidating with {rule:?} ...");
            bench::consolidation::consolidate(&cluster, &catalog, rule)
        })
        .collect();
    if json {
        for r in &runs {
            outln!("{}", serde_json::to_string(r).unwrap_or_default());
        }
    } else {
        outln!("{}", bench::consolidation::table(&cluster, &runs));
    }
    true
}
