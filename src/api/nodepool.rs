//! `NodePool`: which nodes Purser may create, with limits, a dollar budget and a capacity mix.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{NodeClassRef, NodeSelectorRequirement, TaintSpec};

/// Desired state of a NodePool.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(group = "purser.dev", version = "v1", kind = "NodePool", shortname = "np")]
#[serde(rename_all = "camelCase")]
pub struct NodePoolSpec {
    /// Template for the nodes this pool creates.
    #[serde(default)]
    pub template: NodeClaimTemplate,
    /// Higher weight pools are tried first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
    /// Upper bounds on the pool's total capacity (`cpu`, `memory`, `nvidia.com/gpu`, `nodes`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: BTreeMap<String, String>,
    /// Disruption settings (used by the disruption engine).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disruption: Option<Disruption>,
    /// Purser: a dollar cap on the pool's hourly run-rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<PoolBudget>,
    /// Purser: the share of placed pod CPU that must run on on-demand capacity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_mix: Option<CapacityMix>,
}

/// The node template of a pool.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeClaimTemplate {
    /// Labels and annotations every node gets.
    #[serde(default)]
    pub metadata: TemplateMetadata,
    /// Requirements, taints and the NodeClass.
    #[serde(default)]
    pub spec: NodeClaimTemplateSpec,
}

/// Template metadata.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateMetadata {
    /// Labels applied to every node of the pool.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations applied to every node of the pool.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Template spec.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeClaimTemplateSpec {
    /// Requirements on well-known and custom labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requirements: Vec<NodeSelectorRequirement>,
    /// Taints every node carries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taints: Vec<TaintSpec>,
    /// Taints present only while the node starts; ignored for fit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub startup_taints: Vec<TaintSpec>,
    /// The provider NodeClass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_class_ref: Option<NodeClassRef>,
    /// Node lifetime (`720h` by default, `Never` allowed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_after: Option<String>,
    /// Longest time a node may take to drain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_grace_period: Option<String>,
}

/// A dollar cap for a pool.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PoolBudget {
    /// USD per hour for all nodes of the pool: existing, in flight and new.
    pub max_hourly_cost: f64,
}

/// The on-demand floor of a pool.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CapacityMix {
    /// Percent (0–100) of the pool's placed pod CPU requests that must be on on-demand nodes.
    pub min_on_demand_percent: f64,
}

/// `spec.disruption`, shaped like Karpenter v1's, plus Purser's savings thresholds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Disruption {
    /// `WhenEmpty` or `WhenEmptyOrUnderutilized` (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consolidation_policy: Option<String>,
    /// How long a node must be empty or stable before consolidation (`10m` by default, `Never` allowed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consolidate_after: Option<String>,
    /// Purser: least saving, in percent (0–100) of the replaced nodes' cost, worth a consolidation (10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_savings_percent: Option<f64>,
    /// Purser: least saving, USD per hour, worth a consolidation (0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_savings_per_hour: Option<f64>,
    /// Limits on how many nodes may be disrupted at once; one `10%` budget when unset, none when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budgets: Option<Vec<DisruptionBudgetSpec>>,
    /// Purser: launch replacements on a rebalance recommendation, not only on an interruption.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub prelaunch_on_rebalance: bool,
}

/// One disruption budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DisruptionBudgetSpec {
    /// Nodes that may be disrupted at once: a count (`"5"`) or a percent of the pool (`"10%"`).
    #[serde(default = "default_budget_nodes")]
    pub nodes: String,
    /// A cron schedule (UTC) at which the budget becomes active; always active when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// How long the budget stays active after each schedule hit (required with `schedule`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// Reasons it applies to (`Empty`, `Underutilized`, `GpuIdle`, `Drifted`, `Expired`); all when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasons: Option<Vec<String>>,
}

impl Default for DisruptionBudgetSpec {
    fn default() -> Self {
        DisruptionBudgetSpec {
            nodes: default_budget_nodes(),
            schedule: None,
            duration: None,
            reasons: None,
        }
    }
}

fn default_budget_nodes() -> String {
    "10%".into()
}
