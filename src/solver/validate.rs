//! An independent check of a plan against the snapshot and the catalog, written from the
//! Kubernetes rules rather than from the solver's data structures. Tests run every plan
//! through it; it returns one line per violated rule.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::catalog::{CapacityType, Catalog};
use crate::cost::UnitPrices;
use crate::model::Snapshot;
use crate::model::daemonset::daemon_overhead;
use crate::model::labels::{self, HOSTNAME};
use crate::model::pod::PodInfo;
use crate::model::resources::{CPU, Resources};
use crate::model::taints::first_blocking;

use super::Plan;

/// A node as the validator sees it: labels, taints, allocatable, pods, pool, price.
struct VNode {
    name: String,
    labels: BTreeMap<String, String>,
    pool: Option<String>,
    price: f64,
    capacity: Resources,
    capacity_type: CapacityType,
    pods: Vec<usize>,
    new: bool,
}

/// Every rule the plan breaks (empty when it is valid).
pub fn violations(snapshot: &Snapshot, catalog: &Catalog, plan: &Plan) -> Vec<String> {
    let mut out = vec![];
    let index: HashMap<&str, usize> = snapshot
        .pods
        .iter()
        .enumerate()
        .map(|(i, p)| (p.key.as_str(), i))
        .collect();
    let mut seen: HashSet<String> = HashSet::new();
    let mut mention = |pod: &str, out: &mut Vec<String>| {
        if !seen.insert(pod.to_string()) {
            out.push(format!("pod {pod} appears more than once"));
        }
    };
    let mut nodes: Vec<VNode> = vec![];
    for n in &snapshot.nodes {
        let pods = snapshot
            .pods
            .iter()
            .enumerate()
            .filter(|(_, p)| p.node_name.as_deref() == Some(&n.name))
            .map(|(i, _)| i)
            .collect();
        nodes.push(VNode {
            name: n.name.clone(),
            labels: n.labels.clone(),
            pool: n.pool.clone(),
            price: n.price.unwrap_or(0.0),
            capacity: n.capacity.clone(),
            capacity_type: n.capacity_type.unwrap_or(CapacityType::OnDemand),
            pods,
            new: false,
        });
    }
    for e in &plan.existing_nodes {
        let Some(ni) = nodes.iter().position(|n| n.name == e.node) else {
            out.push(format!("existing node {} does not exist", e.node));
            continue;
        };
        let node = &snapshot.nodes[ni];
        let mut free = node.allocatable.clone();
        for p in snapshot.pods_on(&node.name) {
            free.sub(&p.requests);
        }
        if node.in_flight {
            free.sub(&daemon_overhead(&snapshot.daemonsets, &node.labels, &node.taints));
        }
        let mut sum = Resources::new();
        for key in &e.pods {
            mention(key, &mut out);
            let Some(&pi) = index.get(key.as_str()) else {
                out.push(format!("unknown pod {key}"));
                continue;
            };
            let pod = &snapshot.pods[pi];
            check_fit_labels(pod, &node.labels, &node.taints, &e.node, &mut out);
            if node.cordoned {
                out.push(format!("pod {key} placed on cordoned node {}", e.node));
            }
            sum.add(&pod.requests);
            nodes[ni].pods.push(pi);
        }
        if !sum.fits_in(&free) {
            out.push(format!(
                "existing node {} over capacity: {:?}",
                e.node,
                sum.exceeding(&free).collect::<Vec<_>>()
            ));
        }
    }
    for (i, c) in plan.node_claims.iter().enumerate() {
        let name = format!("new-{i}");
        let Some(it) = catalog.find(&c.instance_type) else {
            out.push(format!("{name}: unknown instance type {}", c.instance_type));
            continue;
        };
        let Some(ct) = CapacityType::parse(&c.capacity_type) else {
            out.push(format!("{name}: bad capacity type"));
            continue;
        };
        match it.offerings.iter().find(|o| o.zone == c.zone && o.capacity_type == ct) {
            Some(o) if (o.price - c.hourly_price).abs() < 1e-9 => {}
            _ => out.push(format!(
                "{name}: no offering {} {} {} at {}",
                c.instance_type, c.zone, c.capacity_type, c.hourly_price
            )),
        }
        let Some(pool) = snapshot.pools.iter().find(|p| p.name == c.node_pool) else {
            out.push(format!("{name}: unknown pool {}", c.node_pool));
            continue;
        };
        let mut labels = it.labels.clone();
        labels.extend(pool.labels.clone());
        labels.insert(labels::ZONE.into(), c.zone.clone());
        labels.insert(labels::CAPACITY_TYPE.into(), c.capacity_type.clone());
        labels.insert(labels::KARPENTER_CAPACITY_TYPE.into(), c.capacity_type.clone());
        labels.insert(labels::NODEPOOL.into(), pool.name.clone());
        labels.insert(labels::KARPENTER_NODEPOOL.into(), pool.name.clone());
        labels.insert(labels::INSTANCE_TYPE.into(), it.name.clone());
        if !catalog.region.is_empty() {
            labels.insert(labels::REGION.into(), catalog.region.clone());
        }
        for r in &pool.requirements.0 {
            if r.op == crate::model::requirements::Operator::In
                && r.values.len() == 1
                && !labels::is_offering_key(&r.key)
            {
                labels.entry(r.key.clone()).or_insert_with(|| r.values[0].clone());
            }
        }
        if let Some(r) = pool.requirements.first_failure(&labels) {
            out.push(format!(
                "{name}: pool {} requirement {r} not met by {}",
                pool.name, c.instance_type
            ));
        }
        let mut free = it
            .allocatable
            .minus(&daemon_overhead(&snapshot.daemonsets, &labels, &pool.taints));
        let mut pods = vec![];
        for key in &c.pods {
            mention(key, &mut out);
            let Some(&pi) = index.get(key.as_str()) else {
                out.push(format!("unknown pod {key}"));
                continue;
            };
            check_fit_labels(&snapshot.pods[pi], &labels, &pool.taints, &name, &mut out);
            free.sub(&snapshot.pods[pi].requests);
            pods.push(pi);
        }
        if free.0.values().any(|q| *q < crate::model::quantity::Quantity::ZERO) {
            out.push(format!("{name} ({}) over capacity", c.instance_type));
        }
        nodes.push(VNode {
            name,
            labels,
            pool: Some(pool.name.clone()),
            price: c.hourly_price,
            capacity: it.capacity.clone(),
            capacity_type: ct,
            pods,
            new: true,
        });
    }
    for u in &plan.unschedulable {
        mention(&u.pod, &mut out);
        if u.reason.is_empty() {
            out.push(format!("pod {} unschedulable without a reason", u.pod));
        }
    }
    let seen: HashSet<String> = plan
        .node_claims
        .iter()
        .flat_map(|c| c.pods.iter())
        .chain(plan.existing_nodes.iter().flat_map(|e| e.pods.iter()))
        .chain(plan.unschedulable.iter().map(|u| &u.pod))
        .cloned()
        .collect();
    for (_, p) in snapshot.pending() {
        if !seen.contains(&p.key) {
            out.push(format!("pending pod {} missing from the plan", p.key));
        }
    }
    check_node_rules(snapshot, &nodes, &mut out);
    check_globals(snapshot, &nodes, &mut out);
    let cost: f64 = plan.node_claims.iter().map(|c| c.hourly_price).sum();
    if (cost - plan.hourly_cost).abs() > 1e-6 {
        out.push(format!(
            "hourlyCost {} is not the sum of prices {}",
            plan.hourly_cost, cost
        ));
    }
    if plan.lower_bound > plan.hourly_cost + 1e-6 {
        out.push(format!(
            "lowerBound {} above hourlyCost {}",
            plan.lower_bound, plan.hourly_cost
        ));
    }
    out
}

