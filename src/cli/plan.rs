//! `purser plan -f cluster.yaml [--catalog FILE] [--strategy ilp|ffd] [--time-limit 1s] [-o json|table]`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::catalog::Catalog;
use crate::disruption::{self, Decision, DisruptOptions, Replacement};
use crate::model::Snapshot;
use crate::model::disruption::InterruptionKind;
use crate::model::load::load_files;
use crate::solver::{self, Plan, PlanOptions};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Machine-readable JSON.
    Json,
    /// A table for people.
    Table,
}

/// Strategy flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StrategyArg {
    /// Column generation and an integer master (default).
    Ilp,
    /// Karpenter's first-fit-decreasing baseline.
    Ffd,
}

impl From<StrategyArg> for crate::solver::Strategy {
    fn from(arg: StrategyArg) -> Self {
        match arg {
            StrategyArg::Ilp => crate::solver::Strategy::Ilp,
            StrategyArg::Ffd => crate::solver::Strategy::Ffd,
        }
    }
}

/// Arguments of `purser plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Kubernetes object files (YAML or JSON, multi-document, `kind: List` allowed).
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<PathBuf>,
    /// A catalog JSON file (default: the embedded AWS us-east-1 snapshot).
    #[arg(long)]
    pub catalog: Option<PathBuf>,
    /// Planning algorithm.
    #[arg(long, value_enum, default_value = "ilp")]
    pub strategy: StrategyArg,
    /// Wall-clock limit for the whole plan call (the ILP searches for 90% of it).
    #[arg(long, default_value = "1s", value_parser = super::parse_duration)]
    pub time_limit: std::time::Duration,
    /// Expected cost of one spot interruption, in hours of the on-demand price.
    #[arg(long, default_value_t = 1.0)]
    pub spot_rework_hours: f64,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "json")]
    pub output: Output,
    /// Print disruption commands (consolidation, drift, expiry, interruption) instead of a
    /// provisioning plan.
    #[arg(long)]
    pub disrupt: bool,
    /// The clock for `--disrupt`, RFC 3339 (default: now).
    #[arg(long, value_parser = parse_rfc3339, requires = "disrupt")]
    pub now: Option<i64>,
    /// An interruption notice for `--disrupt`: NODE=spot-interruption|rebalance|scheduled-change
    /// (repeatable; adds to the nodes' `purser.dev/interruption` annotations).
    #[arg(long = "interruption", value_parser = parse_interruption, requires = "disrupt")]
    pub interruptions: Vec<(String, InterruptionKind)>,
    /// Consolidation replacements for `--disrupt`: m-to-n (Purser) or m-to-1 (Karpenter's rule).
    #[arg(long, value_enum, default_value = "m-to-n", requires = "disrupt")]
    pub replacement: ReplacementArg,
}

/// Consolidation replacement flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReplacementArg {
    /// Any set of nodes by any set of new nodes.
    MToN,
    /// Any set of nodes by at most one new node.
    #[value(name = "m-to-1")]
    MTo1,
}

/// Parse an RFC 3339 time into seconds since the epoch.
pub fn parse_rfc3339(text: &str) -> Result<i64, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp())
        .map_err(|e| format!("invalid time {text:?}: {e} (expected RFC 3339, e.g. 2026-11-25T12:00:00Z)"))
}

/// Parse `NODE=KIND` for `--interruption`.
pub fn parse_interruption(text: &str) -> Result<(String, InterruptionKind), String> {
    let (node, kind) = text
        .split_once('=')
        .ok_or_else(|| format!("invalid interruption {text:?} (expected NODE=KIND)"))?;
    let kind = InterruptionKind::parse(kind).ok_or_else(|| {
        format!("invalid interruption kind {kind:?} (expected spot-interruption, rebalance or scheduled-change)")
    })?;
    if node.is_empty() {
        return Err(format!("invalid interruption {text:?}: the node name is empty"));
    }
    Ok((node.to_string(), kind))
}

