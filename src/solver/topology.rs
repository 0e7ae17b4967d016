//! Topology constraints above the node level (zone, capacity type, any label other than the
//! hostname): spread, affinity and anti-affinity are resolved before packing by pinning each
//! pending pod to one domain, water-filling so that every domain stays within maxSkew.
//!
//! In: the snapshot, the node kinds and the pending pods in placement order. Out: a domain pin
//! per constrained pod (`key=value`), and rejected pods with the reason.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::model::Snapshot;
use crate::model::labels::HOSTNAME;
use crate::model::pod::{LabelSelector, PodAffinityTerm, PodInfo, SpreadConstraint};
use crate::model::taints::first_blocking;

use super::problem::Kind;

/// A (selector, namespace scope, topology key) whose per-domain pod counts are tracked.
type Counter = (LabelSelector, Vec<String>, String);

/// The hard spread constraint of a pod already placed (running or pinned) in `domain`: pods
/// it counts may join that domain only while it stays within maxSkew of the least loaded
/// domain the placed pod is eligible for, so that every pod's constraint holds in the final
/// state whatever order the pods are bound in.
#[derive(Debug, Clone, PartialEq)]
struct Guard {
    selector: LabelSelector,
    namespace: String,
    key: String,
    domain: String,
    max_skew: u32,
    min_domains: Option<u32>,
    universe: BTreeSet<String>,
}

/// True when `pod` requires hostname affinity to pods matching its own labels and no running
/// pod matches: all such pods must then share one node.
pub fn is_hostname_self_affinity(pod: &PodInfo, snapshot: &Snapshot) -> bool {
    pod.pod_affinity
        .iter()
        .any(|t| is_hostname_self_affinity_term(t, pod, snapshot))
}

/// True when `term` (one of `pod`'s required affinity terms) is on the hostname, selects `pod`
/// itself and no running pod: the pods it selects must start their group on one node.
pub fn is_hostname_self_affinity_term(term: &PodAffinityTerm, pod: &PodInfo, snapshot: &Snapshot) -> bool {
    term.topology_key == HOSTNAME
        && term.selects(&pod.namespace, &pod.labels)
        && !snapshot
            .pods
            .iter()
            .any(|p| !p.is_pending() && term.selects(&p.namespace, &p.labels))
}

/// True when `pod` may only go to an existing node: a hostname affinity term that its own labels
/// do not satisfy (it must join running pods, or wait for the pods it follows).
pub fn needs_existing_host(pod: &PodInfo, snapshot: &Snapshot) -> bool {
    pod.pod_affinity.iter().any(|t| {
        t.topology_key == HOSTNAME
            && (snapshot
                .pods
                .iter()
                .any(|p| !p.is_pending() && t.selects(&p.namespace, &p.labels))
                || !t.selects(&pod.namespace, &pod.labels))
    })
}

fn domain_keys(pod: &PodInfo) -> Vec<String> {
    let mut keys: BTreeSet<String> = BTreeSet::new();
    keys.extend(pod.spread.iter().map(|s| s.topology_key.clone()));
    keys.extend(pod.pod_affinity.iter().map(|t| t.topology_key.clone()));
    keys.extend(pod.pod_anti_affinity.iter().map(|t| t.topology_key.clone()));
    keys.remove(HOSTNAME);
    keys.into_iter().collect()
}

fn scope(namespaces: &[String], p: &PodInfo) -> bool {
    namespaces.is_empty() || namespaces.contains(&p.namespace)
}

