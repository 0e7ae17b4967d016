//! The controller's view of the cluster: reflector stores fed by watches.
//!
//! In: watch streams of Pods, Nodes, DaemonSets, PodDisruptionBudgets, NodePools, NodeClaims and
//! CostBudgets (reconnecting with backoff when the API server goes away). Out: in-memory stores
//! the loops read, a wake-up for the provisioning loop when a pod becomes unschedulable, a
//! NodePool's spec changes or a claim disappears, and the `purser.dev/last-pod-event` mark on
//! nodes whose pods changed.

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use serde::de::DeserializeOwned;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::api::{CostBudget, NodeClaim, NodePool};
use crate::model::disruption::LAST_POD_EVENT;

/// Reflector stores of everything the engine reads.
#[derive(Clone)]
pub struct ClusterState {
    /// Pods.
    pub pods: Store<Pod>,
    /// Nodes.
    pub nodes: Store<Node>,
    /// DaemonSets.
    pub daemonsets: Store<DaemonSet>,
    /// PodDisruptionBudgets.
    pub pdbs: Store<PodDisruptionBudget>,
    /// NodePools.
    pub pools: Store<NodePool>,
    /// NodeClaims.
    pub claims: Store<NodeClaim>,
    /// CostBudgets.
    pub budgets: Store<CostBudget>,
    /// The watches and the last-pod-event marker, stopped with the last copy of this state.
    _tasks: Arc<Tasks>,
}

/// Background tasks aborted on drop: a controller that is gone (stopped, or killed as a crash
/// would be) no longer watches or writes anything.
struct Tasks(Vec<JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

impl ClusterState {
    /// Start watching every kind; `provision` is notified when pending pods, NodePool specs or
    /// claims change.
    pub fn start(client: kube::Client, provision: Arc<Notify>) -> Self {
        let touched: Arc<Mutex<HashSet<String>>> = Arc::default();
        let mut tasks = vec![];
        let pods = reflect(&mut tasks, Api::<Pod>::all(client.clone()), {
            let provision = provision.clone();
            let touched = touched.clone();
            move |event: &Event<Pod>| on_pod_event(event, &provision, &touched)
        });
        tasks.push(tokio::spawn(mark_pod_events(client.clone(), touched)));
        let claims = reflect(&mut tasks, Api::<NodeClaim>::all(client.clone()), {
            let provision = provision.clone();
            move |event: &Event<NodeClaim>| {
                if matches!(event, Event::Delete(_)) {
                    provision.notify_one();
                }
            }
        });
        let pools = reflect(&mut tasks, Api::<NodePool>::all(client.clone()), {
            let provision = provision.clone();
            let mut seen = HashMap::new();
            move |event: &Event<NodePool>| {
                if pool_changed(event, &mut seen) {
                    provision.notify_one();
                }
            }
        });
        let nodes = reflect(&mut tasks, Api::<Node>::all(client.clone()), |_: &Event<Node>| {});
        let daemonsets = reflect(
            &mut tasks,
            Api::<DaemonSet>::all(client.clone()),
            |_: &Event<DaemonSet>| {},
        );
        let pdbs = reflect(
            &mut tasks,
            Api::<PodDisruptionBudget>::all(client.clone()),
            |_: &Event<PodDisruptionBudget>| {},
        );
        let budgets = reflect(&mut tasks, Api::<CostBudget>::all(client), |_: &Event<CostBudget>| {});
        ClusterState {
            pods,
            nodes,
            daemonsets,
            pdbs,
            pools,
            claims,
            budgets,
            _tasks: Arc::new(Tasks(tasks)),
        }
    }

    /// Wait until every store has its first full list.
    pub async fn wait_ready(&self) {
        let _ = tokio::join!(
            self.pods.wait_until_ready(),
            self.nodes.wait_until_ready(),
            self.daemonsets.wait_until_ready(),
            self.pdbs.wait_until_ready(),
            self.pools.wait_until_ready(),
            self.claims.wait_until_ready(),
            self.budgets.wait_until_ready(),
        );
    }

    /// The Node whose `spec.providerID` is `provider_id`.
    pub fn node_by_provider_id(&self, provider_id: &str) -> Option<Arc<Node>> {
        self.nodes
            .find(|n| n.spec.as_ref().and_then(|s| s.provider_id.as_deref()) == Some(provider_id))
    }

    /// The NodeClaim that owns the Node `node` (by the claim's node name, provider ID or label).
    pub fn claim_of_node(&self, node: &Node) -> Option<Arc<NodeClaim>> {
        let name = node.metadata.name.as_deref()?;
        let provider_id = node.spec.as_ref().and_then(|s| s.provider_id.as_deref());
        let labelled = node
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(super::NODECLAIM_LABEL))
            .cloned();
        self.claims.find(|c| {
            let status = c.status.as_ref();
            labelled.as_deref() == c.metadata.name.as_deref()
                || status.and_then(|s| s.node_name.as_deref()) == Some(name)
                || (provider_id.is_some() && status.and_then(|s| s.provider_id.as_deref()) == provider_id)
        })
    }
}

