//! The cloud behind a small trait, and the catalog wire format every provider speaks.
//!
//! In: launch requests built from the planner's node claims. Out: instances and the
//! instance types (with priced offerings) the cloud can run. Quantities stay strings in
//! Kubernetes grammar here; the `purser` crate's `catalog` module parses and validates them.

use std::collections::BTreeMap;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

/// A catalog file: the instance types a cloud offers, with prices.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CatalogFile {
    /// Cloud region the prices apply to, e.g. `us-east-1`.
    #[serde(default)]
    pub region: String,
    /// Free text saying where the data came from.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// How node allocatable is derived from capacity when an instance type gives none.
    #[serde(default)]
    pub reservation: Reservation,
    /// The instance types.
    pub instance_types: Vec<InstanceTypeSpec>,
}

/// The rule that turns an instance type's capacity into node allocatable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reservation {
    /// kube-reserved and the eviction threshold as the EKS AMI computes them.
    #[default]
    Eks,
    /// Allocatable equals capacity (synthetic catalogs, kwok).
    None,
}

/// One instance type: what it has, how it is labelled, and where it can be bought.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InstanceTypeSpec {
    /// Instance type name, e.g. `g5.12xlarge`.
    pub name: String,
    /// Capacity in Kubernetes quantity grammar: `cpu`, `memory`, `pods`, extended resources.
    pub capacity: BTreeMap<String, String>,
    /// Explicit allocatable; when absent it is derived with the catalog's `reservation` rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocatable: Option<BTreeMap<String, String>>,
    /// Node labels this type carries (arch, os, instance family, GPU model, ...).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Zone × capacity type × price.
    pub offerings: Vec<OfferingSpec>,
}

/// A place and a way to buy an instance type, at a price.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OfferingSpec {
    /// Availability zone, e.g. `us-east-1a`.
    pub zone: String,
    /// `on-demand` or `spot`.
    pub capacity_type: String,
    /// USD per hour.
    pub price: Option<f64>,
    /// True when the price is an estimate (for example a spot discount assumed per family).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub price_estimated: bool,
    /// Expected interruptions per hour of running (spot), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interruption_rate: Option<f64>,
}

/// What the controller asks a cloud to launch for one node claim.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LaunchRequest {
    /// Name of the NodeClaim; providers derive idempotency tokens from it.
    pub node_claim: String,
    /// NodePool the claim belongs to.
    pub node_pool: String,
    /// NodeClass named by the claim's `nodeClassRef` (empty when it names none); clouds that
    /// need provider settings (subnets, images) read them from it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node_class: String,
    /// Instance types in order of preference (the plan's choice first).
    pub instance_types: Vec<String>,
    /// `on-demand` or `spot`.
    pub capacity_type: String,
    /// Zones allowed for the launch.
    pub zones: Vec<String>,
    /// Labels the node should carry.
    pub labels: BTreeMap<String, String>,
    /// Taints the node carries for its whole life.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taints: Vec<Taint>,
    /// Taints present only while the node starts; an agent on the node removes them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub startup_taints: Vec<Taint>,
    /// Tags for the instance (from the NodeClass), for clouds that tag resources.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// The allocatable the plan assumed (quantity strings), for providers that create the Node
    /// object themselves (kwok); clouds whose kubelet reports allocatable ignore it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub allocatable: BTreeMap<String, String>,
}

/// A node taint, as a launch request carries it.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Taint {
    /// Key.
    pub key: String,
    /// Value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    pub effect: String,
}

/// A running (or launching) instance as the cloud reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Instance {
    /// Provider ID, e.g. `aws:///us-east-1a/i-0abc` or `kwok://node-1`.
    pub provider_id: String,
    /// Instance type that was launched.
    pub instance_type: String,
    /// Zone it runs in.
    pub zone: String,
    /// `on-demand` or `spot`.
    pub capacity_type: String,
    /// NodeClaim that owns it, from its tags.
    pub node_claim: String,
}

/// What an interruption notice says will happen to an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InterruptionKind {
    /// The spot instance will be reclaimed (two minutes' notice).
    SpotInterruption,
    /// The spot instance is at elevated risk of interruption.
    Rebalance,
    /// Scheduled maintenance will stop or retire the instance.
    ScheduledChange,
    /// The instance is stopping, stopped, shutting down or terminated.
    StateChange,
}

/// An interruption notice for one instance, from the cloud's event feed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InterruptionEvent {
    /// The cloud's instance ID (the last path segment of the provider ID, e.g. `i-0abc`).
    pub instance_id: String,
    /// What will happen.
    pub kind: InterruptionKind,
    /// Free text for logs and Events (the event's source and detail type).
    pub detail: String,
    /// The feed's handle to acknowledge the notice with once it was acted on (AWS: the SQS
    /// receipt handle of its message); None when the feed needs no acknowledgement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<String>,
}

/// Errors a cloud provider reports.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CloudError {
    /// The offering has no capacity now; the planner should avoid it for a while.
    #[error("insufficient capacity for {instance_type} {capacity_type} in {zone}")]
    InsufficientCapacity {
        /// Instance type asked for.
        instance_type: String,
        /// Zone asked for.
        zone: String,
        /// Capacity type asked for.
        capacity_type: String,
        /// Other (instance type, zone) offerings of the same capacity type that failed for lack
        /// of capacity in the same launch.
        others: Vec<(String, String)>,
    },
    /// No instance with that provider ID exists.
    #[error("instance {0} not found")]
    NotFound(String),
    /// Any other failure, with the cloud's message.
    #[error("cloud provider error: {0}")]
    Other(String),
}

/// The small trait every cloud implements.
pub trait CloudProvider: Send + Sync {
    /// Short provider name (`aws`, `kwok`, `fake`).
    fn name(&self) -> &str;
    /// Launch one instance for a node claim.
    fn create(&self, request: LaunchRequest) -> BoxFuture<'_, Result<Instance, CloudError>>;
    /// Look an instance up by provider ID.
    fn get(&self, provider_id: String) -> BoxFuture<'_, Result<Instance, CloudError>>;
    /// All instances this provider launched for the cluster.
    fn list(&self) -> BoxFuture<'_, Result<Vec<Instance>, CloudError>>;
    /// Terminate an instance.
    fn delete(&self, provider_id: String) -> BoxFuture<'_, Result<(), CloudError>>;
    /// The instance types the cloud offers now, with prices.
    fn instance_types(&self) -> BoxFuture<'_, Result<CatalogFile, CloudError>>;
    /// Wait for the next interruption notices (a long poll); clouds without a notice feed never
    /// return.
    fn interruptions(&self) -> BoxFuture<'_, Result<Vec<InterruptionEvent>, CloudError>> {
        Box::pin(futures::future::pending())
    }
    /// Acknowledge notices that were acted on, so the feed does not deliver them again; a notice
    /// never acknowledged comes back. Clouds whose feed needs no acknowledgement do nothing.
    fn acknowledge(&self, events: Vec<InterruptionEvent>) -> BoxFuture<'_, Result<(), CloudError>> {
        drop(events);
        Box::pin(futures::future::ready(Ok(())))
    }
}
