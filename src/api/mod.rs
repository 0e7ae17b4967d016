//! Purser's custom resources (`purser.dev/v1`, all cluster-scoped): NodePool, NodeClaim,
//! NodeClass and CostBudget, shaped like Karpenter's `karpenter.sh/v1` objects so users
//! recognise them, with status conditions and the validation the API server applies.
//!
//! In: objects as the API server or a file holds them. Out: typed specs and statuses; the
//! engine's readers (`model::load`) turn them into its own types with errors naming the field.

pub mod condition;
pub mod costbudget;
pub mod crds;
pub mod nodeclaim;
pub mod nodeclass;
pub mod nodepool;
pub mod validation;

pub use condition::{Condition, ConditionStatus, HasConditions, conditions, reasons};
pub use costbudget::{CostBudget, CostBudgetSpec, CostBudgetStatus};
pub use nodeclaim::{NodeClaim, NodeClaimSpec, NodeClaimStatus};
pub use nodeclass::{NodeClass, NodeClassSpec, NodeClassStatus};
pub use nodepool::{NodePool, NodePoolSpec, NodePoolStatus};

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use validation::{DNS_SUBDOMAIN_PATTERN, LABEL_VALUE_PATTERN, OPERATORS, QUALIFIED_NAME_PATTERN, TAINT_EFFECTS};

/// The API group of every Purser resource.
pub const GROUP: &str = "purser.dev";
/// The label naming the NodePool of a NodeClaim and its Node.
pub const NODEPOOL_LABEL: &str = "purser.dev/nodepool";

/// A node selector requirement (Karpenter adds `minValues`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!(self.operator in ['In', 'NotIn']) || (has(self.values) && size(self.values) > 0)")
        .message("operators In and NotIn need at least one value"),
    validation = Rule::new("!(self.operator in ['Exists', 'DoesNotExist']) || !has(self.values) || size(self.values) == 0")
        .message("operators Exists and DoesNotExist take no values"),
    validation = Rule::new("!(self.operator in ['Gt', 'Lt']) || (has(self.values) && size(self.values) == 1 && self.values[0].matches('^-?[0-9]+$'))")
        .message("operators Gt and Lt need exactly one integer value"),
    validation = Rule::new("!has(self.minValues) || self.operator != 'In' || (has(self.values) && size(self.values) >= self.minValues)")
        .message("minValues must not exceed the number of values of an In requirement"),
    validation = Rule::new("!(self.key in ['purser.dev/capacity-type', 'karpenter.sh/capacity-type']) || !has(self.values) || self.values.all(v, v in ['on-demand', 'spot', 'reserved'])")
        .message("capacity type values are on-demand, spot or reserved"),
)]
pub struct NodeSelectorRequirement {
    /// Label key.
    #[schemars(length(min = 1, max = 316), pattern(QUALIFIED_NAME_PATTERN))]
    pub key: String,
    /// In, NotIn, Exists, DoesNotExist, Gt or Lt.
    #[schemars(extend("enum" = OPERATORS))]
    pub operator: String,
    /// Values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1000), inner(length(max = 63), pattern(LABEL_VALUE_PATTERN)))]
    pub values: Vec<String>,
    /// Minimum number of distinct values the launch must be able to choose from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 50))]
    pub min_values: Option<u32>,
}

/// A taint in a NodePool template or a NodeClaim.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaintSpec {
    /// Key.
    #[schemars(length(min = 1, max = 316), pattern(QUALIFIED_NAME_PATTERN))]
    pub key: String,
    /// Value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63), pattern(LABEL_VALUE_PATTERN))]
    pub value: Option<String>,
    /// NoSchedule, PreferNoSchedule or NoExecute.
    #[schemars(extend("enum" = TAINT_EFFECTS))]
    pub effect: String,
}

/// A reference to the provider-specific NodeClass.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeClassRef {
    /// API group of the NodeClass (`purser.dev`).
    #[serde(default)]
    pub group: String,
    /// Kind of the NodeClass (`NodeClass`).
    #[serde(default)]
    pub kind: String,
    /// Name of the NodeClass.
    #[schemars(length(min = 1, max = 253), pattern(DNS_SUBDOMAIN_PATTERN))]
    pub name: String,
}