fn check_fit_labels(
    pod: &PodInfo,
    labels: &BTreeMap<String, String>,
    taints: &[crate::model::taints::Taint],
    node: &str,
    out: &mut Vec<String>,
) {
    if !pod.accepts_labels(labels) {
        out.push(format!(
            "pod {} on {node}: node selector/affinity not satisfied",
            pod.key
        ));
    }
    if let Some(t) = first_blocking(taints, &pod.tolerations) {
        out.push(format!("pod {} on {node}: taint {} not tolerated", pod.key, t.key));
    }
}

fn check_node_rules(snapshot: &Snapshot, nodes: &[VNode], out: &mut Vec<String>) {
    let pods = &snapshot.pods;
    // Pods per topology domain, for the pod (anti-)affinity terms above the node level.
    let mut domains: HashMap<(&str, &str), Vec<usize>> = HashMap::new();
    for p in pods
        .iter()
        .flat_map(|p| p.pod_affinity.iter().chain(&p.pod_anti_affinity))
    {
        let key = p.topology_key.as_str();
        if key == HOSTNAME || domains.keys().any(|(k, _)| *k == key) {
            continue;
        }
        for m in nodes {
            if let Some(v) = m.labels.get(key) {
                domains.entry((key, v.as_str())).or_default().extend(&m.pods);
            }
        }
        domains.entry((key, "")).or_default();
    }
    let mut matches: HashMap<&crate::model::pod::PodAffinityTerm, usize> = HashMap::new();
    for n in nodes {
        for (i, &a) in n.pods.iter().enumerate() {
            let pa = &pods[a];
            for &b in &n.pods[i + 1..] {
                let pb = &pods[b];
                if pa
                    .host_ports
                    .iter()
                    .any(|x| pb.host_ports.iter().any(|y| x.conflicts(y)))
                {
                    out.push(format!(
                        "pods {} and {} share a host port on {}",
                        pa.key, pb.key, n.name
                    ));
                }
            }
            for &b in &n.pods {
                if a == b {
                    continue;
                }
                let pb = &pods[b];
                for t in pa.pod_anti_affinity.iter().filter(|t| t.topology_key == HOSTNAME) {
                    if t.selects(&pb.namespace, &pb.labels) {
                        out.push(format!("pod {} has anti-affinity to {} on {}", pa.key, pb.key, n.name));
                    }
                }
            }
            for t in pa.pod_affinity.iter().filter(|t| t.topology_key == HOSTNAME) {
                let satisfied = n
                    .pods
                    .iter()
                    .any(|&b| b != a && t.selects(&pods[b].namespace, &pods[b].labels));
                let nobody_else = !nodes
                    .iter()
                    .flat_map(|m| &m.pods)
                    .any(|&b| b != a && t.selects(&pods[b].namespace, &pods[b].labels));
                let first_of_group = nobody_else && t.selects(&pa.namespace, &pa.labels);
                if !satisfied && !first_of_group {
                    out.push(format!("pod {} hostname affinity not satisfied on {}", pa.key, n.name));
                }
            }
            for t in pa.pod_anti_affinity.iter().filter(|t| t.topology_key != HOSTNAME) {
                let Some(d) = n.labels.get(&t.topology_key) else {
                    continue;
                };
                let same = domains
                    .get(&(t.topology_key.as_str(), d.as_str()))
                    .map(Vec::as_slice)
                    .unwrap_or(&[]);
                for &b in same.iter().filter(|&&b| b != a) {
                    if t.selects(&pods[b].namespace, &pods[b].labels) {
                        out.push(format!(
                            "pod {} has anti-affinity to {} in {}={d}",
                            pa.key, pods[b].key, t.topology_key
                        ));
                    }
                }
            }
            for t in pa.pod_affinity.iter().filter(|t| t.topology_key != HOSTNAME) {
                let d = n.labels.get(&t.topology_key);
                let same = d
                    .and_then(|d| domains.get(&(t.topology_key.as_str(), d.as_str())))
                    .map(Vec::as_slice)
                    .unwrap_or(&[]);
                let satisfied = same
                    .iter()
                    .any(|&b| b != a && t.selects(&pods[b].namespace, &pods[b].labels));
                let selected = *matches.entry(t).or_insert_with(|| {
                    nodes
                        .iter()
                        .flat_map(|m| &m.pods)
                        .filter(|&&b| t.selects(&pods[b].namespace, &pods[b].labels))
                        .count()
                });
                let me = t.selects(&pa.namespace, &pa.labels);
                let first_of_group = me && selected == 1;
                if !satisfied && !first_of_group {
                    out.push(format!(
                        "pod {} affinity on {} not satisfied on {}",
                        pa.key, t.topology_key, n.name
                    ));
                }
            }
            for s in pa.spread.iter().filter(|s| s.hard) {
                let count = |m: &VNode| {
                    m.pods
                        .iter()
                        .filter(|&&b| pods[b].namespace == pa.namespace && s.selector.matches(&pods[b].labels))
                        .count() as i64
                };
                let domain_of = |m: &VNode| m.labels.get(&s.topology_key).cloned().unwrap_or_else(|| m.name.clone());
                let eligible: Vec<&VNode> = nodes.iter().filter(|m| pa.accepts_labels(&m.labels)).collect();
                let mut per: BTreeMap<String, i64> = BTreeMap::new();
                for m in &eligible {
                    *per.entry(domain_of(m)).or_insert(0) += count(m);
                }
                let min = if s.topology_key == HOSTNAME || s.min_domains.is_some_and(|d| (per.len() as u32) < d) {
                    0
                } else {
                    per.values().copied().min().unwrap_or(0)
                };
                let mine = per.get(&domain_of(n)).copied().unwrap_or(0);
                if mine - min > s.max_skew as i64 {
                    out.push(format!(
                        "pod {} spread on {} skew {} > {}",
                        pa.key,
                        s.topology_key,
                        mine - min,
                        s.max_skew
                    ));
                }
            }
        }
    }
}

