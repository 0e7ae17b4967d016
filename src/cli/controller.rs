//! `purser controller`: run Purser as the cluster's autoscaler.
//!
//! Flags and environment variables (`PURSER_*`) configure it; the kubeconfig or in-cluster
//! service account gives the API server. `--provider kwok` creates Node objects directly (no
//! cloud account needed); `--provider aws` launches EC2 instances (credentials from the standard
//! chain: environment, IRSA, EKS Pod Identity), see docs/aws.md.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use purser_cloudprovider::CloudProvider;

use crate::catalog::Catalog;
use crate::controllers::{self, Settings};

/// Which cloud launches the nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Provider {
    /// Node objects created directly in the cluster (Karpenter's kwok provider).
    Kwok,
    /// EC2 instances through CreateFleet, with live prices and the spot interruption queue.
    Aws,
}

/// `purser controller` arguments.
#[derive(Debug, Args)]
pub struct ControllerArgs {
    /// Cloud provider.
    #[arg(long, env = "PURSER_PROVIDER", value_enum, default_value = "kwok")]
    pub provider: Provider,
    /// Catalog JSON file (default: the embedded AWS us-east-1 snapshot).
    #[arg(long, env = "PURSER_CATALOG")]
    pub catalog: Option<PathBuf>,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "PURSER_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Batch idle time.
    #[arg(long, env = "PURSER_BATCH_IDLE", default_value = "1s", value_parser = super::parse_duration)]
    pub batch_idle: Duration,
    /// Batch maximum time.
    #[arg(long, env = "PURSER_BATCH_MAX", default_value = "10s", value_parser = super::parse_duration)]
    pub batch_max: Duration,
    /// Planning algorithm: `ilp` (default) or `ffd` (Karpenter's first-fit-decreasing).
    #[arg(long, env = "PURSER_STRATEGY", value_enum, default_value = "ilp")]
    pub strategy: super::plan::StrategyArg,
    /// Planner time limit per decision.
    #[arg(long, env = "PURSER_PLAN_TIME_LIMIT", default_value = "1s", value_parser = super::parse_duration)]
    pub plan_time_limit: Duration,
    /// A launched node that has not registered after this long is deleted.
    #[arg(long, env = "PURSER_REGISTRATION_TTL", default_value = "15m", value_parser = super::parse_duration)]
    pub registration_ttl: Duration,
    /// How often the disruption engine runs.
    #[arg(long, env = "PURSER_DISRUPTION_INTERVAL", default_value = "10s", value_parser = super::parse_duration)]
    pub disruption_interval: Duration,
    /// Turn disruption (consolidation, expiry, drift, interruption) off.
    #[arg(long, env = "PURSER_NO_DISRUPTION")]
    pub no_disruption: bool,
    /// An instance with no NodeClaim is terminated after this long.
    #[arg(long, env = "PURSER_LEAK_GRACE", default_value = "5m", value_parser = super::parse_duration)]
    pub leak_grace: Duration,
    /// Longest drain before the instance is terminated anyway.
    #[arg(long, env = "PURSER_TERMINATION_GRACE", default_value = "10m", value_parser = super::parse_duration)]
    pub termination_grace: Duration,
    /// This replica's identity (defaults to the pod name).
    #[arg(long, env = "POD_NAME", default_value = "purser")]
    pub identity: String,
    /// Namespace of the leader-election Lease.
    #[arg(long, env = "POD_NAMESPACE", default_value = "purser")]
    pub namespace: String,
    /// Run without leader election (one replica only).
    #[arg(long, env = "PURSER_NO_LEADER_ELECTION")]
    pub no_leader_election: bool,
    /// Cluster name; aws: instances are tagged with it and only tagged instances are touched.
    #[arg(long, env = "PURSER_CLUSTER_NAME", default_value = "")]
    pub cluster_name: String,
    /// aws: region (default: the SDK's, from AWS_REGION or the profile).
    #[arg(long, env = "AWS_REGION")]
    pub aws_region: Option<String>,
    /// aws: endpoint URL override for EC2 and SQS (testing, e.g. moto).
    #[arg(long, env = "PURSER_AWS_ENDPOINT_URL")]
    pub aws_endpoint_url: Option<String>,
    /// aws: endpoint URL override for the Pricing API (testing).
    #[arg(long, env = "PURSER_AWS_PRICING_ENDPOINT_URL")]
    pub aws_pricing_endpoint_url: Option<String>,
    /// aws: URL of the SQS queue EventBridge sends interruption events to (none: no
    /// interruption handling).
    #[arg(long, env = "PURSER_AWS_INTERRUPTION_QUEUE")]
    pub aws_interruption_queue: Option<String>,
    /// kwok: namespace of the instance records.
    #[arg(long, env = "PURSER_KWOK_NAMESPACE", default_value = "kube-system")]
    pub kwok_namespace: String,
    /// kwok: delay before a launched instance's Node appears.
    #[arg(long, env = "PURSER_KWOK_REGISTRATION_DELAY", default_value = "2s", value_parser = super::parse_duration)]
    pub kwok_registration_delay: Duration,
}

