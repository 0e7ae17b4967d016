//! `purser bench`: ILP vs FFD on the same inputs (filled in by the benchmark module).

use clap::Args;

/// Arguments of `purser bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Pod counts for the Karpenter-style benchmark.
    #[arg(long, value_delimiter = ',', default_value = "1000,5000,10000,20000")]
    pub pods: Vec<usize>,
}

/// Run `purser bench`.
pub fn run(args: BenchArgs) -> i32 {
    let _ = args;
    0
}
