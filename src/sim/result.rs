//! What a simulation produces: KPIs per policy and an hourly timeline.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The scorecard of one policy over the whole run. Money in USD, times in seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Kpis {
    /// Total node spend.
    pub total_spend: f64,
    /// Spend by capacity type (`on-demand`, `spot`).
    pub spend_by_capacity_type: BTreeMap<String, f64>,
    /// Spend allocated to each team (pod requests × node unit prices; idle capacity is under
    /// `idle`).
    pub spend_by_team: BTreeMap<String, f64>,
    /// GPU-hours requested by running pods ÷ GPU-hours of nodes paid for (0–1).
    pub gpu_allocation: f64,
    /// GPU-hours busy ÷ GPU-hours paid for (0–1): requested GPUs weighted by the share of time
    /// their work keeps them busy (training: the scenario's `gpuBusy`; inference: the share of
    /// replica capacity the load takes; notebooks: 0).
    pub gpu_utilisation: f64,
    /// Mean share of node CPU requested by pods (0–1), weighted by node-hours.
    pub cpu_allocation: f64,
    /// Mean share of node memory requested by pods (0–1), weighted by node-hours.
    pub memory_allocation: f64,
    /// Training jobs queued before they first ran: p50, seconds.
    pub training_queue_p50_seconds: f64,
    /// Training queue time p95, seconds.
    pub training_queue_p95_seconds: f64,
    /// Training jobs finished.
    pub training_jobs_finished: u64,
    /// Spend ÷ inference requests × 1000 (the inference pods' allocated spend).
    pub cost_per_1k_inferences: f64,
    /// Minutes in which some service's modelled p95 latency exceeded its SLO (summed over
    /// services).
    pub slo_violation_minutes: f64,
    /// Node-hours ended early by scale-down (idle time reclaimed).
    pub node_hours_reclaimed: f64,
    /// Spot interruptions.
    pub interruptions: u64,
    /// GPU-hours of training work lost to interruptions (redone).
    pub gpu_hours_lost: f64,
    /// Minutes in which a budget's allocated run-rate exceeded its cap.
    pub budget_breaches: u64,
    /// Planner and disruption decisions made.
    pub decisions: u64,
    /// Mean wall-clock seconds per decision.
    pub mean_decision_seconds: f64,
    /// Slowest decision, seconds.
    pub max_decision_seconds: f64,
    /// Node launches, and those that failed for lack of capacity.
    pub launches: u64,
    /// Launches that failed with insufficient capacity.
    pub launch_failures: u64,
}

/// One hour of one policy's run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HourRow {
    /// Hour index from the start.
    pub hour: u32,
    /// Spend in this hour.
    pub spend: f64,
    /// On-demand nodes at the end of the hour.
    pub on_demand_nodes: u32,
    /// Spot nodes at the end of the hour.
    pub spot_nodes: u32,
    /// GPU allocation in this hour (0–1).
    pub gpu_allocation: f64,
    /// Pending pods at the end of the hour.
    pub pending_pods: u32,
    /// Worst modelled inference p95 latency in the hour ÷ its SLO (1 = at the SLO).
    pub latency_vs_slo: f64,
}

/// One policy's results.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyResult {
    /// `purser`, `karpenter` or `cluster-autoscaler`.
    pub name: String,
    /// Scorecard.
    pub kpis: Kpis,
    /// Hour by hour.
    pub timeline: Vec<HourRow>,
}

/// A whole simulation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimResult {
    /// Scenario name.
    pub scenario: String,
    /// Seed.
    pub seed: u64,
    /// Hours simulated.
    pub simulated_hours: f64,
    /// Per policy, in the order run.
    pub policies: Vec<PolicyResult>,
}
