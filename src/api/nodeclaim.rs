//! `NodeClaim`: one node Purser asked for, from the plan until the instance is gone.
//!
//! In: the provisioner creates a claim (cluster-scoped, labelled `purser.dev/nodepool`) with
//! everything a launch needs; its spec never changes afterwards. Out: the lifecycle controller
//! writes the status: the instance (provider ID, type, zone, capacity type, price, image), the
//! Node name, and conditions Launched, Registered, Initialized, Ready, Drifted and Disrupting.

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
    CAPACITY_TYPES, DURATION_OR_NEVER_PATTERN, DURATION_PATTERN, quantity_map, quantity_map_schema,
};
use super::{NodeClassRef, NodeSelectorRequirement, TaintSpec};

/// Desired state of a NodeClaim; immutable once created.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "purser.dev",
    version = "v1",
    kind = "NodeClaim",
    doc = "A NodeClaim: one node Purser asked for, from launch until the instance is gone.",
    shortname = "nc",
    category = "purser",
    status = "NodeClaimStatus",
    printcolumn(name = "Type", type_ = "string", json_path = ".status.instanceType"),
    printcolumn(name = "Capacity", type_ = "string", json_path = ".status.capacityType"),
    printcolumn(name = "Zone", type_ = "string", json_path = ".status.zone"),
    printcolumn(name = "Node", type_ = "string", json_path = ".status.nodeName"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    printcolumn(
        name = "Price/h",
        type_ = "number",
        json_path = ".status.price",
        priority = 1,
        description = "USD per hour of the instance's offering"
    ),
    printcolumn(name = "ID", type_ = "string", json_path = ".status.providerId", priority = 1),
    printcolumn(
        name = "NodePool",
        type_ = "string",
        json_path = ".metadata.labels.purser\\.dev/nodepool",
        priority = 1
    ),
    printcolumn(
        name = "NodeClass",
        type_ = "string",
        json_path = ".spec.nodeClassRef.name",
        priority = 1
    ),
    printcolumn(
        name = "Drifted",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Drifted\")].status",
        priority = 1
    )
)]
#[x_kube(validation = Rule::new("self == oldSelf").message("spec is immutable"))]
#[serde(rename_all = "camelCase")]
pub struct NodeClaimSpec {
    /// Requirements the launched instance satisfies (instance type In [...], zone, capacity type, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub requirements: Vec<NodeSelectorRequirement>,
    /// Resources the node must offer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ClaimResources>,
    /// Taints the node carries for its whole life.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taints: Vec<TaintSpec>,
    /// Taints present only while the node starts; an agent on the node removes them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub startup_taints: Vec<TaintSpec>,
    /// NodeClass reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_class_ref: Option<NodeClassRef>,
    /// Node lifetime, from the pool's template (`720h`, `Never`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(DURATION_OR_NEVER_PATTERN))]
    pub expire_after: Option<String>,
    /// Longest time the node may take to drain before it is terminated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(DURATION_PATTERN))]
    pub termination_grace_period: Option<String>,
}

/// Requested resources of a claim.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClaimResources {
    /// Sum of the requests of the pods the claim was made for.
    #[serde(default, deserialize_with = "quantity_map")]
    #[schemars(schema_with = "quantity_map_schema")]
    pub requests: BTreeMap<String, String>,
}

/// Observed state of a NodeClaim.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeClaimStatus {
    /// Provider ID once launched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<String>,
    /// Node name once registered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// Machine image the instance booted from, when the cloud has one.
    #[serde(default, alias = "imageID", skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    /// Instance type that was launched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
    /// Zone the instance runs in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// `on-demand`, `spot` or `reserved`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = CAPACITY_TYPES))]
    pub capacity_type: Option<String>,
    /// USD per hour of the launched offering, when the catalog prices it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<f64>,
    /// Capacity of the launched instance.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub capacity: BTreeMap<String, String>,
    /// Allocatable of the launched instance.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub allocatable: BTreeMap<String, String>,
    /// Launched, Registered, Initialized, Ready, Drifted and Disrupting.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
}

impl_has_conditions!(NodeClaimStatus);
