//! The autoscaling policies compared: `purser` (ILP planner, budgets, m→n consolidation,
//! GPU-idle reclaim), `karpenter` (the FFD planner and m→1 consolidation, no budgets) and
//! `cluster-autoscaler` (fixed node groups, least-waste expander, scale-down below 50%
//! utilisation after 10 minutes). Purser and Karpenter both call the real engine
//! (`solver::plan`, `disruption::decide`); only their options differ.

use std::time::{Duration, Instant};

use crate::catalog::CapacityType;
use crate::disruption::{self, DisruptOptions, Replacement};
use crate::model::disruption::Reason;
use crate::model::labels;
use crate::model::resources::Resources;
use crate::model::taints::first_blocking;
use crate::model::{NodeInfo, Snapshot};
use crate::solver::{self, PlanOptions, Strategy};

use super::scenario::{ClusterAutoscaler, NodeGroup};
use super::world::{STEP, World};

/// A policy's name as the CLI and the report spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Purser.
    Purser,
    /// Karpenter-like.
    Karpenter,
    /// Cluster Autoscaler-like.
    ClusterAutoscaler,
}

impl Policy {
    /// Every policy, in report order.
    pub const ALL: [Policy; 3] = [Policy::Purser, Policy::Karpenter, Policy::ClusterAutoscaler];

    /// `purser`, `karpenter`, `cluster-autoscaler`.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Purser => "purser",
            Policy::Karpenter => "karpenter",
            Policy::ClusterAutoscaler => "cluster-autoscaler",
        }
    }

    /// Parse a policy name.
    pub fn parse(text: &str) -> Option<Policy> {
        Policy::ALL.into_iter().find(|p| p.name() == text)
    }
}

/// Minutes between consolidation passes.
const DISRUPT_EVERY: i64 = 15;

/// Run one step of `policy`; `noticed` are nodes that got an interruption notice this step.
pub fn step(policy: Policy, world: &mut World, ca: &ClusterAutoscaler, noticed: &[String]) {
    match policy {
        Policy::ClusterAutoscaler => {
            scale_up(world, ca);
            scale_down(world, ca);
        }
        _ => {
            provision(policy, world);
            let tick = (world.now / STEP) % DISRUPT_EVERY == 0;
            if tick || !noticed.is_empty() {
                disrupt(policy, world);
            }
        }
    }
}

fn plan_options(policy: Policy, world: &World) -> PlanOptions {
    PlanOptions {
        strategy: if policy == Policy::Purser {
            Strategy::Ilp
        } else {
            Strategy::Ffd
        },
        time_limit: Duration::from_millis(100),
        unavailable: world.unavailable_now(),
        ..PlanOptions::default()
    }
}

/// What the policy may see: Karpenter has no dollar budgets.
fn view(policy: Policy, world: &World) -> Snapshot {
    let mut s = world.snapshot();
    if policy == Policy::Karpenter {
        s.budgets.clear();
        for p in &mut s.pools {
            p.max_hourly_cost = None;
        }
    }
    s
}

/// Launch the claims a plan asks for and nominate its pods to them; the Ready times of the
/// launched nodes, and whether every launch succeeded.
fn launch_claims(world: &mut World, snapshot: &Snapshot, claims: &[solver::plan::PlannedNode]) -> (Vec<i64>, bool) {
    let mut ready = vec![];
    let mut all = true;
    for claim in claims {
        let Some(info) = disruption::whatif::claim_node(snapshot, claim, "new", world.catalog, world.now, true) else {
            all = false;
            continue;
        };
        match world.launch(info, None) {
            Some(name) => {
                if let Some(n) = world.node_index(&name) {
                    ready.push(world.nodes[n].ready_at);
                }
                nominate(world, &claim.pods, &name);
            }
            None => all = false,
        }
    }
    (ready, all)
}

fn nominate(world: &mut World, pods: &[String], node: &str) {
    for p in world.pods.iter_mut().filter(|p| !p.done && pods.contains(&p.info.key)) {
        p.nominated = Some(node.to_string());
    }
}

fn timed<T>(world: &mut World, f: impl FnOnce(&mut World) -> T) -> T {
    let started = Instant::now();
    let out = f(world);
    world.ledger.decision_seconds.push(started.elapsed().as_secs_f64());
    out
}

/// Plan for pending pods that no live node is expected to take.
fn provision(policy: Policy, world: &mut World) {
    // A pod waits for a plan when nothing is coming for it: no nomination, its node is going
    // away, or its node is Ready and still did not take it (others took the room).
    let waiting = world.live_pods().any(|(_, p)| {
        p.info.node_name.is_none()
            && p.nominated
                .as_deref()
                .and_then(|n| world.node_index(n))
                .is_none_or(|n| world.nodes[n].terminate_at.is_some() || world.nodes[n].schedulable(world.now))
    });
    if !waiting {
        return;
    }
    let snapshot = view(policy, world);
    let options = plan_options(policy, world);
    let plan = timed(world, |w| solver::plan(&snapshot, w.catalog, &options));
    for e in &plan.existing_nodes {
        nominate(world, &e.pods, &e.node);
    }
    launch_claims(world, &snapshot, &plan.node_claims);
}