impl ControllerArgs {
    /// The controller settings these flags give.
    pub fn settings(&self) -> Settings {
        Settings {
            batch_idle: self.batch_idle,
            batch_max: self.batch_max,
            plan_time_limit: self.plan_time_limit,
            strategy: self.strategy.into(),
            registration_ttl: self.registration_ttl,
            disruption_interval: if self.no_disruption {
                Duration::ZERO
            } else {
                self.disruption_interval
            },
            leak_grace: self.leak_grace,
            termination_grace: self.termination_grace,
            identity: self.identity.clone(),
            lease_namespace: self.namespace.clone(),
            leader_elect: !self.no_leader_election,
            ..Settings::default()
        }
    }
}

/// Run the controller; returns the process exit code.
pub fn run(args: ControllerArgs) -> i32 {
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
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return 1;
        }
    };
    match runtime.block_on(serve(args, catalog)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

async fn serve(args: ControllerArgs, catalog: Catalog) -> anyhow::Result<()> {
    let client = kube::Client::try_default().await?;
    let cloud: Arc<dyn CloudProvider> = match args.provider {
        Provider::Kwok => kwok_cloud(&args, client.clone(), &catalog).await?,
        Provider::Aws => aws_cloud(&args, client.clone(), &catalog).await?,
    };
    let mut settings = args.settings();
    if args.provider == Provider::Aws {
        settings.catalog_refresh = Duration::from_secs(60);
    }
    let ctx = controllers::Context::new(client, cloud, catalog, settings);
    let probes = controllers::http::Probes {
        metrics: ctx.metrics.clone(),
        ready: ctx.ready.clone(),
    };
    let (addr, _server) = controllers::http::serve(args.metrics_addr, probes).await?;
    tracing::info!(%addr, "serving /metrics, /healthz and /readyz");
    controllers::run(ctx, shutdown_signal()).await?;
    Ok(())
}

async fn kwok_cloud(
    args: &ControllerArgs,
    client: kube::Client,
    catalog: &Catalog,
) -> anyhow::Result<Arc<dyn CloudProvider>> {
    let options = purser_kwok::KwokOptions {
        namespace: args.kwok_namespace.clone(),
        registration_delay: args.kwok_registration_delay,
        ..purser_kwok::KwokOptions::default()
    };
    let provider = purser_kwok::KwokProvider::new(client.clone(), catalog.to_spec(), options);
    tokio::spawn(provider.kubelet().run(futures::future::pending::<()>()));
    Ok(Arc::new(provider))
}

/// How often the AWS provider re-resolves NodeClasses.
const NODECLASS_EVERY: Duration = Duration::from_secs(30);
/// How often the AWS provider looks whether its catalog is due for a refresh.
const CATALOG_EVERY: Duration = Duration::from_secs(30);

async fn aws_cloud(
    args: &ControllerArgs,
    client: kube::Client,
    catalog: &Catalog,
) -> anyhow::Result<Arc<dyn CloudProvider>> {
    if args.cluster_name.is_empty() {
        anyhow::bail!(
            "--cluster-name (PURSER_CLUSTER_NAME) is required with --provider aws: instances are tagged with it"
        );
    }
    let sdk = purser_aws::sdk_config(args.aws_region.as_deref(), args.aws_endpoint_url.as_deref()).await;
    let Some(region) = sdk.region().map(|r| r.to_string()) else {
        anyhow::bail!("no AWS region: set --aws-region or AWS_REGION");
    };
    let kubernetes_version = match client.apiserver_version().await {
        Ok(v) => format!("{}.{}", v.major, v.minor.trim_end_matches('+')),
        Err(e) => {
            let fallback = purser_aws::AwsOptions::default().kubernetes_version;
            tracing::warn!(
                error = %e,
                kubernetes_version = %fallback,
                "cannot read the API server version; image aliases (amiSelectorTerms[].alias) resolve for Kubernetes {fallback}"
            );
            fallback
        }
    };
    let options = purser_aws::AwsOptions {
        cluster_name: args.cluster_name.clone(),
        region,
        interruption_queue_url: args.aws_interruption_queue.clone(),
        kubernetes_version,
        ..purser_aws::AwsOptions::default()
    };
    let clients = purser_aws::Clients::new(&sdk, args.aws_pricing_endpoint_url.as_deref());
    let provider = Arc::new(purser_aws::AwsProvider::new(
        clients,
        options,
        Some(client),
        catalog.to_spec(),
    ));
    let classes = provider.clone();
    tokio::spawn(async move { purser_aws::nodeclasses::run(&classes, NODECLASS_EVERY).await });
    let prices = provider.clone();
    tokio::spawn(async move { prices.run_catalog_refresh(CATALOG_EVERY).await });
    Ok(provider)
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("shutting down");
}
