//! What-if plans: the cluster without some nodes, their pods pending, planned by the same
//! planner that provisions; and applying a command to a snapshot (the nodes go, the new
//! claims come with the pods bound to them).

use std::collections::{BTreeMap, HashMap};

use crate::catalog::{CapacityType, Catalog};
use crate::model::labels::HOSTNAME;
use crate::model::{NodeInfo, Snapshot};
use crate::solver::problem::{pool_node_labels, with_offering};
use crate::solver::{self, Plan, PlanOptions};

use super::Command;
use super::candidates::reschedulable;

/// `snapshot` without its pending pods: disruption moves only the pods it evicts.
pub fn without_pending(snapshot: &Snapshot) -> Snapshot {
    let mut out = snapshot.clone();
    out.pods.retain(|p| !p.is_pending());
    out
}

/// Close the nodes of `work` that are not initialized to moved pods (as Karpenter's
/// disruption refuses to schedule onto uninitialized nodes): the room on a node still coming up
/// is meant for the pending pods it was launched for, which `without_pending` leaves out, and
/// the node may never come up. The nodes stay in `work` (they count against limits and budgets
/// and as topology domains); the planner treats them as cordoned.
pub fn close_uninitialized(work: &mut Snapshot) {
    for node in work.nodes.iter_mut().filter(|n| n.in_flight || !n.initialized) {
        node.cordoned = true;
    }
}

/// The plan for the pods of `nodes` when those nodes are gone.
pub fn plan_without(work: &Snapshot, nodes: &[String], catalog: &Catalog, options: &PlanOptions) -> Plan {
    solver::plan(&evicted(work, nodes), catalog, options)
}

/// `work` without `nodes`; their reschedulable pods pending, their DaemonSet and mirror pods gone.
pub fn evicted(work: &Snapshot, nodes: &[String]) -> Snapshot {
    let gone = |name: &Option<String>| name.as_ref().is_some_and(|n| nodes.contains(n));
    let mut out = work.clone();
    out.nodes.retain(|n| !nodes.contains(&n.name));
    out.pods.retain(|p| !gone(&p.node_name) || reschedulable(p));
    for pod in out.pods.iter_mut().filter(|p| gone(&p.node_name)) {
        pod.node_name = None;
    }
    out
}

/// `snapshot` after `command`: its nodes removed, its pods bound where the command moves them
/// (new claims become nodes created at `now`, initialized when `initialized` is set, otherwise
/// in flight).
pub fn apply(snapshot: &Snapshot, command: &Command, catalog: &Catalog, now: i64, initialized: bool) -> Snapshot {
    let mut out = evicted(snapshot, &command.nodes);
    let mut target: HashMap<&str, String> = HashMap::new();
    for placement in &command.moves {
        for pod in &placement.pods {
            target.insert(pod, placement.node.clone());
        }
    }
    for (i, claim) in command.node_claims.iter().enumerate() {
        let name = format!("{}-{now}-{}-{i}", claim.node_pool, out.nodes.len());
        if let Some(node) = claim_node(&out, claim, &name, catalog, now, initialized) {
            out.nodes.push(node);
            for pod in &claim.pods {
                target.insert(pod, name.clone());
            }
        }
    }
    for pod in out.pods.iter_mut().filter(|p| p.is_pending()) {
        if let Some(node) = target.get(pod.key.as_str()) {
            pod.node_name = Some(node.clone());
            pod.started = Some(now);
        }
    }
    // Pods the command could not place stay pending (an interruption strands them).
    out.nodes.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// A node for a planned claim, labelled as the planner labels its offerings (None when its
/// pool, instance type or capacity type is unknown).
pub fn claim_node(
    snapshot: &Snapshot,
    claim: &solver::plan::PlannedNode,
    name: &str,
    catalog: &Catalog,
    now: i64,
    initialized: bool,
) -> Option<NodeInfo> {
    let pool = snapshot.pools.iter().find(|p| p.name == claim.node_pool)?;
    let it = catalog.find(&claim.instance_type)?;
    let capacity_type = CapacityType::parse(&claim.capacity_type)?;
    let mut labels: BTreeMap<String, String> =
        with_offering(pool_node_labels(pool, it, &catalog.region), &claim.zone, capacity_type);
    labels.insert(HOSTNAME.into(), name.to_string());
    Some(NodeInfo {
        name: name.to_string(),
        labels,
        taints: pool.taints.clone(),
        allocatable: it.allocatable.clone(),
        capacity: it.capacity.clone(),
        pool: Some(pool.name.clone()),
        instance_type: Some(it.name.clone()),
        capacity_type: Some(capacity_type),
        zone: Some(claim.zone.clone()),
        price: Some(claim.hourly_price),
        in_flight: !initialized,
        cordoned: false,
        created: now,
        initialized,
        deleting: false,
        do_not_disrupt: false,
        pool_hash: Some(pool.template_hash.clone()),
        last_pod_event: Some(now),
        interruption: None,
    })
}
