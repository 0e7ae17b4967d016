//! What the disruption engine reads beyond the planner's model: a NodePool's disruption policy
//! and budgets, pod and node protections, PodDisruptionBudgets and interruption notices.

use serde::{Deserialize, Serialize};

use super::pod::LabelSelector;

/// Why a node is taken away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Reason {
    /// No reschedulable pods for `consolidateAfter`.
    Empty,
    /// Its pods fit more cheaply elsewhere.
    Underutilized,
    /// A GPU node holding only CPU pods.
    GpuIdle,
    /// The NodePool template no longer matches it.
    Drifted,
    /// Older than `expireAfter`.
    Expired,
    /// A spot interruption, rebalance recommendation or scheduled maintenance.
    Interrupted,
}

impl Reason {
    /// Every reason, in the order commands are decided.
    pub const ALL: [Reason; 6] = [
        Reason::Interrupted,
        Reason::Expired,
        Reason::Drifted,
        Reason::Empty,
        Reason::GpuIdle,
        Reason::Underutilized,
    ];

    /// Parse a reason as it is spelled in a budget (`Empty`, `Underutilized`, ...).
    pub fn parse(text: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.as_str() == text)
    }

    /// The reason's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Empty => "Empty",
            Reason::Underutilized => "Underutilized",
            Reason::GpuIdle => "GpuIdle",
            Reason::Drifted => "Drifted",
            Reason::Expired => "Expired",
            Reason::Interrupted => "Interrupted",
        }
    }

    /// True for reasons that disruption budgets limit (interruption and expiry are not limited).
    pub fn is_budgeted(self) -> bool {
        !matches!(self, Reason::Interrupted | Reason::Expired)
    }
}

/// When consolidation may act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConsolidationPolicy {
    /// Only empty nodes are removed.
    WhenEmpty,
    /// Empty nodes are removed and underutilized nodes replaced by cheaper capacity.
    WhenEmptyOrUnderutilized,
}

/// How many nodes a budget allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BudgetNodes {
    /// A fixed count.
    Count(u32),
    /// A percent (0–100) of the pool's nodes, rounded up.
    Percent(u32),
}

impl BudgetNodes {
    /// The number of nodes allowed in a pool of `total` nodes.
    pub fn allowed(self, total: usize) -> usize {
        match self {
            BudgetNodes::Count(n) => n as usize,
            BudgetNodes::Percent(p) => (total * p as usize).div_ceil(100),
        }
    }
}

/// One entry of `spec.disruption.budgets`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DisruptionBudget {
    /// Nodes that may be disrupted at once.
    pub nodes: BudgetNodes,
    /// A cron schedule (UTC) at which the budget becomes active; always active when unset.
    pub schedule: Option<String>,
    /// How long the budget stays active after each schedule hit, in seconds.
    pub duration: Option<i64>,
    /// Reasons the budget applies to; all budgeted reasons when empty.
    pub reasons: Vec<Reason>,
}

/// A NodePool's `spec.disruption` and node lifetime.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DisruptionPolicy {
    /// When consolidation may act.
    pub consolidation_policy: ConsolidationPolicy,
    /// Seconds a node must be empty or stable before consolidation; None is `Never`.
    pub consolidate_after: Option<i64>,
    /// Least saving, in percent of the replaced nodes' cost, worth a consolidation.
    pub min_savings_percent: f64,
    /// Least saving, USD/hour, worth a consolidation.
    pub min_savings_per_hour: f64,
    /// Disruption budgets.
    pub budgets: Vec<DisruptionBudget>,
    /// Node lifetime in seconds (`spec.template.spec.expireAfter`); None is `Never`.
    pub expire_after: Option<i64>,
    /// Launch replacements on a rebalance recommendation (otherwise only interruptions act).
    pub prelaunch_on_rebalance: bool,
}

