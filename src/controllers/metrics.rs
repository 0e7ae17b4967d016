//! Prometheus metrics of the controller (prometheus-client; no global registry).
//!
//! In: what the loops observe (pending pods, plans, launches, evictions, errors) and, every few
//! seconds, the nodes and prices in the cache. Out: the text exposition `/metrics` serves.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::solver::Plan;

/// Labels of per-pool node counts.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolCapacity {
    /// NodePool.
    pub nodepool: String,
    /// `spot` or `on-demand`.
    pub capacity_type: String,
}

/// Labels of per-pool values.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabel {
    /// NodePool.
    pub nodepool: String,
}

/// Labels of error counts.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// Dotted controller name.
    pub controller: String,
    /// Error kind.
    pub error: String,
}

/// Every metric the controller exports.
pub struct Metrics {
    /// Pods waiting for a node.
    pub pods_pending: Gauge,
    /// Provisioning decisions made.
    pub decisions: Counter,
    /// Planner wall time per decision.
    pub planner_seconds: Histogram,
    /// Seconds from a batch closing to its NodeClaims created.
    pub provisioning_seconds: Histogram,
    /// Nodes by pool and capacity type.
    pub nodes: Family<PoolCapacity, Gauge>,
    /// Hourly list price of each pool's nodes, USD.
    pub hourly_cost: Family<PoolLabel, Gauge<f64, AtomicU64>>,
    /// Instances launched.
    pub launches: Counter,
    /// Pods evicted.
    pub evictions: Counter,
    /// Disruption commands started.
    pub disruptions: Counter,
    /// Leaked instances terminated.
    pub leaked: Counter,
    /// Errors by controller and kind.
    pub errors: Family<ErrorLabels, Counter>,
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("purser");
        let m = Metrics {
            pods_pending: Gauge::default(),
            decisions: Counter::default(),
            planner_seconds: Histogram::new(exponential_buckets(0.005, 2.0, 12)),
            provisioning_seconds: Histogram::new(exponential_buckets(0.01, 2.0, 12)),
            nodes: Family::default(),
            hourly_cost: Family::default(),
            launches: Counter::default(),
            evictions: Counter::default(),
            disruptions: Counter::default(),
            leaked: Counter::default(),
            errors: Family::default(),
            registry: Registry::default(),
        };
        registry.register("pods_pending", "Pods waiting for a node", m.pods_pending.clone());
        registry.register("decisions", "Provisioning decisions made", m.decisions.clone());
        registry.register(
            "planner_seconds",
            "Planner wall time per decision",
            m.planner_seconds.clone(),
        );
        registry.register(
            "provisioning_seconds",
            "Seconds from a batch closing to its NodeClaims created",
            m.provisioning_seconds.clone(),
        );
        registry.register("nodes", "Nodes by NodePool and capacity type", m.nodes.clone());
        registry.register(
            "nodepool_hourly_cost",
            "Hourly list price of a NodePool's nodes, USD",
            m.hourly_cost.clone(),
        );
        registry.register("launches", "Instances launched", m.launches.clone());
        registry.register("evictions", "Pods evicted", m.evictions.clone());
        registry.register(
            "disruption_commands",
            "Disruption commands started",
            m.disruptions.clone(),
        );
        registry.register(
            "leaked_instances_terminated",
            "Leaked instances terminated",
            m.leaked.clone(),
        );
        registry.register("errors", "Errors by controller and kind", m.errors.clone());
        Metrics { registry, ..m }
    }
}

impl Metrics {
    /// Record one planning decision.
    pub fn observe_plan(&self, plan: &Plan) {
        self.decisions.inc();
        self.planner_seconds.observe(plan.solver.seconds);
    }

    /// Count an error of `controller`.
    pub fn error(&self, controller: &str, error: &super::Error) {
        self.errors
            .get_or_create(&ErrorLabels {
                controller: controller.into(),
                error: error.metric_label().into(),
            })
            .inc();
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
