//! `purser simulate [--scenario FILE|NAME] [--policies a,b,c] [--duration 7d] [--seed N] [--report DIR]`.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::catalog::Catalog;
use crate::sim::policy::Policy;
use crate::sim::{self, SimOptions, load, report};

/// Arguments of `purser simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// A scenario file, or the name of a bundled scenario (streamforge, quickstart).
    #[arg(long, default_value = "streamforge")]
    pub scenario: String,
    /// Policies to compare: purser, karpenter, cluster-autoscaler.
    #[arg(long, value_delimiter = ',', default_value = "purser,karpenter,cluster-autoscaler", value_parser = parse_policy)]
    pub policies: Vec<Policy>,
    /// Simulated time (e.g. 7d, 24h, 90m; default: the scenario's durationHours).
    #[arg(long, value_parser = parse_hours)]
    pub duration: Option<f64>,
    /// Seed of every random stream.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write report.html, kpis.json and timeline.csv into this directory.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

/// Parse a policy name.
pub fn parse_policy(text: &str) -> Result<Policy, String> {
    Policy::parse(text)
        .ok_or_else(|| format!("unknown policy {text:?} (expected purser, karpenter or cluster-autoscaler)"))
}

/// Parse `7d`, `24h`, `90m` into hours.
pub fn parse_hours(text: &str) -> Result<f64, String> {
    let bad = || format!("invalid duration {text:?} (expected a positive number with d, h or m, e.g. 7d)");
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let value: f64 = number.parse().map_err(|_| bad())?;
    let hours = match unit {
        "d" => value * 24.0,
        "h" => value,
        "m" => value / 60.0,
        _ => return Err(bad()),
    };
    if hours.is_finite() && hours > 0.0 {
        Ok(hours)
    } else {
        Err(bad())
    }
}

/// The policies still running, for the progress bar.
fn running(names: &[&str], done: &[f64]) -> String {
    let busy: Vec<&str> = names
        .iter()
        .zip(done)
        .filter(|&(_, &f)| f < 1.0)
        .map(|(n, _)| *n)
        .collect();
    busy.join(", ")
}

/// Run `purser simulate`.
pub fn run(args: SimulateArgs) -> i32 {
    let catalog = Catalog::embedded();
    let loaded = match load::load_scenario(&args.scenario, &catalog) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let options = SimOptions {
        hours: args.duration.unwrap_or(loaded.scenario.duration_hours),
        seed: args.seed,
        policies: args.policies.clone(),
    };
    let bar = ProgressBar::new(1000 * options.policies.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{bar:40}] {percent}% {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let names: Vec<&str> = options.policies.iter().map(|p| p.name()).collect();
    let done = Mutex::new(vec![0.0; names.len()]);
    let result = sim::simulate(&loaded.scenario, &loaded.snapshot, &catalog, &options, &|i, f| {
        let Ok(mut done) = done.lock() else { return };
        done[i] = f;
        bar.set_message(running(&names, &done));
        bar.set_position((done.iter().sum::<f64>() * 1000.0) as u64);
    });
    bar.finish_and_clear();
    let wall = started.elapsed().as_secs_f64();
    outln!(
        "scenario {} ({}), seed {}, {:.0} simulated hours, {:.1} s wall clock ({:.1} simulated hours per wall second over {} policies)\n",
        result.scenario,
        loaded.source,
        result.seed,
        result.simulated_hours,
        wall,
        result.simulated_hours * result.policies.len() as f64 / wall.max(1e-9),
        result.policies.len()
    );
    out!("{}", report::kpi_table(&result));
    if let Some(dir) = &args.report {
        if let Err(e) = report::write_report(dir, &result) {
            eprintln!("error: cannot write the report into {}: {e}", dir.display());
            return 1;
        }
        outln!("\nreport written to {}", dir.display());
    }
    0
}
