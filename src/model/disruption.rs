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
/// Node label: the node finished initialization (set by the controller).
pub const INITIALIZED: &str = "purser.dev/initialized";
/// Karpenter's spelling of `INITIALIZED`.
pub const KARPENTER_INITIALIZED: &str = "karpenter.sh/initialized";
/// The value of `consolidateAfter` and `expireAfter` that turns the timer off.
pub const NEVER: &str = "Never";

/// Parse a Go-style duration made of whole `h`, `m` and `s` parts (`90s`, `30m`, `1h30m`) into
/// seconds; `0` alone is zero. Signs, fractions, other units, spaces and empty text are rejected.
pub fn parse_go_duration(text: &str) -> Option<i64> {
    if text == "0" {
        return Some(0);
    }
    let mut rest = text;
    let mut total: i64 = 0;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let number: i64 = rest[..digits].parse().ok()?;
        let scale = match rest[digits..].chars().next()? {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return None,
        };
        total = total.checked_add(number.checked_mul(scale)?)?;
        rest = &rest[digits + 1..];
    }
    (!text.is_empty()).then_some(total)
}

/// Parse a duration that may be `Never`: `Some(None)` for `Never`, `Some(Some(seconds))` for a
/// duration, `None` when the text is neither.
pub fn parse_duration_or_never(text: &str) -> Option<Option<i64>> {
    if text == NEVER {
        Some(None)
    } else {
        parse_go_duration(text).map(Some)
    }
}

/// Parse a budget's `nodes`: a count (`"5"`) or a percent from 0% to 100% (`"10%"`).
pub fn parse_budget_nodes(text: &str) -> Option<BudgetNodes> {
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match text.strip_suffix('%') {
        Some(p) if all_digits(p) => p.parse().ok().filter(|p| *p <= 100).map(BudgetNodes::Percent),
        Some(_) => None,
        None if all_digits(text) => text.parse().ok().map(BudgetNodes::Count),
        None => None,
    }
}

/// Parse a pod's `do-not-disrupt` annotation: `true`, `false` or a duration such as `30m`.
pub fn parse_do_not_disrupt(text: &str) -> Option<DoNotDisrupt> {
    match text {
        "true" => Some(DoNotDisrupt::Always),
        "false" => Some(DoNotDisrupt::No),
        _ => parse_go_duration(text).map(DoNotDisrupt::For),
    }
}

/// Parse `WhenEmpty` or `WhenEmptyOrUnderutilized`.
pub fn parse_consolidation_policy(text: &str) -> Option<ConsolidationPolicy> {
    match text {
        "WhenEmpty" => Some(ConsolidationPolicy::WhenEmpty),
        "WhenEmptyOrUnderutilized" => Some(ConsolidationPolicy::WhenEmptyOrUnderutilized),
        _ => None,
    }
}

/// The reasons a budget may name (every reason except `Interrupted`).
pub const BUDGET_REASONS: [Reason; 5] = [
    Reason::Empty,
    Reason::Underutilized,
    Reason::GpuIdle,
    Reason::Drifted,
    Reason::Expired,
];

/// Parse a reason a budget may name (see [`BUDGET_REASONS`]).
pub fn parse_budget_reason(text: &str) -> Option<Reason> {
    BUDGET_REASONS.into_iter().find(|r| r.as_str() == text)
}

/// 64-bit FNV-1a hash of `bytes` (the same on every machine and build).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET, |hash, b| (hash ^ u64::from(*b)).wrapping_mul(PRIME))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        for (text, seconds) in [
            ("90s", 90),
            ("30m", 1800),
            ("2h", 7200),
            ("1h30m", 5400),
            ("1h0m5s", 3605),
            ("0", 0),
        ] {
            assert_eq!(parse_go_duration(text), Some(seconds), "{text}");
        }
        for text in [
            "",
            "-5m",
            "+5m",
            "1.5h",
            "5",
            "m",
            "5d",
            "500ms",
            "1h 30m",
            " 5m",
            "99999999999999999999h",
        ] {
            assert_eq!(parse_go_duration(text), None, "{text}");
        }
        assert_eq!(parse_duration_or_never("Never"), Some(None));
        assert_eq!(parse_duration_or_never("never"), None);
    }

    #[test]
    fn budget_nodes() {
        assert_eq!(parse_budget_nodes("5"), Some(BudgetNodes::Count(5)));
        assert_eq!(parse_budget_nodes("0"), Some(BudgetNodes::Count(0)));
        assert_eq!(parse_budget_nodes("100%"), Some(BudgetNodes::Percent(100)));
        assert_eq!(parse_budget_nodes("0%"), Some(BudgetNodes::Percent(0)));
        for text in ["150%", "-1", "", "%", "5.5", "ten", " 5", "-1%", "99999999999"] {
            assert_eq!(parse_budget_nodes(text), None, "{text}");
        }
    }

    #[test]
    fn do_not_disrupt_values() {
        assert_eq!(parse_do_not_disrupt("true"), Some(DoNotDisrupt::Always));
        assert_eq!(parse_do_not_disrupt("false"), Some(DoNotDisrupt::No));
        assert_eq!(parse_do_not_disrupt("1h30m"), Some(DoNotDisrupt::For(5400)));
        assert_eq!(parse_do_not_disrupt("yes"), None);
    }

    #[test]
    fn budget_reasons_exclude_interrupted() {
        assert_eq!(parse_budget_reason("GpuIdle"), Some(Reason::GpuIdle));
        assert_eq!(parse_budget_reason("Interrupted"), None);
    }

    #[test]
    fn fnv1a64_known_values() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }
}
