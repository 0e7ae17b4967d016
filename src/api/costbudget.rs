//! `CostBudget`: a dollar cap on the hourly cost allocated to a set of pods.
//!
//! In: the user's spec. Out: the CostBudget controller's status: the covered pods' current
//! run-rate and condition Exceeded.

#![allow(
    clippy::duplicated_attributes,
    reason = "kube-derive printcolumn attributes repeat their keys by design"
)]

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::condition::{Condition, conditions_schema, impl_has_conditions};

/// Desired state of a CostBudget.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "purser.dev",
    version = "v1",
    kind = "CostBudget",
    doc = "A CostBudget: a dollar cap on the hourly cost allocated to a set of pods.",
    shortname = "cb",
    category = "purser",
    status = "CostBudgetStatus",
    printcolumn(name = "Max/h", type_ = "number", json_path = ".spec.maxHourlyCost"),
    printcolumn(
        name = "Run-rate/h",
        type_ = "number",
        json_path = ".status.runRate",
        description = "USD per hour allocated to the covered pods now"
    ),
    printcolumn(
        name = "Exceeded",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Exceeded\")].status"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct CostBudgetSpec {
    /// Which pods the budget covers.
    #[serde(default)]
    pub selector: BudgetSelector,
    /// USD per hour the selected pods' allocated cost may not exceed.
    #[x_kube(validation = Rule::new("self >= 0.0").message("must not be negative (USD per hour)"))]
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

/// Observed state of a CostBudget.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CostBudgetStatus {
    /// USD per hour allocated to the covered pods now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_rate: Option<f64>,
    /// Number of pods the budget covers now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods: Option<i64>,
    /// Exceeded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
}

impl_has_conditions!(CostBudgetStatus);
