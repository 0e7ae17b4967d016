//! `purser webhook`: the validating admission webhook for pods (see `purser::webhook`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use clap::Args;

use crate::catalog::Catalog;
use crate::webhook::policy::Policies;
use crate::webhook::server::{self, Shared};
use crate::webhook::{ClusterView, Settings};

/// What to do with a pod the webhook cannot judge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Failure {
    /// Allow it, with a warning.
    Open,
    /// Deny it.
    Closed,
}

/// Flags of `purser webhook`.
#[derive(Debug, Args)]
pub struct WebhookArgs {
    /// Address to serve HTTPS on (`POST /validate`, `GET /healthz`).
    #[arg(long, env = "PURSER_WEBHOOK_ADDR", default_value = "0.0.0.0:8443")]
    pub addr: SocketAddr,
    /// PEM certificate chain.
    #[arg(long, env = "PURSER_WEBHOOK_TLS_CERT_FILE")]
    pub tls_cert_file: PathBuf,
    /// PEM private key.
    #[arg(long, env = "PURSER_WEBHOOK_TLS_KEY_FILE")]
    pub tls_key_file: PathBuf,
    /// Policy configuration (YAML; every policy on with its defaults when absent).
    #[arg(long, env = "PURSER_WEBHOOK_CONFIG")]
    pub config: Option<PathBuf>,
    /// Answer for a pod that cannot be judged (a malformed object).
    #[arg(long, env = "PURSER_WEBHOOK_FAILURE", value_enum, default_value = "open")]
    pub failure: Failure,
    /// Catalog file for cost estimates (default: the embedded AWS us-east-1 snapshot).
    #[arg(long, env = "PURSER_CATALOG")]
    pub catalog: Option<PathBuf>,
}

/// Read the policy file, naming the file and the field that is wrong.
pub fn read_policies(path: Option<&PathBuf>) -> Result<Policies, String> {
    let Some(path) = path else {
        return Ok(Policies::default());
    };
    let text = std::fs::read_to_string(path).map_err(|e| format!("--config {}: {e}", path.display()))?;
    serde_norway::from_str(&text).map_err(|e| format!("--config {}: {e}", path.display()))
}

/// Run the webhook; returns the process exit code (2 for unusable input).
pub fn run(args: WebhookArgs) -> i32 {
    let prepared = read_policies(args.config.as_ref()).and_then(|policies| {
        let catalog = match &args.catalog {
            Some(path) => Catalog::from_file(path).map_err(|e| e.to_string())?,
            None => Catalog::embedded(),
        };
        let tls = server::tls_config(&args.tls_cert_file, &args.tls_key_file)?;
        Ok((policies, catalog, tls))
    });
    let (policies, catalog, tls) = match prepared {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return 1;
        }
    };
    let shared = Arc::new(Shared {
        settings: Settings {
            policies,
            fail_open: args.failure == Failure::Open,
        },
        catalog,
        view: RwLock::new(ClusterView::default()),
    });
    match runtime.block_on(serve(args.addr, tls, shared)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

async fn serve(addr: SocketAddr, tls: rustls::ServerConfig, shared: Arc<Shared>) -> anyhow::Result<()> {
    let client = kube::Client::try_default().await?;
    let _watch = server::watch(client, shared.clone());
    let (bound, _task) = server::serve(addr, tls, server::router(shared)).await?;
    tracing::info!(%bound, "serving the admission webhook");
    tokio::signal::ctrl_c().await?;
    Ok(())
}