/// Consolidation, drift, expiry and interruptions through the disruption engine.
fn disrupt(policy: Policy, world: &mut World) {
    let snapshot = view(policy, world);
    let mut options = DisruptOptions::at(world.now);
    options.plan = plan_options(policy, world);
    options.search_time = Duration::from_millis(150);
    options.max_consolidation_nodes = 20;
    if policy == Policy::Karpenter {
        options.replacement = Replacement::ManyToOne;
        options.gpu_idle = false;
    }
    let decision = timed(world, |w| disruption::decide(&snapshot, w.catalog, &options));
    for command in decision.commands {
        let (ready, launched) = launch_claims(world, &snapshot, &command.node_claims);
        if !launched && command.reason != Reason::Interrupted {
            // A replacement could not be launched: keep the old nodes (the launched ones are
            // consolidated away later if they stay unused).
            continue;
        }
        for m in &command.moves {
            nominate(world, &m.pods, &m.node);
        }
        // Replacements first: the old nodes drain once the new ones are Ready.
        let at = ready.into_iter().max().unwrap_or(world.now).max(world.now);
        let reclaimed = matches!(command.reason, Reason::Empty | Reason::GpuIdle | Reason::Underutilized);
        for node in &command.nodes {
            world.terminate(node, at, reclaimed);
        }
    }
}

/// A node of group `g` (not launched): labels of its type, zone and capacity type, its taints.
fn group_node(world: &World, group: &NodeGroup, g: usize, zone: &str) -> Option<NodeInfo> {
    let it = world.catalog.find(&group.instance_type)?;
    let ct = CapacityType::parse(&group.capacity_type)?;
    let price = it
        .offerings
        .iter()
        .find(|o| o.zone == zone && o.capacity_type == ct)?
        .price;
    let mut l = it.labels.clone();
    l.insert(labels::INSTANCE_TYPE.into(), it.name.clone());
    l.extend(group.labels.clone());
    let l = solver::problem::with_offering(l, zone, ct);
    let taints = group
        .taints
        .iter()
        .filter_map(|t| {
            Some(crate::model::taints::Taint {
                key: t.get("key")?.as_str()?.to_string(),
                value: t.get("value").and_then(|v| v.as_str()).unwrap_or("").to_string(),
                effect: crate::model::taints::Effect::parse(t.get("effect")?.as_str()?)?,
            })
        })
        .collect();
    Some(NodeInfo {
        name: format!("{}-{g}", group.name),
        labels: l,
        taints,
        allocatable: it.allocatable.clone(),
        capacity: it.capacity.clone(),
        pool: None,
        instance_type: Some(it.name.clone()),
        capacity_type: Some(ct),
        zone: Some(zone.to_string()),
        price: Some(price),
        in_flight: false,
        cordoned: false,
        created: world.now,
        initialized: true,
        deleting: false,
        do_not_disrupt: false,
        pool_hash: None,
        last_pod_event: None,
        interruption: None,
    })
}

fn zones_of(world: &World, group: &NodeGroup) -> Vec<String> {
    let ct = CapacityType::parse(&group.capacity_type);
    world
        .catalog
        .find(&group.instance_type)
        .map(|it| {
            it.offerings
                .iter()
                .filter(|o| Some(o.capacity_type) == ct)
                .filter(|o| group.zones.is_empty() || group.zones.contains(&o.zone))
                .map(|o| o.zone.clone())
                .collect()
        })
        .unwrap_or_default()
}

fn admits(node: &NodeInfo, pod: &crate::model::pod::PodInfo) -> bool {
    pod.accepts_labels(&node.labels) && first_blocking(&node.taints, &pod.tolerations).is_none()
}

/// Cluster Autoscaler scale-up: pods that fit no live node (counting room on launching nodes)
/// get new nodes from the group the least-waste expander picks.
fn scale_up(world: &mut World, ca: &ClusterAutoscaler) {
    let started = Instant::now();
    let mut free: Vec<(usize, Resources)> = world
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.terminate_at.is_none())
        .map(|(i, n)| (i, n.info.allocatable.minus(&n.used)))
        .collect();
    let mut unfit: Vec<usize> = vec![];
    let pending: Vec<usize> = world
        .live_pods()
        .filter(|(_, p)| p.info.node_name.is_none())
        .map(|(i, _)| i)
        .collect();
    for i in pending {
        let pod = &world.pods[i].info;
        match free
            .iter_mut()
            .find(|(n, f)| admits(&world.nodes[*n].info, pod) && pod.requests.fits_in(f))
        {
            Some((_, f)) => f.sub(&pod.requests),
            None => unfit.push(i),
        }
    }
    let mut rounds = 0;
    while !unfit.is_empty() && rounds < ca.node_groups.len() {
        rounds += 1;
        let Some((g, zone, bins)) = least_waste(world, ca, &unfit) else {
            break;
        };
        for pods in bins {
            let Some(info) = group_node(world, &ca.node_groups[g], g, &zone) else {
                break;
            };
            let keys: Vec<String> = pods.iter().map(|&i| world.pods[i].info.key.clone()).collect();
            if let Some(name) = world.launch(info, Some(g)) {
                nominate(world, &keys, &name);
            }
            unfit.retain(|i| !pods.contains(i));
        }
    }
    if rounds > 0 {
        world.ledger.decision_seconds.push(started.elapsed().as_secs_f64());
    }
}

