//! The controller: Purser as the cluster's autoscaler, on kube-rs.
//!
//! In: the API server's Pods, Nodes, DaemonSets, PodDisruptionBudgets and Purser's NodePools,
//! NodeClaims and CostBudgets (watched into reflector stores by [`cluster`]), and a cloud behind
//! the [`CloudProvider`] trait. Out: NodeClaims (from the engine's plans), instances, Node
//! labels and taints, evictions, Events, status conditions and Prometheus metrics.
//!
//! ```text
//!  watch ──► cluster::ClusterState ──► snapshot::build ──► solver::plan ─────► provisioning (NodeClaims, Events)
//!                                                    └──► disruption::decide ─► termination (replace, taint, delete)
//!  NodeClaim ──► nodeclaim::reconcile: launch ► register ► initialize │ finalizer: drain ► terminate
//!  cloud.list ──► gc: leaked instances terminated after a grace period
//!  cloud.interruptions ──► interruption: Node annotated purser.dev/interruption ──► disruption
//! ```
//! Every decision comes from the same engine `purser plan` and the simulator call. The loops run
//! only on the replica that holds the Lease ([`leader`]); probes and metrics run on every replica.

pub mod budgets;
pub mod claims;
pub mod cluster;
pub mod conditions;
pub mod cost_metrics;
pub mod disruption;
pub mod events;
pub mod gc;
pub mod http;
pub mod interruption;
pub mod leader;
pub mod metrics;
pub mod nodeclaim;
pub mod nominated;
pub mod provisioning;
pub mod refresh;
pub mod showback;
pub mod snapshot;
pub mod status;
pub mod unavailable;

use std::sync::Arc;
use std::time::Duration;

use purser_cloudprovider::CloudProvider;
use thiserror::Error;
use tokio::sync::Notify;

use crate::catalog::Catalog;

/// Finalizer that keeps a NodeClaim until its instance is terminated.
pub const TERMINATION_FINALIZER: &str = "purser.dev/termination";
/// Label on a Node (and its claim's objects) naming the NodeClaim it belongs to.
pub const NODECLAIM_LABEL: &str = "purser.dev/nodeclaim";
/// Taint a node carries from joining until the controller registers it.
pub const UNREGISTERED_TAINT: &str = crate::model::load::UNREGISTERED_TAINT;
/// Taint on a node being drained by a disruption command.
pub const DISRUPTED_TAINT: &str = "purser.dev/disrupted";
/// Label set on a Node once its claim is initialized.
pub const INITIALIZED_LABEL: &str = "purser.dev/initialized";
/// Field manager and event reporter name.
pub const MANAGER: &str = "purser";

/// Controller settings (flags and environment variables, see `purser controller --help`).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Provisioning batch closes after this long without a new pending pod.
    pub batch_idle: Duration,
    /// Provisioning batch closes at the latest after this long.
    pub batch_max: Duration,
    /// Planner time limit per provisioning pass.
    pub plan_time_limit: Duration,
    /// Planning algorithm (the ILP; FFD is Karpenter's, kept as a baseline).
    pub strategy: crate::solver::Strategy,
    /// A launched claim whose Node has not registered after this long is deleted.
    pub registration_ttl: Duration,
    /// How long an offering stays unavailable after a launch failed for lack of capacity.
    pub unavailable_for: Duration,
    /// How often the disruption engine runs (zero disables disruption).
    pub disruption_interval: Duration,
    /// How often the cloud's catalog is read into the planner's (zero: never; the catalog
    /// given at start-up serves).
    pub catalog_refresh: Duration,
    /// How often the leaked-instance collector runs.
    pub gc_interval: Duration,
    /// How often NodePool and CostBudget status (and the budget ledgers) are refreshed.
    pub status_interval: Duration,
    /// An instance with no NodeClaim is terminated once it has been seen leaked this long.
    pub leak_grace: Duration,
    /// Longest drain before a node's instance is terminated anyway.
    pub termination_grace: Duration,
    /// Expected cost of one spot interruption, in hours of on-demand price.
    pub spot_rework_hours: f64,
    /// This replica's identity for leader election and events.
    pub identity: String,
    /// Namespace of the leader-election Lease.
    pub lease_namespace: String,
    /// Name of the leader-election Lease.
    pub lease_name: String,
    /// Lease duration: a leader that stops renewing is replaced after this long.
    pub lease_duration: Duration,
    /// Run without leader election (a single replica).
    pub leader_elect: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            batch_idle: Duration::from_secs(1),
            batch_max: Duration::from_secs(10),
            plan_time_limit: Duration::from_secs(1),
            strategy: crate::solver::Strategy::Ilp,
            registration_ttl: Duration::from_secs(15 * 60),
            unavailable_for: Duration::from_secs(180),
            disruption_interval: Duration::from_secs(10),
            catalog_refresh: Duration::ZERO,
            gc_interval: Duration::from_secs(30),
            status_interval: Duration::from_secs(5),
            leak_grace: Duration::from_secs(300),
            termination_grace: Duration::from_secs(600),
            spot_rework_hours: 1.0,
            identity: "purser".into(),
            lease_namespace: "purser".into(),
            lease_name: "purser-controller".into(),
            lease_duration: Duration::from_secs(10),
            leader_elect: true,
        }
    }
}

