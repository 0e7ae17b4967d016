//! The snapshot the engine plans from: pods, nodes (and in-flight claims), DaemonSets,
//! NodePools and CostBudgets, all already validated.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::disruption::{DisruptionPolicy, InterruptionKind, PdbInfo};
use super::pod::{LabelSelector, PodInfo};
use super::requirements::Requirements;
use super::resources::Resources;
use super::taints::Taint;
use crate::catalog::CapacityType;

/// A node that exists (or a NodeClaim in flight, which counts as capacity).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Node name (or NodeClaim name while in flight).
    pub name: String,
    /// Labels, with Karpenter aliases in both spellings.
    pub labels: BTreeMap<String, String>,
    /// Taints that block scheduling (startup taints already removed).
    pub taints: Vec<Taint>,
    /// Allocatable resources (including `pods`).
    pub allocatable: Resources,
    /// Raw capacity (what pool limits count).
    pub capacity: Resources,
    /// The NodePool that owns it, if Purser manages it.
    pub pool: Option<String>,
    /// Instance type label.
    pub instance_type: Option<String>,
    /// Capacity type label.
    pub capacity_type: Option<CapacityType>,
    /// Zone label.
    pub zone: Option<String>,
    /// Hourly price looked up in the catalog (None when the type is not in the catalog).
    pub price: Option<f64>,
    /// True for a NodeClaim that has no Node yet.
    pub in_flight: bool,
    /// True when `spec.unschedulable` is set (cordoned): no new pods go there.
    pub cordoned: bool,
    /// Creation time, seconds since the epoch (0 when unknown).
    #[serde(default)]
    pub created: i64,
    /// True once the node is initialized: its Ready condition is True (or it carries
    /// `purser.dev/initialized: "true"` or Karpenter's `karpenter.sh/initialized`).
    #[serde(default)]
    pub initialized: bool,
    /// True when `metadata.deletionTimestamp` is set.
    #[serde(default)]
    pub deleting: bool,
    /// True when the node carries `purser.dev/do-not-disrupt: "true"` (or Karpenter's spelling).
    #[serde(default)]
    pub do_not_disrupt: bool,
    /// The `purser.dev/nodepool-hash` annotation: the template hash it was launched from.
    #[serde(default)]
    pub pool_hash: Option<String>,
    /// The `purser.dev/last-pod-event` annotation, seconds since the epoch.
    #[serde(default)]
    pub last_pod_event: Option<i64>,
    /// The `purser.dev/interruption` annotation.
    #[serde(default)]
    pub interruption: Option<InterruptionKind>,
}

/// A DaemonSet: its pod template decides which nodes it lands on and what it reserves there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DaemonSetInfo {
    /// `namespace/name`.
    pub key: String,
    /// The pod template as a pod (requests, node selector, affinity, tolerations).
    pub template: PodInfo,
}

/// A validated NodePool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pool {
    /// Name.
    pub name: String,
    /// Weight (higher first); 0 when unset.
    pub weight: i32,
    /// Labels every node of the pool carries.
    pub labels: BTreeMap<String, String>,
    /// Requirements (a conjunction).
    pub requirements: Requirements,
    /// Taints every node carries.
    pub taints: Vec<Taint>,
    /// Startup taints (ignored for fit).
    pub startup_taints: Vec<Taint>,
    /// Limits on total capacity; the `nodes` key limits the node count.
    pub limits: Resources,
    /// USD/hour cap for all the pool's nodes.
    pub max_hourly_cost: Option<f64>,
    /// Percent of placed pod CPU that must be on on-demand nodes.
    pub min_on_demand_percent: f64,
    /// `spec.disruption` and `spec.template.spec.expireAfter`.
    #[serde(default)]
    pub disruption: DisruptionPolicy,
    /// Hash of the template fields whose change drifts a node (labels, taints, startup taints,
    /// nodeClassRef); compared with the node's `purser.dev/nodepool-hash` annotation.
    #[serde(default)]
    pub template_hash: String,
}

/// A validated CostBudget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    /// Name.
    pub name: String,
    /// Namespaces in scope; empty means all.
    pub namespaces: Vec<String>,
    /// Pod label selector; None means every pod.
    pub selector: Option<LabelSelector>,
    /// USD/hour cap on the allocated cost of the pods in scope: `spec.maxHourlyCost`, lowered
    /// to the status's allowed run-rate when a period cap is set.
    pub max_hourly_cost: f64,
    /// The period spend is counted over (`Monthly`, `Weekly` or a cron expression), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<String>,
    /// USD cap over one period, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_period_cost: Option<f64>,
}

impl Budget {
    /// Is `pod` in this budget's scope?
    pub fn covers(&self, pod: &PodInfo) -> bool {
        (self.namespaces.is_empty() || self.namespaces.contains(&pod.namespace))
            && self.selector.as_ref().is_none_or(|s| s.matches(&pod.labels))
    }
}

/// Everything the planner reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// All pods, pending and bound.
    pub pods: Vec<PodInfo>,
    /// Existing nodes and in-flight NodeClaims.
    pub nodes: Vec<NodeInfo>,
    /// DaemonSets.
    pub daemonsets: Vec<DaemonSetInfo>,
    /// NodePools.
    pub pools: Vec<Pool>,
    /// CostBudgets.
    pub budgets: Vec<Budget>,
    /// PodDisruptionBudgets.
    #[serde(default)]
    pub pdbs: Vec<PdbInfo>,
}

impl Snapshot {
    /// Pending pods (no node), excluding DaemonSet pods.
    pub fn pending(&self) -> impl Iterator<Item = (usize, &PodInfo)> {
        self.pods
            .iter()
            .enumerate()
            .filter(|(_, p)| p.is_pending() && !p.is_daemon())
    }

    /// Pods bound to `node`.
    pub fn pods_on<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a PodInfo> + 'a {
        self.pods.iter().filter(move |p| p.node_name.as_deref() == Some(node))
    }
}