/// Ten minutes: the Cluster Autoscaler's scale-down-unneeded-time.
pub const DEFAULT_CONSOLIDATE_AFTER: i64 = 600;
/// 720 hours, Karpenter's default node lifetime.
pub const DEFAULT_EXPIRE_AFTER: i64 = 720 * 3600;
/// Karpenter's default budget: 10% of the pool's nodes.
pub const DEFAULT_BUDGET_PERCENT: u32 = 10;
/// Default least saving worth a consolidation, percent.
pub const DEFAULT_MIN_SAVINGS_PERCENT: f64 = 10.0;

impl Default for DisruptionPolicy {
    fn default() -> Self {
        DisruptionPolicy {
            consolidation_policy: ConsolidationPolicy::WhenEmptyOrUnderutilized,
            consolidate_after: Some(DEFAULT_CONSOLIDATE_AFTER),
            min_savings_percent: DEFAULT_MIN_SAVINGS_PERCENT,
            min_savings_per_hour: 0.0,
            budgets: vec![DisruptionBudget {
                nodes: BudgetNodes::Percent(DEFAULT_BUDGET_PERCENT),
                schedule: None,
                duration: None,
                reasons: vec![],
            }],
            expire_after: Some(DEFAULT_EXPIRE_AFTER),
            prelaunch_on_rebalance: false,
        }
    }
}

/// A pod's `do-not-disrupt` annotation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DoNotDisrupt {
    /// Not protected.
    #[default]
    No,
    /// Protected for as long as it runs (`"true"`).
    Always,
    /// Protected for this many seconds after the pod started.
    For(i64),
}

/// An interruption notice for a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum InterruptionKind {
    /// A spot interruption warning (two minutes' notice).
    SpotInterruption,
    /// A rebalance recommendation (elevated interruption risk).
    Rebalance,
    /// Scheduled maintenance (AWS Health scheduled change) or a stop/terminate notice.
    ScheduledChange,
}

impl InterruptionKind {
    /// Parse `spot-interruption`, `rebalance` or `scheduled-change`.
    pub fn parse(text: &str) -> Option<InterruptionKind> {
        match text {
            "spot-interruption" => Some(InterruptionKind::SpotInterruption),
            "rebalance" => Some(InterruptionKind::Rebalance),
            "scheduled-change" => Some(InterruptionKind::ScheduledChange),
            _ => None,
        }
    }
}

/// A PodDisruptionBudget: which pods it covers and how many may be evicted now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PdbInfo {
    /// `namespace/name`.
    pub key: String,
    /// Namespace of the pods it covers.
    pub namespace: String,
    /// Pods covered.
    pub selector: LabelSelector,
    /// Evictions allowed now (`status.disruptionsAllowed`, or computed from the spec).
    pub disruptions_allowed: u32,
}

impl PdbInfo {
    /// Does this PDB cover a pod in `namespace` with `labels`?
    pub fn covers(&self, namespace: &str, labels: &std::collections::BTreeMap<String, String>) -> bool {
        self.namespace == namespace && self.selector.matches(labels)
    }
}

/// Node annotation: the node must not be disrupted voluntarily.
pub const DO_NOT_DISRUPT: &str = "purser.dev/do-not-disrupt";
/// Karpenter's spelling of `DO_NOT_DISRUPT`.
pub const KARPENTER_DO_NOT_DISRUPT: &str = "karpenter.sh/do-not-disrupt";
/// Node annotation: the hash of the NodePool template the node was launched from.
pub const NODEPOOL_HASH: &str = "purser.dev/nodepool-hash";
/// Node annotation: RFC 3339 time of the last pod event on the node (kept by the controller).
pub const LAST_POD_EVENT: &str = "purser.dev/last-pod-event";
/// Node annotation: an interruption notice (`spot-interruption`, `rebalance`, `scheduled-change`).
pub const INTERRUPTION: &str = "purser.dev/interruption";
/// Pod annotation that marks a mirror (static) pod.
pub const MIRROR_POD: &str = "kubernetes.io/config.mirror";
