//! A small stand-in for kube-scheduler (and the kubelet's pod status), for controller tests.
//!
//! Every 100 ms: a pending pod nominated by Purser's `Nominated` Event is bound to its node
//! (a `nodeclaim/NAME` nomination waits for the claim's Node to be Ready and registered); a
//! pending pod with no nomination and no `PodScheduled` condition is marked
//! `PodScheduled=False/Unschedulable`, as kube-scheduler does when no node fits. Bound pods
//! are set Running and Ready. Optionally a ReplicaSet stand-in recreates evicted pods.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Binding, Node, ObjectReference, Pod};
use k8s_openapi::api::events::v1::Event;
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use purser::api::NodeClaim;
use serde_json::json;

/// Run the scheduler until the task is dropped.
pub async fn run(client: Client) {
    loop {
        if let Err(e) = pass(&client).await {
            eprintln!("test scheduler: {e}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn pass(client: &Client) -> Result<(), kube::Error> {
    let pods: Api<Pod> = Api::all(client.clone());
    let all = pods.list(&ListParams::default()).await?.items;
    let nominations = nominations(client).await?;
    let nodes: HashMap<String, Node> = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter_map(|n| Some((n.metadata.name.clone()?, n)))
        .collect();
    let claims: HashMap<String, NodeClaim> = Api::<NodeClaim>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter_map(|c| Some((c.metadata.name.clone()?, c)))
        .collect();
    for pod in all {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
        if pod.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some() {
            if pod.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Running") {
                let status = json!({"status": {"phase": "Running", "conditions": [
                    {"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "True"}]}});
                api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                    .await?;
            }
            continue;
        }
        let target = nominations
            .get(&format!("{ns}/{name}"))
            .and_then(|n| resolve(n, &claims));
        match target {
            Some(node) if nodes.get(&node).is_some_and(schedulable) => bind(&api, &name, &ns, &node).await?,
            Some(_) => {}
            None => mark_unschedulable(&api, &pod).await?,
        }
    }
    Ok(())
}

/// The latest `Nominated` note per pod: `nodeclaim/NAME` or `node/NAME`.
async fn nominations(client: &Client) -> Result<HashMap<String, String>, kube::Error> {
    let events: Api<Event> = Api::all(client.clone());
    let mut latest: BTreeMap<String, (u64, String)> = BTreeMap::new();
    for e in events.list(&ListParams::default()).await?.items {
        if e.reason.as_deref() != Some("Nominated") {
            continue;
        }
        let Some(r) = e.regarding.as_ref() else { continue };
        let key = format!(
            "{}/{}",
            r.namespace.clone().unwrap_or_default(),
            r.name.clone().unwrap_or_default()
        );
        let note = e.note.clone().unwrap_or_default();
        let Some(target) = note.strip_prefix("Pod should schedule on: ") else {
            continue;
        };
        let target = target.split_whitespace().next().unwrap_or_default().to_string();
        // The test API server's resourceVersions count up: the highest is the latest Event.
        let version: u64 = e
            .metadata
            .resource_version
            .as_deref()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if latest.get(&key).is_none_or(|(v, _)| version >= *v) {
            latest.insert(key, (version, target));
        }
    }
    Ok(latest.into_iter().map(|(k, (_, t))| (k, t)).collect())
}

fn resolve(target: &str, claims: &HashMap<String, NodeClaim>) -> Option<String> {
    if let Some(node) = target.strip_prefix("node/") {
        return Some(node.to_string());
    }
    let claim = claims.get(target.strip_prefix("nodeclaim/")?)?;
    claim.status.as_ref()?.node_name.clone()
}

/// Ready, registered and not being drained.
fn schedulable(node: &Node) -> bool {
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    let taints = node.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
    let blocked = taints
        .iter()
        .any(|t| t.key == "purser.dev/unregistered" || t.key == "purser.dev/disrupted");
    ready && !blocked
}

async fn bind(api: &Api<Pod>, name: &str, ns: &str, node: &str) -> Result<(), kube::Error> {
    let binding = Binding {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            namespace: Some(ns.into()),
            ..Default::default()
        },
        target: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Node".into()),
            name: Some(node.into()),
            ..Default::default()
        },
    };
    match api
        .create_subresource::<Binding, serde_json::Value>("binding", name, &PostParams::default(), &binding)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

async fn mark_unschedulable(api: &Api<Pod>, pod: &Pod) -> Result<(), kube::Error> {
    let marked = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "PodScheduled");
    if marked {
        return Ok(());
    }
    let status = json!({"status": {"phase": "Pending", "conditions": [{
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
        "message": "0/0 nodes are available"}]}});
    let name = pod.metadata.name.clone().unwrap_or_default();
    api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    Ok(())
}

/// A ReplicaSet stand-in: every pod owned by a ReplicaSet that disappears is created again
/// (pending, a new name), so evicted pods come back as real workloads do.
pub async fn replace_evicted(client: Client) {
    let pods: Api<Pod> = Api::all(client.clone());
    let mut known: HashMap<String, Pod> = HashMap::new();
    let mut generation = 0u64;
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let Ok(list) = pods.list(&ListParams::default()).await else {
            continue;
        };
        let now: HashMap<String, Pod> = list
            .items
            .into_iter()
            .filter(|p| {
                p.metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|o| o.kind == "ReplicaSet")
            })
            .map(|p| {
                (
                    format!(
                        "{}/{}",
                        p.metadata.namespace.clone().unwrap_or_default(),
                        p.metadata.name.clone().unwrap_or_default()
                    ),
                    p,
                )
            })
            .collect();
        for (key, gone) in known.iter().filter(|(k, _)| !now.contains_key(*k)) {
            generation += 1;
            let mut fresh = Pod {
                metadata: kube::api::ObjectMeta {
                    name: Some(format!("{}-r{generation}", key.split('/').nth(1).unwrap_or("pod"))),
                    namespace: gone.metadata.namespace.clone(),
                    labels: gone.metadata.labels.clone(),
                    owner_references: gone.metadata.owner_references.clone(),
                    ..Default::default()
                },
                spec: gone.spec.clone(),
                status: None,
            };
            if let Some(spec) = fresh.spec.as_mut() {
                spec.node_name = None;
            }
            let ns = fresh.metadata.namespace.clone().unwrap_or_default();
            let _ = Api::<Pod>::namespaced(client.clone(), &ns)
                .create(&PostParams::default(), &fresh)
                .await;
        }
        known = now;
    }
}