/// Run a reflector over `api` in the background (its task added to `tasks`), calling `on_event`
/// for every watch event.
fn reflect<K, F>(tasks: &mut Vec<JoinHandle<()>>, api: Api<K>, mut on_event: F) -> Store<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
    F: FnMut(&Event<K>) + Send + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = watcher(api).default_backoff().reflect(writer);
    tasks.push(tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(event) => on_event(&event),
                Err(e) => tracing::warn!(error = %e, "watch failed; retrying with backoff"),
            }
        }
    }));
    reader
}

fn watcher<K>(api: Api<K>) -> impl futures::Stream<Item = Result<Event<K>, watcher::Error>>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    watcher::watcher(api, watcher::Config::default())
}

/// Wake provisioning for an unschedulable pod; remember nodes whose pods changed.
fn on_pod_event(event: &Event<Pod>, provision: &Notify, touched: &Mutex<HashSet<String>>) {
    let (pod, deleted) = match event {
        Event::Apply(pod) | Event::InitApply(pod) => (pod, false),
        Event::Delete(pod) => (pod, true),
        _ => return,
    };
    if !deleted && is_provisionable(pod) {
        provision.notify_one();
    }
    if matches!(event, Event::InitApply(_)) {
        return;
    }
    if let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone())
        && let Ok(mut set) = touched.lock()
    {
        set.insert(node);
    }
}

/// True when a NodePool event changes what the planner reads: a pool added, deleted or
/// re-created, or its spec changed (a new `metadata.generation`). `seen` holds each pool's uid
/// and generation. Status-only writes are not changes: the status loop rewrites every pool's
/// status every few seconds, and waking provisioning on those writes would plan again the pods
/// already nominated to claims that are still launching.
fn pool_changed(event: &Event<NodePool>, seen: &mut HashMap<String, (Option<String>, Option<i64>)>) -> bool {
    match event {
        Event::Apply(pool) | Event::InitApply(pool) => {
            let version = (pool.metadata.uid.clone(), pool.metadata.generation);
            seen.insert(pool.metadata.name.clone().unwrap_or_default(), version.clone()) != Some(version)
        }
        Event::Delete(pool) => {
            seen.remove(pool.metadata.name.as_deref().unwrap_or_default());
            true
        }
        Event::Init | Event::InitDone => false,
    }
}

/// A pod Purser should find room for: not bound, not a DaemonSet's, not finished, and marked
/// `PodScheduled=False` with reason `Unschedulable` by the scheduler.
pub fn is_provisionable(pod: &Pod) -> bool {
    let bound = pod.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some();
    let daemon = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.kind == "DaemonSet");
    let status = pod.status.as_ref();
    let finished = matches!(status.and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"));
    let unschedulable = status
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "PodScheduled" && c.status == "False" && c.reason.as_deref() == Some("Unschedulable"));
    !bound && !daemon && !finished && unschedulable && pod.metadata.deletion_timestamp.is_none()
}

/// Every second, stamp `purser.dev/last-pod-event` on nodes whose pods were bound or deleted,
/// so the disruption engine's emptiness clock starts when the last pod left.
async fn mark_pod_events(client: kube::Client, touched: Arc<Mutex<HashSet<String>>>) {
    let nodes: Api<Node> = Api::all(client);
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let batch: Vec<String> = match touched.lock() {
            Ok(mut set) => set.drain().collect(),
            Err(_) => return,
        };
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        for node in batch {
            let patch = serde_json::json!({"metadata": {"annotations": {LAST_POD_EVENT: now}}});
            if let Err(e) = nodes.patch(&node, &PatchParams::default(), &Patch::Merge(&patch)).await {
                tracing::debug!(node, error = %e, "cannot mark the last pod event");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pool(uid: &str, generation: i64, status: serde_json::Value) -> NodePool {
        serde_json::from_value(json!({
            "apiVersion": "purser.dev/v1", "kind": "NodePool",
            "metadata": {"name": "general", "uid": uid, "generation": generation},
            "spec": {"template": {"spec": {"requirements": []}}},
            "status": status,
        }))
        .expect("pool")
    }

    #[test]
    fn only_new_deleted_recreated_or_respecified_pools_wake_provisioning() {
        let mut seen = HashMap::new();
        assert!(
            pool_changed(&Event::InitApply(pool("a", 1, json!({}))), &mut seen),
            "first seen"
        );
        assert!(!pool_changed(&Event::InitDone, &mut seen));
        let status = json!({"nodes": 3, "hourlyCost": 0.5});
        assert!(
            !pool_changed(&Event::Apply(pool("a", 1, status.clone())), &mut seen),
            "status write"
        );
        assert!(
            !pool_changed(&Event::InitApply(pool("a", 1, status)), &mut seen),
            "relist, unchanged"
        );
        assert!(
            pool_changed(&Event::Apply(pool("a", 2, json!({}))), &mut seen),
            "spec changed"
        );
        assert!(
            pool_changed(&Event::Delete(pool("a", 2, json!({}))), &mut seen),
            "deleted"
        );
        assert!(
            pool_changed(&Event::Apply(pool("a", 2, json!({}))), &mut seen),
            "created again"
        );
        assert!(
            pool_changed(&Event::Apply(pool("b", 2, json!({}))), &mut seen),
            "re-created (new uid) during a relist gap"
        );
    }
}