/// Errors of the controller's loops; each has a short label for metrics.
#[derive(Debug, Error)]
pub enum Error {
    /// The API server answered with an error or could not be reached.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The cloud provider failed.
    #[error(transparent)]
    Cloud(#[from] purser_cloudprovider::CloudError),
    /// An object could not be encoded or decoded.
    #[error("encoding: {0}")]
    Json(#[from] serde_json::Error),
    /// The finalizer helper failed.
    #[error("finalizer: {0}")]
    Finalizer(String),
    /// Leadership was lost; the process must end.
    #[error("lost the leader lease {0}")]
    LostLease(String),
    /// Any other failure, said in words.
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// Short label for the `purser_errors_total` metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::Cloud(_) => "cloud",
            Error::Json(_) => "json",
            Error::Finalizer(_) => "finalizer",
            Error::LostLease(_) => "lease",
            Error::Other(_) => "other",
        }
    }
}

/// What every loop shares.
pub struct Context {
    /// API client.
    pub client: kube::Client,
    /// The cloud.
    pub cloud: Arc<dyn CloudProvider>,
    /// Instance types and prices the planner uses (replaced when the cloud's catalog changes).
    catalog: std::sync::RwLock<Arc<Catalog>>,
    /// Settings.
    pub settings: Settings,
    /// Watched objects.
    pub cluster: cluster::ClusterState,
    /// Offerings that failed to launch recently.
    pub unavailable: unavailable::Unavailable,
    /// Metrics.
    pub metrics: Arc<metrics::Metrics>,
    /// Which object versions load (cached).
    pub validator: snapshot::Validator,
    /// Pools without a NodeClass and problems already reported.
    pub findings: status::Findings,
    /// True once the watch caches are synced (`/readyz`).
    pub ready: Arc<std::sync::atomic::AtomicBool>,
    /// The latest provisioning plans (at most 16), newest last.
    pub plans: std::sync::Mutex<Vec<crate::solver::Plan>>,
    /// Event publisher.
    pub events: events::Events,
    /// Claims created but not yet seen in the watch cache, so a pass never launches twice.
    pub recent_claims: claims::RecentClaims,
    /// Wakes the provisioning loop (pending pods changed, a claim went away).
    pub provision: Arc<Notify>,
    /// Nodes a disruption command is working on (never two commands on one node).
    pub busy: disruption::Busy,
    /// Nodes and claims pods were just nominated to, kept out of disruption for a while.
    pub nominated: nominated::Nominated,
}

impl Context {
    /// A context over `client` and `cloud`; starts the watches.
    pub fn new(client: kube::Client, cloud: Arc<dyn CloudProvider>, catalog: Catalog, settings: Settings) -> Arc<Self> {
        let provision = Arc::new(Notify::new());
        let cluster = cluster::ClusterState::start(client.clone(), provision.clone());
        Arc::new(Context {
            events: events::Events::new(client.clone(), &settings.identity),
            client,
            cloud,
            catalog: std::sync::RwLock::new(Arc::new(catalog)),
            cluster,
            unavailable: unavailable::Unavailable::default(),
            metrics: Arc::new(metrics::Metrics::default()),
            validator: snapshot::Validator::default(),
            findings: status::Findings::default(),
            ready: Arc::default(),
            plans: std::sync::Mutex::default(),
            recent_claims: claims::RecentClaims::default(),
            provision,
            busy: disruption::Busy::default(),
            nominated: nominated::Nominated::default(),
            settings,
        })
    }

    /// The snapshot every loop plans from: what loads, with claims just created added and
    /// pools whose NodeClass is missing left out.
    pub fn snapshot(&self) -> snapshot::Built {
        let known = |name: &str| {
            self.cluster
                .claims
                .find(|c| c.metadata.name.as_deref() == Some(name))
                .is_some()
        };
        let extra = self.recent_claims.missing_from(&known);
        let mut built = snapshot::build(&self.cluster, &self.catalog(), &self.validator, extra);
        if let Ok(without) = self.findings.pools_without_class.lock() {
            built.snapshot.pools.retain(|p| !without.contains(&p.name));
        }
        built
    }

    /// The catalog the planner uses now.
    pub fn catalog(&self) -> Arc<Catalog> {
        match self.catalog.read() {
            Ok(c) => c.clone(),
            Err(e) => e.into_inner().clone(),
        }
    }

    /// Plan with `catalog` from now on.
    pub fn set_catalog(&self, catalog: Catalog) {
        let mut slot = self.catalog.write().unwrap_or_else(|e| e.into_inner());
        *slot = Arc::new(catalog);
    }

    /// The latest provisioning plans, oldest first.
    pub fn decisions(&self) -> Vec<crate::solver::Plan> {
        self.plans.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// Report objects that do not load (see [`status::report_invalid`]).
    pub async fn report_invalid(&self, invalid: &[snapshot::Invalid]) {
        status::report_invalid(self, invalid).await;
    }
}

/// Run the controller until shutdown (`shutdown` resolves) or until leadership is lost.
pub async fn run(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let shutdown = futures::FutureExt::shared(Box::pin(shutdown));
    ctx.cluster.wait_ready().await;
    ctx.ready.store(true, std::sync::atomic::Ordering::Relaxed);
    let lead = tokio::select! {
        lead = leader::acquire(&ctx) => lead?,
        _ = shutdown.clone() => return Ok(()),
    };
    tracing::info!(identity = %ctx.settings.identity, "leading: starting the controller loops");
    disruption::clear_stale_taints(&ctx).await;
    let loops = async {
        tokio::select! {
            r = provisioning::run(ctx.clone()) => r,
            r = nodeclaim::run(ctx.clone()) => r,
            r = disruption::run(ctx.clone()) => r,
            r = gc::run(ctx.clone()) => r,
            r = status::run(ctx.clone()) => r,
            r = interruption::run(ctx.clone()) => r,
            r = refresh::run(ctx.clone()) => r,
        }
    };
    let result = tokio::select! {
        r = loops => r,
        r = lead.lost() => r,
        _ = shutdown.clone() => Ok(()),
    };
    lead.release().await;
    result
}
