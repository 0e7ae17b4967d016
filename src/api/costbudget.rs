//! `CostBudget`: a dollar cap on the hourly cost allocated to a set of pods.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Desired state of a CostBudget.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(group = "purser.dev", version = "v1", kind = "CostBudget", shortname = "cb")]
#[serde(rename_all = "camelCase")]
pub struct CostBudgetSpec {
    /// Which pods the budget covers.
    #[serde(default)]
    pub selector: BudgetSelector,
    /// USD per hour the selected pods' allocated cost may not exceed.
    pub max_hourly_cost: f64,
}

/// The scope of a budget: namespaces and/or a pod label selector (both must match when both are set).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BudgetSelector {
    /// Namespaces; empty means every namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// A pod label selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_selector: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>,
}
