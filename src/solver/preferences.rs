//! Preferred scheduling terms, honoured when they cost nothing extra: the snapshot is planned
//! once as given and once with its preferences turned into requirements (preferred node
//! affinity, preferred pod anti-affinity, PreferNoSchedule taints); the preferring plan wins
//! when it places the same pods at no higher cost.

use crate::model::Snapshot;
use crate::model::requirements::Requirements;
use crate::model::taints::Effect;

use super::Plan;

/// The snapshot with every pending pod's preferences required, or None when nothing prefers.
pub fn as_required(snapshot: &Snapshot) -> Option<Snapshot> {
    let pods_prefer = snapshot
        .pending()
        .any(|(_, p)| !p.preferred_node_affinity.is_empty() || !p.preferred_pod_anti_affinity.is_empty());
    let taints_prefer = snapshot
        .pools
        .iter()
        .flat_map(|p| &p.taints)
        .chain(snapshot.nodes.iter().flat_map(|n| &n.taints))
        .any(|t| t.effect == Effect::PreferNoSchedule);
    if !pods_prefer && !taints_prefer {
        return None;
    }
    let mut strict = snapshot.clone();
    for pod in strict.pods.iter_mut().filter(|p| p.is_pending()) {
        let mut terms = pod.preferred_node_affinity.clone();
        terms.sort_by_key(|t| std::cmp::Reverse(t.0));
        for (_, term) in terms {
            let mut combined = pod.node_selector.0.clone();
            combined.extend(term.0.iter().cloned());
            if Requirements(combined.clone()).contradiction().is_none() {
                pod.node_selector = Requirements(combined);
            }
        }
        let preferred: Vec<_> = pod.preferred_pod_anti_affinity.iter().map(|(_, t)| t.clone()).collect();
        pod.pod_anti_affinity.extend(preferred);
    }
    let harden = |t: &mut crate::model::taints::Taint| {
        if t.effect == Effect::PreferNoSchedule {
            t.effect = Effect::NoSchedule;
        }
    };
    strict
        .pools
        .iter_mut()
        .flat_map(|p| p.taints.iter_mut())
        .for_each(harden);
    strict
        .nodes
        .iter_mut()
        .flat_map(|n| n.taints.iter_mut())
        .for_each(harden);
    Some(strict)
}

/// True when `preferred` places exactly the pods `base` places and costs no more.
pub fn costs_nothing(base: &Plan, preferred: &Plan) -> bool {
    let unplaced = |p: &Plan| p.unschedulable.iter().map(|u| u.pod.clone()).collect::<Vec<_>>();
    unplaced(base) == unplaced(preferred)
        && preferred.hourly_cost <= base.hourly_cost + 1e-9
        && preferred.solver.objective <= base.solver.objective + 1e-9
}
