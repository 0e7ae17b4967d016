//! The command line: `purser plan`, `purser simulate`, `purser bench`, `purser crds`,
//! `purser controller`, `purser webhook` and `purser report`. Parses arguments,
//! loads input at the edge, calls the engine, prints the result. Exit code 2 means the input was
//! unusable.

/// Print to standard output; when the reader has gone (`purser plan | head`), stop quietly
/// with exit code 0 instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format_args!($($arg)*))
    };
}

/// `out!` with a newline.
macro_rules! outln {
    () => {
        $crate::cli::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

pub mod bench;
pub mod controller;
pub mod crds;
pub mod plan;
pub mod report;
pub mod simulate;
pub mod webhook;

use std::io::Write;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// Purser: a cost-aware node provisioner for Kubernetes.
#[derive(Debug, Parser)]
#[command(name = "purser", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Plan nodes for the pending pods in Kubernetes object files.
    Plan(plan::PlanArgs),
    /// Compare the ILP planner with the FFD baseline on the benchmark inputs.
    Bench(bench::BenchArgs),
    /// Simulate a cluster under several autoscaling policies and compare their KPIs.
    Simulate(simulate::SimulateArgs),
    /// Print Purser's CustomResourceDefinitions as YAML (or write them with --out DIR).
    Crds(crds::CrdsArgs),
    /// Run Purser as the cluster's autoscaler (the controller). Boxed: its arguments (the AWS
    /// provider's among them) make it far larger than the other variants.
    Controller(Box<controller::ControllerArgs>),
    /// Serve the validating admission webhook that applies the cost policies to new pods.
    Webhook(webhook::WebhookArgs),
    /// Print a showback scorecard for a time window from Prometheus (table, CSV, Markdown, FOCUS).
    Report(report::ReportArgs),
}

/// Parse a duration such as `2s`, `500ms` or `1.5s`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?} (expected e.g. 2s, 500ms, 1m)"))?;
    if !value.is_finite() || value <= 0.0 {
        return Err(format!("invalid duration {text:?}: must be positive"));
    }
    Ok(Duration::from_secs_f64(value * scale))
}

/// Run the CLI; returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Plan(args) => plan::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Simulate(args) => simulate::run(args),
        Command::Crds(args) => crds::run(args),
        Command::Controller(args) => controller::run(*args),
        Command::Webhook(args) => webhook::run(args),
        Command::Report(args) => report::run(args),
    }
}

/// Write to standard output; exit quietly when the reader has gone.
pub fn write_stdout(args: std::fmt::Arguments) {
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}