/// Pin pending pods with domain-level constraints to a domain.
pub fn domain_pins(
    snapshot: &Snapshot,
    kinds: &[Kind],
    pending: &[usize],
    rejected: &mut Vec<(usize, String)>,
) -> HashMap<usize, (String, String)> {
    let mut pins: HashMap<usize, (String, String)> = HashMap::new();
    let mut counters: HashMap<Counter, BTreeMap<String, i64>> = HashMap::new();
    let node_domain = |node: &str, key: &str| -> Option<String> {
        snapshot
            .nodes
            .iter()
            .find(|n| n.name == node)
            .and_then(|n| n.labels.get(key).cloned())
    };
    let mut domain_cache: HashMap<String, BTreeSet<String>> = HashMap::new();
    let mut eligible_cache: HashMap<String, Vec<usize>> = HashMap::new();
    let mut universe_cache: HashMap<String, BTreeSet<String>> = HashMap::new();
    let spreads = pending_spreads(snapshot, pending);
    let universe_of = |pod: &PodInfo, key: &str| -> BTreeSet<String> {
        kinds
            .iter()
            .map(|k| &*k.labels)
            .chain(snapshot.nodes.iter().filter(|n| n.cordoned).map(|n| &n.labels))
            .filter(|labels| pod.accepts_labels(labels))
            .filter_map(|labels| labels.get(key).cloned())
            .collect()
    };
    let mut guards: Vec<Guard> = vec![];
    for p in snapshot.pods.iter().filter(|p| !p.is_pending()) {
        for s in p.spread.iter().filter(|s| s.hard && s.topology_key != HOSTNAME) {
            let Some(domain) = p.node_name.as_deref().and_then(|n| node_domain(n, &s.topology_key)) else {
                continue;
            };
            let mut universe = universe_of(p, &s.topology_key);
            universe.insert(domain.clone());
            let g = Guard {
                selector: s.selector.clone(),
                namespace: p.namespace.clone(),
                key: s.topology_key.clone(),
                domain,
                max_skew: s.max_skew,
                min_domains: s.min_domains,
                universe,
            };
            if !guards.contains(&g) {
                guards.push(g);
            }
        }
    }
    for &pi in pending {
        let pod = &snapshot.pods[pi];
        let keys = domain_keys(pod);
        // A pod without constraints of its own that a pending pod's spread selector counts is
        // spread with it, so that the final per-domain counts stay balanced.
        let inherited = if keys.is_empty() {
            inherited_spread(&spreads, pod)
        } else {
            None
        };
        let Some(key) = keys
            .first()
            .cloned()
            .or_else(|| inherited.as_ref().map(|s| s.topology_key.clone()))
        else {
            continue;
        };
        let sig = format!(
            "{:?}{:?}{:?}{:?}",
            pod.node_selector, pod.node_affinity, pod.tolerations, pod.requests
        );
        let domains_key = format!("{key}{sig}");
        let compatible = eligible_cache.entry(sig).or_insert_with(|| {
            kinds
                .iter()
                .enumerate()
                .filter(|(_, k)| pod.accepts_labels(&k.labels) && first_blocking(&k.taints, &pod.tolerations).is_none())
                .map(|(i, _)| i)
                .collect()
        });
        // Pods of one shape share their domains: look them up once per shape and key.
        let mut domains: BTreeSet<String> = domain_cache
            .entry(domains_key)
            .or_insert_with(|| {
                compatible
                    .iter()
                    .filter_map(|&k| kinds[k].labels.get(&key).cloned())
                    .collect()
            })
            .clone();
        if domains.is_empty() {
            // No node could take it in any domain: not a topology matter; the class gets no
            // kind and the reason names what does not fit.
            continue;
        }
        // Spread skew is measured over every domain whose nodes the pod's node selector and
        // affinity accept, whether or not it tolerates their taints (nodeTaintsPolicy defaults
        // to Ignore) and whether or not they are cordoned.
        let universe_key = format!("{key}{:?}{:?}", pod.node_selector, pod.node_affinity);
        let mut universe: BTreeSet<String> = universe_cache
            .entry(universe_key)
            .or_insert_with(|| universe_of(pod, &key))
            .clone();
        universe.extend(domains.iter().cloned());
        let mut count_of = |sel: &LabelSelector, ns: &[String]| -> BTreeMap<String, i64> {
            let c: Counter = (sel.clone(), ns.to_vec(), key.clone());
            counters
                .entry(c)
                .or_insert_with(|| {
                    let mut m = BTreeMap::new();
                    for p in snapshot
                        .pods
                        .iter()
                        .filter(|p| !p.is_pending() && scope(ns, p) && sel.matches(&p.labels))
                    {
                        if let Some(d) = p.node_name.as_deref().and_then(|n| node_domain(n, &key)) {
                            *m.entry(d).or_insert(0) += 1;
                        }
                    }
                    for (q, (k, d)) in pins.iter() {
                        let p = &snapshot.pods[*q];
                        if *k == key && scope(ns, p) && sel.matches(&p.labels) {
                            *m.entry(d.clone()).or_insert(0) += 1;
                        }
                    }
                    m
                })
                .clone()
        };
        for t in pod.pod_anti_affinity.iter().filter(|t| t.topology_key == key) {
            let counts = count_of(&t.selector, &t.namespaces);
            domains.retain(|d| counts.get(d).copied().unwrap_or(0) == 0);
        }
        let mut follow: Option<String> = None;
        let mut waits = false;
        for t in pod.pod_affinity.iter().filter(|t| t.topology_key == key) {
            let counts = count_of(&t.selector, &t.namespaces);
            let occupied: BTreeSet<String> = counts.iter().filter(|(_, c)| **c > 0).map(|(d, _)| d.clone()).collect();
            if occupied.is_empty() {
                if !t.selects(&pod.namespace, &pod.labels) {
                    waits = true;
                }
            } else {
                domains.retain(|d| occupied.contains(d));
                follow = domains.iter().next().cloned();
            }
        }
        if waits {
            rejected.push((
                pi,
                format!("required pod affinity on {key}: no running pod matches yet, so it waits for them"),
            ));
            continue;
        }
        for g in guards
            .iter()
            .filter(|g| g.key == key && g.namespace == pod.namespace && g.selector.matches(&pod.labels))
        {
            let counts = count_of(&g.selector, std::slice::from_ref(&g.namespace));
            let count = |d: &String| counts.get(d).copied().unwrap_or(0);
            let below_min_domains = g.min_domains.is_some_and(|m| (g.universe.len() as u32) < m);
            let others_min = if below_min_domains {
                0
            } else {
                g.universe
                    .iter()
                    .filter(|u| **u != g.domain)
                    .map(count)
                    .min()
                    .unwrap_or(i64::MAX)
            };
            let after = count(&g.domain) + 1;
            if after - others_min.min(after) > g.max_skew as i64 {
                domains.remove(&g.domain);
            }
        }
        if domains.is_empty() {
            rejected.push((pi, format!("no {key} domain satisfies its topology constraints")));
            continue;
        }
        let mut chosen = follow;
        let mut reject_reason = None;
        let spread = pod
            .spread
            .iter()
            .find(|s| s.topology_key == key)
            .or(inherited.as_ref())
            .filter(|_| chosen.is_none());
        if let Some(s) = spread {
            let ns = vec![pod.namespace.clone()];
            let counts = count_of(&s.selector, &ns);
            let count = |d: &String| counts.get(d).copied().unwrap_or(0);
            let below_min_domains = s.min_domains.is_some_and(|m| (universe.len() as u32) < m);
            let global_min = if below_min_domains {
                0
            } else {
                universe.iter().map(count).min().unwrap_or(0)
            };
            let own = i64::from(s.selector.matches(&pod.labels));
            let best = domains.iter().min_by_key(|d| (count(d), (*d).clone())).cloned();
            let too_skewed = best
                .as_ref()
                .is_some_and(|d| s.hard && count(d) + own - global_min > s.max_skew as i64);
            if too_skewed {
                reject_reason = Some(format!(
                    "topology spread on {key} (maxSkew {}, minDomains {}) cannot be satisfied",
                    s.max_skew,
                    s.min_domains.unwrap_or(1)
                ));
            }
            chosen = best;
        }
        if let Some(reason) = reject_reason {
            rejected.push((pi, reason));
            continue;
        }
        let domain = chosen.unwrap_or_else(|| domains.iter().next().cloned().unwrap_or_default());
        for ((sel, ns, k), counts) in counters.iter_mut() {
            if *k == key && scope(ns, pod) && sel.matches(&pod.labels) {
                *counts.entry(domain.clone()).or_insert(0) += 1;
            }
        }
        for s in pod.spread.iter().filter(|s| s.hard && s.topology_key == key) {
            let g = Guard {
                selector: s.selector.clone(),
                namespace: pod.namespace.clone(),
                key: key.clone(),
                domain: domain.clone(),
                max_skew: s.max_skew,
                min_domains: s.min_domains,
                universe: universe.clone(),
            };
            if !guards.contains(&g) {
                guards.push(g);
            }
        }
        pins.insert(pi, (key, domain));
    }
    pins
}

/// The domain-level spread constraints of pending pods, then of running pods, with the
/// namespace they count in.
fn pending_spreads(snapshot: &Snapshot, pending: &[usize]) -> Vec<(String, SpreadConstraint)> {
    let mut out: Vec<(String, SpreadConstraint)> = vec![];
    let running = snapshot.pods.iter().filter(|p| !p.is_pending());
    for pod in pending.iter().map(|&pi| &snapshot.pods[pi]).chain(running) {
        for s in pod.spread.iter().filter(|s| s.topology_key != HOSTNAME) {
            if !out.iter().any(|(ns, o)| *ns == pod.namespace && o == s) {
                out.push((pod.namespace.clone(), s.clone()));
            }
        }
    }
    out
}

/// The first pending spread constraint whose selector counts `pod`, as a soft constraint
/// (it balances the pod but never makes it unschedulable).
fn inherited_spread(spreads: &[(String, SpreadConstraint)], pod: &PodInfo) -> Option<SpreadConstraint> {
    spreads
        .iter()
        .find(|(ns, s)| *ns == pod.namespace && s.selector.matches(&pod.labels))
        .map(|(_, s)| SpreadConstraint {
            hard: false,
            ..s.clone()
        })
}
