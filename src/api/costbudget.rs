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
    /// How spend is cut into periods: `Monthly`, `Weekly`, or a cron expression whose firings
    /// start each period (a sprint, e.g. `0 0 1,15 * *`), in UTC. Default Monthly when
    /// `maxPeriodCost` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<String>,
    /// USD the selected pods' allocated cost may add up to over one period; when the forecast
    /// would pass it, the planner's allowed run-rate for the scope drops to what is left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 0.0").message("must not be negative (USD per period)"))]
    pub max_period_cost: Option<f64>,
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
    /// Start of the current period (RFC 3339), when the budget has a period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_start: Option<String>,
    /// End of the current period (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_end: Option<String>,
    /// USD allocated to the covered pods so far in the period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spend_to_date: Option<f64>,
    /// Spend to date plus the run-rate until the period ends (an estimate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forecast: Option<f64>,
    /// The run-rate the planner allows the scope so that the period cap holds (USD per hour).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_run_rate: Option<f64>,
    /// Exceeded, Warning (forecast at 80% of the period cap) and Invalid.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
}

impl_has_conditions!(CostBudgetStatus);