/// The group (and zone) that leaves the least CPU and memory unused when it takes the pods it
/// can of `unfit` (first-fit decreasing into new nodes, within its max size), with the bins.
fn least_waste(world: &World, ca: &ClusterAutoscaler, unfit: &[usize]) -> Option<(usize, String, Vec<Vec<usize>>)> {
    let mut best: Option<(f64, usize, String, Vec<Vec<usize>>)> = None;
    for (g, group) in ca.node_groups.iter().enumerate() {
        let zones = zones_of(world, group);
        let Some(zone) = zones.first() else { continue };
        let Some(template) = group_node(world, group, g, zone) else {
            continue;
        };
        let size = world.nodes.iter().filter(|n| n.group == Some(g)).count() as u32;
        let room = group.max_nodes.saturating_sub(size) as usize;
        let overhead =
            crate::model::daemonset::daemon_overhead(&world.base.daemonsets, &template.labels, &template.taints);
        let cap = template.allocatable.minus(&overhead);
        let mut bins: Vec<(Resources, Vec<usize>)> = vec![];
        for &i in unfit {
            let pod = &world.pods[i].info;
            if !admits(&template, pod) || !pod.requests.fits_in(&cap) {
                continue;
            }
            if let Some((f, v)) = bins.iter_mut().find(|(f, _)| pod.requests.fits_in(f)) {
                f.sub(&pod.requests);
                v.push(i);
            } else if bins.len() < room {
                let mut f = cap.clone();
                f.sub(&pod.requests);
                bins.push((f, vec![i]));
            }
        }
        if bins.is_empty() {
            continue;
        }
        let share = |r: &str, f: &Resources| {
            let c = cap.get(r).as_f64();
            if c > 0.0 { f.get(r).as_f64() / c } else { 0.0 }
        };
        let waste = bins
            .iter()
            .map(|(f, _)| share("cpu", f) + share("memory", f))
            .sum::<f64>()
            / bins.len() as f64;
        if best.as_ref().is_none_or(|b| waste < b.0 - 1e-12) {
            best = Some((waste, g, zone.clone(), bins.into_iter().map(|(_, v)| v).collect()));
        }
    }
    best.map(|(_, g, z, b)| (g, z, b))
}

/// Cluster Autoscaler scale-down: a node whose requested share (GPU share on GPU nodes; else
/// the larger of CPU and memory) stays under the threshold for the unneeded time, whose pods
/// may all be evicted and fit elsewhere, is drained and removed (empty nodes all at once,
/// at most one other node per step).
fn scale_down(world: &mut World, ca: &ClusterAutoscaler) {
    let now = world.now;
    let mut removed_busy = false;
    for n in 0..world.nodes.len() {
        if !world.nodes[n].schedulable(now) {
            continue;
        }
        let util = utilisation(world, n);
        if util >= ca.scale_down_utilization_threshold {
            world.nodes[n].unneeded_since = None;
            continue;
        }
        let since = *world.nodes[n].unneeded_since.get_or_insert(now);
        if ((now - since) as f64) < ca.scale_down_unneeded_minutes * 60.0 {
            continue;
        }
        let name = world.nodes[n].info.name.clone();
        let pods: Vec<usize> = world
            .live_pods()
            .filter(|(_, p)| p.info.node_name.as_deref() == Some(&name))
            .map(|(i, _)| i)
            .collect();
        if !pods.is_empty() && (removed_busy || !movable(world, n, &pods)) {
            continue;
        }
        removed_busy |= !pods.is_empty();
        for i in pods {
            world.evict(i);
        }
        world.terminate(&name, now, true);
    }
}

fn utilisation(world: &World, n: usize) -> f64 {
    let node = &world.nodes[n];
    let share = |r: &str| {
        let a = node.info.allocatable.get(r).as_f64();
        if a > 0.0 { node.used.get(r).as_f64() / a } else { 0.0 }
    };
    if node.gpus() > 0.0 {
        node.used.accelerators().as_f64() / node.gpus()
    } else {
        share("cpu").max(share("memory"))
    }
}

fn movable(world: &World, from: usize, pods: &[usize]) -> bool {
    if pods.iter().any(|&i| World::protected(&world.pods[i])) {
        return false;
    }
    let mut free: Vec<(usize, Resources)> = world
        .nodes
        .iter()
        .enumerate()
        .filter(|(i, n)| *i != from && n.schedulable(world.now))
        .map(|(i, n)| (i, n.info.allocatable.minus(&n.used)))
        .collect();
    pods.iter().all(|&i| {
        let pod = &world.pods[i].info;
        match free
            .iter_mut()
            .find(|(n, f)| admits(&world.nodes[*n].info, pod) && pod.requests.fits_in(f))
        {
            Some((_, f)) => {
                f.sub(&pod.requests);
                true
            }
            None => false,
        }
    })
}
