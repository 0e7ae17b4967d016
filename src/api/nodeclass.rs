//! `NodeClass`: the provider-side settings of the nodes a NodePool creates (tags, and per-provider
//! sections), referenced from `spec.template.spec.nodeClassRef`.
//!
//! In: the user's spec. Out: the NodeClass controller's status (condition Ready). The spec is
//! provider-neutral at the top (`tags` for every cloud) with one section per provider: `kwok` for
//! the kwok provider and `aws` (subnets, security groups, images, instance profile, volumes,
//! metadata options; defined in the `purser-aws` crate), so a class can carry settings for
//! several providers. The AWS provider writes `status.aws` (what the selectors resolved to).

#![allow(
    clippy::duplicated_attributes,
    reason = "kube-derive printcolumn attributes repeat their keys by design"
)]

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::condition::{Condition, conditions_schema, impl_has_conditions};
use super::validation::label_map_schema;

/// Desired state of a NodeClass.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "purser.dev",
    version = "v1",
    kind = "NodeClass",
    doc = "A NodeClass: the provider settings of the nodes of the NodePools that reference it.",
    shortname = "ncls",
    category = "purser",
    status = "NodeClassStatus",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct NodeClassSpec {
    /// Tags the provider puts on every instance (and its volumes) it launches for this class.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 50), inner(length(max = 256)))]
    #[x_kube(
        validation = Rule::new("self.all(k, k.size() > 0 && k.size() <= 128)").message("tag keys have 1 to 128 characters"),
        validation = Rule::new("self.all(k, !k.startsWith('purser.dev/') && !k.startsWith('kubernetes.io/cluster/'))")
            .message("tag keys under purser.dev/ and kubernetes.io/cluster/ are set by Purser"),
    )]
    pub tags: BTreeMap<String, String>,
    /// Settings for the kwok provider (nodes simulated as Node objects).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kwok: Option<KwokNodeClass>,
    /// Settings for the AWS provider (shaped like Karpenter's EC2NodeClass).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<purser_aws::nodeclass::AwsNodeClass>,
}

/// Settings of the kwok provider.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KwokNodeClass {
    /// Extra labels the simulated Nodes of this class carry (merged under the NodePool's labels).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "label_map_schema")]
    pub node_labels: BTreeMap<String, String>,
}

/// Observed state of a NodeClass.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeClassStatus {
    /// Ready.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// What the AWS provider resolved the selectors of `spec.aws` to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<purser_aws::nodeclass::AwsNodeClassStatus>,
}

impl_has_conditions!(NodeClassStatus);
