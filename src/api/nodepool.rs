//! `NodePool`: which nodes Purser may create, with limits, a dollar budget and a capacity mix.
//!
//! In: the user's spec. Out: the status the NodePool controller writes (resources in use, node
//! count, hourly cost, conditions Ready, BudgetExceeded and LimitsExceeded).

#![allow(
    clippy::duplicated_attributes,
    reason = "kube-derive printcolumn attributes repeat their keys by design"
)]

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::condition::{Condition, conditions_schema, impl_has_conditions};
use super::validation::{
    BUDGET_REASONS, CONSOLIDATION_POLICIES, DURATION_OR_NEVER_PATTERN, DURATION_PATTERN, QUALIFIED_NAME_PATTERN,
    label_map_schema, quantity_map, quantity_map_schema,
};
use super::{NodeClassRef, NodeSelectorRequirement, TaintSpec};

/// Desired state of a NodePool.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "purser.dev",
    version = "v1",
    kind = "NodePool",
    doc = "A NodePool: which nodes Purser may create, with limits, a dollar budget and a capacity mix.",
    shortname = "np",
    category = "purser",
    status = "NodePoolStatus",
    printcolumn(
        name = "NodeClass",
        type_ = "string",
        json_path = ".spec.template.spec.nodeClassRef.name"
    ),
    printcolumn(name = "Nodes", type_ = "integer", json_path = ".status.nodes"),
    printcolumn(
        name = "Cost/h",
        type_ = "number",
        json_path = ".status.hourlyCost",
        description = "USD per hour of the pool's nodes"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    printcolumn(name = "Weight", type_ = "integer", json_path = ".spec.weight", priority = 1),
    printcolumn(
        name = "Budget/h",
        type_ = "number",
        json_path = ".spec.budget.maxHourlyCost",
        priority = 1
    ),
    printcolumn(name = "CPU", type_ = "string", json_path = ".status.resources.cpu", priority = 1),
    printcolumn(
        name = "Memory",
        type_ = "string",
        json_path = ".status.resources.memory",
        priority = 1
    )
)]
#[serde(rename_all = "camelCase")]
pub struct NodePoolSpec {
    /// Template for the nodes this pool creates.
    #[serde(default)]
    pub template: NodeClaimTemplate,
    /// Higher weight pools are tried first (1–100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub weight: Option<i32>,
    /// Upper bounds on the pool's total capacity (`cpu`, `memory`, `nvidia.com/gpu`, `nodes`).
    #[serde(
        default,
        deserialize_with = "quantity_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    #[schemars(schema_with = "quantity_map_schema")]
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

/// Observed state of a NodePool.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodePoolStatus {
    /// Capacity of the pool's nodes, registered and in flight, summed per resource (plus `nodes`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resources: BTreeMap<String, String>,
    /// Number of the pool's nodes, registered and in flight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<i64>,
    /// USD per hour of the pool's nodes at their offering prices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hourly_cost: Option<f64>,
    /// Ready, BudgetExceeded and LimitsExceeded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
}

impl_has_conditions!(NodePoolStatus);

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
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateMetadata {
    /// Labels applied to every node of the pool.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "label_map_schema")]
    #[x_kube(
        validation = Rule::new(format!("self.all(k, k.size() <= 316 && k.matches(r'{QUALIFIED_NAME_PATTERN}'))"))
            .message("label keys are qualified names (an optional DNS prefix, a slash, a name)"),
        validation = Rule::new("self.all(k, !(k in ['purser.dev/nodepool', 'karpenter.sh/nodepool']))")
            .message("the nodepool label is set by Purser"),
    )]
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
    #[schemars(length(max = 100))]
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
    #[schemars(pattern(DURATION_OR_NEVER_PATTERN))]
    pub expire_after: Option<String>,
    /// Longest time a node may take to drain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(DURATION_PATTERN))]
    pub termination_grace_period: Option<String>,
}

/// A dollar cap for a pool.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PoolBudget {
    /// USD per hour for all nodes of the pool: existing, in flight and new.
    #[x_kube(validation = Rule::new("self > 0.0").message("must be greater than 0 (USD per hour)"))]
    pub max_hourly_cost: f64,
}

/// The on-demand floor of a pool.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CapacityMix {
    /// Percent (0–100) of the pool's placed pod CPU requests that must be on on-demand nodes.
    #[schemars(range(min = 0, max = 100))]
    pub min_on_demand_percent: f64,
}

/// `spec.disruption`, shaped like Karpenter v1's, plus Purser's savings thresholds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Disruption {
    /// `WhenEmpty` or `WhenEmptyOrUnderutilized` (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = CONSOLIDATION_POLICIES))]
    pub consolidation_policy: Option<String>,
    /// How long a node must be empty or stable before consolidation (`10m` by default, `Never` allowed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(DURATION_OR_NEVER_PATTERN))]
    pub consolidate_after: Option<String>,
    /// Purser: least saving, in percent (0–100) of the replaced nodes' cost, worth a consolidation (10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub min_savings_percent: Option<f64>,
    /// Purser: least saving, USD per hour, worth a consolidation (0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub min_savings_per_hour: Option<f64>,
    /// Limits on how many nodes may be disrupted at once; one `10%` budget when unset, none when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 50))]
    pub budgets: Option<Vec<DisruptionBudgetSpec>>,
    /// Purser: launch replacements on a rebalance recommendation, not only on an interruption.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub prelaunch_on_rebalance: bool,
}

/// One disruption budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.schedule) == has(self.duration)").message("schedule and duration go together")
)]
pub struct DisruptionBudgetSpec {
    /// Nodes that may be disrupted at once: a count (`"5"`) or a percent of the pool (`"10%"`).
    #[serde(default = "default_budget_nodes")]
    #[schemars(pattern(BUDGET_NODES_PATTERN))]
    pub nodes: String,
    /// A cron schedule (UTC) at which the budget becomes active; always active when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// How long the budget stays active after each schedule hit (required with `schedule`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(DURATION_PATTERN))]
    pub duration: Option<String>,
    /// Reasons it applies to (`Empty`, `Underutilized`, `GpuIdle`, `Drifted`, `Expired`); all when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "budget_reasons_schema")]
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

/// The reasons a budget may name.
fn budget_reasons_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "nullable": true,
        "items": {"type": "string", "enum": BUDGET_REASONS},
    })
}

/// A count of nodes or a percent from 0% to 100%.
const BUDGET_NODES_PATTERN: &str = "^((100|[0-9]{1,2})%|[0-9]+)$";

fn default_budget_nodes() -> String {
    "10%".into()
}
