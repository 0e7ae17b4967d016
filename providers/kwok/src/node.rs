//! The Node objects the kwok kubelet writes, built from instance records (pure; no I/O).
//!
//! In: a record and the time. Out: the Node to create, its initial status, the Ready status,
//! and the taint list without the startup taints.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, NodeCondition, NodeSpec, NodeStatus, Taint};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::ObjectMeta;

use crate::record::InstanceRecord;

/// The taint every kwok Node is created with; the controller removes it when it registers the
/// node (Karpenter's `karpenter.sh/unregistered`).
pub const UNREGISTERED_TAINT: &str = "purser.dev/unregistered";
/// Label marking Nodes this provider owns (the kubelet loop deletes them when their record is gone).
pub const OWNER_LABEL: &str = "purser.dev/kwok";
/// Annotation by which a real kwok controller, when one runs, adopts the Node (heartbeats, pods).
pub const KWOK_ANNOTATION: &str = "kwok.x-k8s.io/node";

/// A record's taint as a Kubernetes taint.
fn taint(t: &purser_cloudprovider::Taint) -> Taint {
    Taint {
        key: t.key.clone(),
        value: t.value.clone(),
        effect: t.effect.clone(),
        time_added: None,
    }
}

/// A quantity map as Kubernetes quantities.
fn quantities(map: &BTreeMap<String, String>) -> BTreeMap<String, Quantity> {
    map.iter().map(|(k, v)| (k.clone(), Quantity(v.clone()))).collect()
}

/// The taints a new Node carries: the record's, its startup taints and the unregistered taint.
pub fn initial_taints(record: &InstanceRecord) -> Vec<Taint> {
    let mut taints: Vec<Taint> = record.taints.iter().chain(&record.startup_taints).map(taint).collect();
    taints.push(Taint {
        key: UNREGISTERED_TAINT.into(),
        value: None,
        effect: "NoExecute".into(),
        time_added: None,
    });
    taints
}

/// The Node to create for a record.
pub fn new_node(record: &InstanceRecord) -> Node {
    let mut labels = record.labels.clone();
    labels.insert(OWNER_LABEL.into(), "true".into());
    Node {
        metadata: ObjectMeta {
            name: Some(record.name.clone()),
            labels: Some(labels),
            annotations: Some(BTreeMap::from([(KWOK_ANNOTATION.to_string(), "fake".to_string())])),
            ..Default::default()
        },
        spec: Some(NodeSpec {
            provider_id: Some(record.provider_id.clone()),
            taints: Some(initial_taints(record)),
            ..Default::default()
        }),
        status: Some(status(
            record,
            false,
            "KubeletNotReady",
            "kwok: node registered, not ready yet",
            now(),
        )),
    }
}

/// The Node status: capacity, allocatable and a Ready condition.
pub fn status(record: &InstanceRecord, ready: bool, reason: &str, message: &str, at: Time) -> NodeStatus {
    NodeStatus {
        capacity: Some(quantities(&record.capacity)),
        allocatable: Some(quantities(&record.allocatable)),
        conditions: Some(vec![NodeCondition {
            type_: "Ready".into(),
            status: if ready { "True" } else { "False" }.into(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            last_heartbeat_time: Some(at.clone()),
            last_transition_time: Some(at),
        }]),
        phase: Some("Running".into()),
        ..Default::default()
    }
}

/// The Ready status the kubelet loop writes after the ready delay.
pub fn ready_status(record: &InstanceRecord) -> NodeStatus {
    status(record, true, "KubeletReady", "kwok: node is ready", now())
}

/// `taints` without the record's startup taints (matched by key and effect).
pub fn without_startup_taints(record: &InstanceRecord, taints: &[Taint]) -> Vec<Taint> {
    taints
        .iter()
        .filter(|t| {
            !record
                .startup_taints
                .iter()
                .any(|s| s.key == t.key && s.effect == t.effect)
        })
        .cloned()
        .collect()
}

/// True when the Node's Ready condition is True.
pub fn is_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// True when the Node was created by this provider.
pub fn is_owned(node: &Node) -> bool {
    node.metadata
        .labels
        .as_ref()
        .is_some_and(|l| l.get(OWNER_LABEL).is_some_and(|v| v == "true"))
}

/// The current time as a Kubernetes time.
pub fn now() -> Time {
    Time(Timestamp::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> InstanceRecord {
        let t = |key: &str, effect: &str| purser_cloudprovider::Taint {
            key: key.into(),
            value: None,
            effect: effect.into(),
        };
        InstanceRecord {
            name: "n1".into(),
            provider_id: "kwok://n1".into(),
            labels: BTreeMap::from([("purser.dev/nodepool".to_string(), "general".to_string())]),
            taints: vec![t("dedicated", "NoSchedule")],
            startup_taints: vec![t("example.com/agent-not-ready", "NoExecute")],
            capacity: BTreeMap::from([("cpu".to_string(), "2".to_string())]),
            allocatable: BTreeMap::from([("cpu".to_string(), "1930m".to_string())]),
            ..Default::default()
        }
    }

    #[test]
    fn new_node_carries_identity_taints_and_resources() {
        let node = new_node(&record());
        let spec = node.spec.as_ref().unwrap();
        assert_eq!(spec.provider_id.as_deref(), Some("kwok://n1"));
        let keys: Vec<&str> = spec.taints.iter().flatten().map(|t| t.key.as_str()).collect();
        assert_eq!(keys, ["dedicated", "example.com/agent-not-ready", UNREGISTERED_TAINT]);
        assert!(is_owned(&node));
        assert!(!is_ready(&node));
        let status = node.status.as_ref().unwrap();
        assert_eq!(status.allocatable.as_ref().unwrap()["cpu"], Quantity("1930m".into()));
    }

    #[test]
    fn readiness_drops_only_startup_taints() {
        let r = record();
        let after = without_startup_taints(&r, &initial_taints(&r));
        let keys: Vec<&str> = after.iter().map(|t| t.key.as_str()).collect();
        assert_eq!(keys, ["dedicated", UNREGISTERED_TAINT]);
        let mut node = new_node(&r);
        node.status = Some(ready_status(&r));
        assert!(is_ready(&node));
    }
}