/// Run `purser plan`.
pub fn run(args: PlanArgs) -> i32 {
    let catalog = match &args.catalog {
        Some(path) => match Catalog::from_file(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                return 2;
            }
        },
        None => Catalog::embedded(),
    };
    if !args.spot_rework_hours.is_finite() || args.spot_rework_hours < 0.0 {
        eprintln!("error: --spot-rework-hours must be a non-negative number");
        return 2;
    }
    let loaded = match load_files(&args.files, &catalog) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    for w in &loaded.warnings {
        eprintln!("warning: {w}");
    }
    let options = PlanOptions {
        strategy: args.strategy.into(),
        time_limit: args.time_limit,
        spot_rework_hours: args.spot_rework_hours,
        ..PlanOptions::default()
    };
    if args.disrupt {
        return disrupt(&args, loaded.snapshot, &catalog, options);
    }
    let plan = solver::plan(&loaded.snapshot, &catalog, &options);
    match args.output {
        Output::Json => match serde_json::to_string_pretty(&plan) {
            Ok(text) => outln!("{text}"),
            Err(e) => {
                eprintln!("error: cannot print the plan: {e}");
                return 1;
            }
        },
        Output::Table => out!("{}", table(&plan)),
    }
    0
}

/// Run `purser plan --disrupt`.
fn disrupt(args: &PlanArgs, mut snapshot: Snapshot, catalog: &Catalog, plan: PlanOptions) -> i32 {
    for (name, kind) in &args.interruptions {
        match snapshot.nodes.iter_mut().find(|n| &n.name == name) {
            Some(node) => node.interruption = Some(*kind),
            None => {
                eprintln!("error: --interruption names node {name:?}, which is not in the input");
                return 2;
            }
        }
    }
    let now = args.now.unwrap_or_else(|| chrono::Utc::now().timestamp());
    let mut options = DisruptOptions::at(now);
    options.plan.strategy = plan.strategy;
    options.plan.spot_rework_hours = plan.spot_rework_hours;
    options.replacement = match args.replacement {
        ReplacementArg::MToN => Replacement::ManyToMany,
        ReplacementArg::MTo1 => Replacement::ManyToOne,
    };
    let decision = disruption::decide(&snapshot, catalog, &options);
    match args.output {
        Output::Json => match serde_json::to_string_pretty(&decision) {
            Ok(text) => outln!("{text}"),
            Err(e) => {
                eprintln!("error: cannot print the decision: {e}");
                return 1;
            }
        },
        Output::Table => out!("{}", disruption_table(&decision)),
    }
    0
}

/// Disruption commands as a table for people.
pub fn disruption_table(decision: &Decision) -> String {
    let mut out = String::new();
    for c in &decision.commands {
        let claims: Vec<String> = c
            .node_claims
            .iter()
            .map(|n| format!("{} {} {}", n.instance_type, n.capacity_type, n.zone))
            .collect();
        out.push_str(&format!(
            "{:?} {:<13} nodes [{}] -> [{}]  saving {:.4} USD/h  ({})\n",
            c.action,
            c.reason.as_str(),
            c.nodes.join(", "),
            claims.join(", "),
            c.saving_per_hour,
            c.detail
        ));
    }
    for b in &decision.blocked {
        out.push_str(&format!("blocked {}: {}\n", b.node, b.reason));
    }
    if decision.commands.is_empty() {
        out.push_str("no disruption commands\n");
    }
    out
}

/// The plan as a table for people.
pub fn table(plan: &Plan) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "{:<14} {:<18} {:<10} {:<12} {:>10}  {}\n",
        "NODEPOOL", "INSTANCE TYPE", "CAPACITY", "ZONE", "USD/HOUR", "PODS"
    ));
    for c in &plan.node_claims {
        let price = if c.price_estimated {
            format!("~{:.4}", c.hourly_price)
        } else {
            format!("{:.4}", c.hourly_price)
        };
        out.push_str(&format!(
            "{:<14} {:<18} {:<10} {:<12} {:>10}  {}\n",
            c.node_pool,
            c.instance_type,
            c.capacity_type,
            c.zone,
            price,
            c.pods.join(",")
        ));
    }
    for e in &plan.existing_nodes {
        out.push_str(&format!("existing node {}: {}\n", e.node, e.pods.join(",")));
    }
    for u in &plan.unschedulable {
        out.push_str(&format!("unschedulable {}: {}\n", u.pod, u.reason));
    }
    out.push_str(&format!(
        "hourly cost {:.4} USD/h (lower bound {:.4}); {} {} in {:.3}s",
        plan.hourly_cost, plan.lower_bound, plan.solver.strategy, plan.solver.status, plan.solver.seconds
    ));
    if let Some(b) = plan.solver.baseline_cost {
        out.push_str(&format!("; FFD baseline {b:.4} USD/h"));
    }
    if plan.node_claims.iter().any(|c| c.price_estimated) {
        out.push_str("\n~ marks an estimated (spot) price");
    }
    out.push('\n');
    out
}
