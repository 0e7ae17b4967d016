//! Purser's custom resources (`purser.dev/v1`): NodePool, NodeClaim and CostBudget, shaped like
//! Karpenter's `karpenter.sh/v1` objects so users recognise them.

pub mod costbudget;
pub mod nodeclaim;
pub mod nodepool;

pub use costbudget::{CostBudget, CostBudgetSpec};
pub use nodeclaim::{NodeClaim, NodeClaimSpec};
pub use nodepool::{NodePool, NodePoolSpec};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A node selector requirement (Karpenter adds `minValues`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeSelectorRequirement {
    /// Label key.
    pub key: String,
    /// In, NotIn, Exists, DoesNotExist, Gt or Lt.
    pub operator: String,
    /// Values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    /// Minimum number of distinct values the launch must be able to choose from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_values: Option<u32>,
}

/// A taint in a NodePool template.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaintSpec {
    /// Key.
    pub key: String,
    /// Value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// NoSchedule, PreferNoSchedule or NoExecute.
    pub effect: String,
}

/// A reference to the provider-specific NodeClass.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeClassRef {
    /// API group of the NodeClass.
    #[serde(default)]
    pub group: String,
    /// Kind of the NodeClass.
    #[serde(default)]
    pub kind: String,
    /// Name of the NodeClass.
    pub name: String,
}
