//! Which managed nodes may be disrupted: protections (not initialized, being deleted,
//! do-not-disrupt, PodDisruptionBudgets, pods without a controller), the node's clock (the last
//! pod event) and what it holds.

use std::collections::HashMap;

use crate::model::disruption::DoNotDisrupt;
use crate::model::pod::PodInfo;
use crate::model::resources::Resources;
use crate::model::{NodeInfo, Pool, Snapshot};

/// True for a pod that moves when its node goes: not a DaemonSet pod, not a mirror pod.
pub fn reschedulable(pod: &PodInfo) -> bool {
    !pod.is_daemon() && !pod.mirror
}

/// The pool that manages `node`, when there is one in the snapshot.
pub fn pool_of<'a>(snapshot: &'a Snapshot, node: &NodeInfo) -> Option<&'a Pool> {
    let name = node.pool.as_ref()?;
    snapshot.pools.iter().find(|p| &p.name == name)
}

/// Pod indices by the node they are bound to, for one snapshot.
#[derive(Debug, Clone, Default)]
pub struct PodIndex(HashMap<String, Vec<usize>>);

impl PodIndex {
    /// Index the bound pods of `snapshot`.
    pub fn new(snapshot: &Snapshot) -> Self {
        let mut by_node: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, p) in snapshot.pods.iter().enumerate() {
            if let Some(n) = &p.node_name {
                by_node.entry(n.clone()).or_default().push(i);
            }
        }
        PodIndex(by_node)
    }

    /// Every pod bound to `node` (DaemonSet and mirror pods included).
    pub fn all<'a>(&self, snapshot: &'a Snapshot, node: &str) -> Vec<&'a PodInfo> {
        self.0
            .get(node)
            .map(|v| v.iter().map(|&i| &snapshot.pods[i]).collect())
            .unwrap_or_default()
    }
}

/// The reschedulable pods bound to `node`.
pub fn pods_on<'a>(snapshot: &'a Snapshot, index: &PodIndex, node: &str) -> Vec<&'a PodInfo> {
    index
        .all(snapshot, node)
        .into_iter()
        .filter(|p| reschedulable(p))
        .collect()
}

/// Why the node may not be disrupted voluntarily now, if it may not.
pub fn protection(
    snapshot: &Snapshot,
    index: &PodIndex,
    node: &NodeInfo,
    pdb_left: &[u32],
    now: i64,
) -> Option<String> {
    if node.in_flight || !node.initialized {
        return Some("not initialized".into());
    }
    if node.deleting {
        return Some("already being deleted".into());
    }
    if node.do_not_disrupt {
        return Some("node has purser.dev/do-not-disrupt".into());
    }
    pods_on(snapshot, index, &node.name)
        .into_iter()
        .find_map(|pod| pod_protection(snapshot, pod, pdb_left, now))
}

/// Why evicting `pod` now is not allowed, if it is not.
pub fn pod_protection(snapshot: &Snapshot, pod: &PodInfo, pdb_left: &[u32], now: i64) -> Option<String> {
    match pod.do_not_disrupt {
        DoNotDisrupt::Always => return Some(format!("pod {} has purser.dev/do-not-disrupt", pod.key)),
        DoNotDisrupt::For(seconds) => {
            let since = pod.started.unwrap_or(pod.created);
            if now < since + seconds {
                return Some(format!(
                    "pod {} has purser.dev/do-not-disrupt for {}s more",
                    pod.key,
                    since + seconds - now
                ));
            }
        }
        DoNotDisrupt::No => {}
    }
    if pod.owner_kind.is_none() {
        return Some(format!("pod {} has no controller (it would not come back)", pod.key));
    }
    snapshot
        .pdbs
        .iter()
        .zip(pdb_left)
        .find(|(pdb, left)| **left == 0 && pdb.covers(&pod.namespace, &pod.labels))
        .map(|(pdb, _)| {
            format!(
                "pod {} is protected by PodDisruptionBudget {} (no disruption allowed now)",
                pod.key, pdb.key
            )
        })
}

/// Evictions the pods of `nodes` need from each PDB, checked against `pdb_left`: the first
/// PDB that would be exceeded, if any.
pub fn pdb_shortfall(snapshot: &Snapshot, index: &PodIndex, nodes: &[String], pdb_left: &[u32]) -> Option<String> {
    let mut need = vec![0u32; snapshot.pdbs.len()];
    for node in nodes {
        for pod in pods_on(snapshot, index, node) {
            for (i, pdb) in snapshot.pdbs.iter().enumerate() {
                if pdb.covers(&pod.namespace, &pod.labels) {
                    need[i] += 1;
                }
            }
        }
    }
    need.iter()
        .zip(pdb_left)
        .zip(&snapshot.pdbs)
        .find(|((n, left), _)| *n > *left)
        .map(|((n, left), pdb)| format!("PodDisruptionBudget {} allows {left} evictions, {n} needed", pdb.key))
}

/// When the node last changed: the latest of its creation, the controller's last-pod-event
/// annotation and the start of any pod on it.
pub fn last_change(snapshot: &Snapshot, index: &PodIndex, node: &NodeInfo) -> i64 {
    let pod_times = pods_on(snapshot, index, &node.name)
        .into_iter()
        .map(|p| p.started.unwrap_or(p.created));
    pod_times
        .chain(node.last_pod_event)
        .chain(std::iter::once(node.created))
        .max()
        .unwrap_or(0)
}

/// True when `node` offers accelerators (GPUs, MIG slices, Neuron devices).
pub fn has_accelerators(node: &NodeInfo) -> bool {
    node.allocatable
        .0
        .iter()
        .any(|(k, v)| Resources::is_accelerator(k) && *v > crate::model::quantity::Quantity::ZERO)
}

/// True when `pod` requests accelerators.
pub fn wants_accelerators(pod: &PodInfo) -> bool {
    pod.requests.accelerators() > crate::model::quantity::Quantity::ZERO
}

/// The largest share of the node's allocatable CPU, memory or accelerators its pods request.
pub fn utilisation(snapshot: &Snapshot, index: &PodIndex, node: &NodeInfo) -> f64 {
    let mut used = Resources::new();
    for pod in index.all(snapshot, &node.name) {
        used.add(&pod.requests);
    }
    ["cpu", "memory"]
        .into_iter()
        .map(|r| share(used.get(r), node.allocatable.get(r)))
        .chain(
            node.allocatable
                .0
                .iter()
                .filter(|(k, _)| Resources::is_accelerator(k))
                .map(|(k, v)| share(used.get(k), *v)),
        )
        .fold(0.0, f64::max)
}

fn share(used: crate::model::quantity::Quantity, total: crate::model::quantity::Quantity) -> f64 {
    if total <= crate::model::quantity::Quantity::ZERO {
        return 0.0;
    }
    used.milli() as f64 / total.milli() as f64
}

/// The node's hourly price, 0 when the catalog does not know it.
pub fn price(node: &NodeInfo) -> f64 {
    node.price.unwrap_or(0.0)
}
