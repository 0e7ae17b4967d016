//! `cargo bench --bench planner`: the same benchmark as `purser bench`, with its default
//! arguments (Karpenter's setup at 1k, 5k, 10k and 20k pods, then the AI/ML cluster).
//!
//! Each case runs in a child process of this bench executable, so peak memory is per case.
//! Arguments after `--` are those of `purser bench` (for example `-- --pods 1000`); the
//! `--bench` flag that cargo adds is ignored.

use clap::Parser;

/// The bench executable's arguments: exactly those of `purser bench`.
#[derive(Debug, Parser)]
#[command(name = "planner-bench")]
struct Args {
    #[command(flatten)]
    bench: purser::cli::bench::BenchArgs,
}

fn main() {
    let args = Args::parse_from(std::env::args().filter(|a| a != "--bench"));
    std::process::exit(purser::cli::bench::run_with(args.bench, &[]));
}