fn check_globals(snapshot: &Snapshot, nodes: &[VNode], out: &mut Vec<String>) {
    for pool in &snapshot.pools {
        let members: Vec<&VNode> = nodes.iter().filter(|n| n.pool.as_deref() == Some(&pool.name)).collect();
        if !members.iter().any(|n| n.new) {
            continue;
        }
        for name in pool.limits.names() {
            let used: f64 = members
                .iter()
                .map(|n| {
                    if name == "nodes" {
                        1.0
                    } else {
                        n.capacity.get(name).as_f64()
                    }
                })
                .sum();
            if used > pool.limits.get(name).as_f64() + 1e-9 {
                out.push(format!(
                    "pool {} limit {name}: {used} > {}",
                    pool.name,
                    pool.limits.get(name)
                ));
            }
        }
        let cost: f64 = members.iter().map(|n| n.price).sum();
        if let Some(max) = pool.max_hourly_cost.filter(|max| cost > max + 1e-6) {
            out.push(format!("pool {} budget: {cost:.4} > {max}", pool.name));
        }
        if pool.min_on_demand_percent > 0.0 {
            let cpu = |n: &&&VNode| {
                n.pods
                    .iter()
                    .map(|&p| snapshot.pods[p].requests.get(CPU).as_f64())
                    .sum::<f64>()
            };
            let total: f64 = members.iter().map(|n| cpu(&n)).sum();
            let od: f64 = members
                .iter()
                .filter(|n| n.capacity_type == CapacityType::OnDemand)
                .map(|n| cpu(&n))
                .sum();
            if od + 1e-6 < pool.min_on_demand_percent / 100.0 * total {
                out.push(format!("pool {} capacity mix: on-demand {od} of {total}", pool.name));
            }
        }
    }
    for b in &snapshot.budgets {
        let mut alloc = 0.0;
        let mut touched_new = false;
        for n in nodes {
            let unit = UnitPrices::split(n.price, &n.capacity);
            for &p in &n.pods {
                if b.covers(&snapshot.pods[p]) {
                    alloc += unit.allocate(&snapshot.pods[p].requests);
                    touched_new |= n.new || snapshot.pods[p].is_pending();
                }
            }
        }
        if touched_new && alloc > b.max_hourly_cost + 1e-6 {
            out.push(format!("budget {}: {alloc:.4} > {}", b.name, b.max_hourly_cost));
        }
    }
}
