//! The `purser` command.

use clap::Parser;

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = purser::cli::Cli::parse();
    std::process::exit(purser::cli::run(cli));
}
