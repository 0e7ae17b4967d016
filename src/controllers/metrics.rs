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

/// Labels of per-budget values.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BudgetLabel {
    /// CostBudget.
    pub budget: String,
}

/// Labels of a budget's change of standing.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BudgetTransition {
    /// CostBudget.
    pub budget: String,
    /// The standing it moved to: `Within`, `Warning` or `Exceeded`.
    pub to: String,
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
    /// USD per hour allocated to each budget's scope now.
    pub budget_run_rate: Family<BudgetLabel, Gauge<f64, AtomicU64>>,
    /// Each budget's hourly cap as the planner applies it, USD per hour.
    pub budget_hourly_cap: Family<BudgetLabel, Gauge<f64, AtomicU64>>,
    /// Each budget's period cap, USD.
    pub budget_period_cap: Family<BudgetLabel, Gauge<f64, AtomicU64>>,
    /// USD spent in each budget's current period.
    pub budget_spend: Family<BudgetLabel, Gauge<f64, AtomicU64>>,
    /// Forecast spend for each budget's period, USD (an estimate).
    pub budget_forecast: Family<BudgetLabel, Gauge<f64, AtomicU64>>,
    /// Changes of a budget's standing (Within, Warning, Exceeded).
    pub budget_transitions: Family<BudgetTransition, Counter>,
    /// OpenCost-compatible node and container cost, and Purser's allocation and idle cost.
    pub cost: super::cost_metrics::CostMetrics,
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut root = Registry::default();
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
            budget_run_rate: Family::default(),
            budget_hourly_cap: Family::default(),
            budget_period_cap: Family::default(),
            budget_spend: Family::default(),
            budget_forecast: Family::default(),
            budget_transitions: Family::default(),
            cost: super::cost_metrics::CostMetrics::default(),
            registry: Registry::default(),
        };
        m.cost.register(&mut root);
        let registry = root.sub_registry_with_prefix("purser");
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
        registry.register(
            "budget_run_rate_usd_per_hour",
            "USD per hour allocated to a CostBudget's scope now",
            m.budget_run_rate.clone(),
        );
        registry.register(
            "budget_hourly_cap_usd_per_hour",
            "A CostBudget's hourly cap as the planner applies it",
            m.budget_hourly_cap.clone(),
        );
        registry.register(
            "budget_period_cap_usd",
            "A CostBudget's cap for one period",
            m.budget_period_cap.clone(),
        );
        registry.register(
            "budget_spend_usd",
            "USD allocated to a CostBudget's scope so far in its period",
            m.budget_spend.clone(),
        );
        registry.register(
            "budget_forecast_usd",
            "Forecast spend of a CostBudget's period (an estimate: spend plus run-rate until the end)",
            m.budget_forecast.clone(),
        );
        registry.register(
            "budget_transitions",
            "Changes of a CostBudget's standing (Within, Warning, Exceeded)",
            m.budget_transitions.clone(),
        );
        Metrics { registry: root, ..m }
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
