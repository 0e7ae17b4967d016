//! The plan the engine returns: new node claims, pods placed on existing nodes, pods that
//! cannot be placed (with the reason), the cost and a proven lower bound.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::Snapshot;

use super::packing::Assignment;
use super::problem::{KindSource, Problem};

/// One node to create.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedNode {
    /// NodePool.
    pub node_pool: String,
    /// Instance type.
    pub instance_type: String,
    /// `spot` or `on-demand`.
    pub capacity_type: String,
    /// Zone.
    pub zone: String,
    /// List price, USD/hour.
    pub hourly_price: f64,
    /// True when the price is an estimate (spot prices in the embedded catalog).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub price_estimated: bool,
    /// Allocatable after DaemonSets.
    pub allocatable: BTreeMap<String, String>,
    /// Pods (`namespace/name`).
    pub pods: Vec<String>,
}

/// Pending pods placed on an existing node (or in-flight claim).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExistingPlacement {
    /// Node name.
    pub node: String,
    /// Pods.
    pub pods: Vec<String>,
}

/// A pod the plan does not place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Unschedulable {
    /// `namespace/name`.
    pub pod: String,
    /// Why.
    pub reason: String,
}

/// How the plan was found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SolverReport {
    /// `ilp` or `ffd`.
    pub strategy: String,
    /// `optimal`, `feasible` or `fallback` (the greedy plan was returned).
    pub status: String,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Objective: list price plus expected spot interruption cost, USD/hour.
    pub objective: f64,
    /// Cost of the greedy baseline on the same input, when it was computed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_cost: Option<f64>,
}

/// The engine's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// New nodes.
    pub node_claims: Vec<PlannedNode>,
    /// Pods placed on existing capacity.
    pub existing_nodes: Vec<ExistingPlacement>,
    /// Pods not placed.
    pub unschedulable: Vec<Unschedulable>,
    /// Sum of the new nodes' list prices, USD/hour.
    pub hourly_cost: f64,
    /// A proven lower bound on the cost of any plan placing the same pods.
    pub lower_bound: f64,
    /// Solver details.
    pub solver: SolverReport,
}

/// Turn an assignment into named pods: within a class the earliest pods (by priority, then age)
/// are placed first.
pub fn materialize(
    problem: &Problem,
    snapshot: &Snapshot,
    assignment: &Assignment,
) -> (Vec<PlannedNode>, Vec<ExistingPlacement>, Vec<Unschedulable>) {
    let mut next: Vec<usize> = vec![0; problem.classes.len()];
    let mut take = |class: usize, units: u32| -> Vec<String> {
        let c = &problem.classes[class];
        let start = next[class];
        let end = (start + units as usize * c.unit_pods).min(c.pods.len());
        next[class] = end;
        c.pods[start..end]
            .iter()
            .map(|&p| snapshot.pods[p].key.clone())
            .collect()
    };
    let mut bins: Vec<&super::packing::Bin> = assignment.bins.iter().collect();
    bins.sort_by_key(|b| !problem.kinds[b.kind].is_existing());
    let mut claims = vec![];
    let mut existing: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for b in bins {
        let kind = &problem.kinds[b.kind];
        let mut pods: Vec<String> = b.counts.iter().flat_map(|&(c, n)| take(c, n)).collect();
        pods.sort();
        match kind.source {
            KindSource::Existing(ni) => existing
                .entry(snapshot.nodes[ni].name.clone())
                .or_default()
                .extend(pods),
            KindSource::New { pool, .. } => claims.push(PlannedNode {
                node_pool: problem.pools[pool].name.clone(),
                instance_type: kind.instance_type.clone(),
                capacity_type: kind.capacity_type.as_str().into(),
                zone: kind.zone.clone(),
                hourly_price: kind.price,
                price_estimated: kind.price_estimated,
                allocatable: kind.allocatable.to_strings(),
                pods,
            }),
        }
    }
    let mut unschedulable: Vec<Unschedulable> = problem
        .rejected
        .iter()
        .map(|(p, r)| Unschedulable {
            pod: snapshot.pods[*p].key.clone(),
            reason: r.clone(),
        })
        .collect();
    let mut reasons: Vec<Option<String>> = vec![None; problem.classes.len()];
    for (c, _, r) in &assignment.unplaced {
        reasons[*c].get_or_insert_with(|| r.clone());
    }
    for (c, class) in problem.classes.iter().enumerate() {
        for &p in &class.pods[next[c]..] {
            unschedulable.push(Unschedulable {
                pod: snapshot.pods[p].key.clone(),
                reason: reasons[c].clone().unwrap_or_else(|| "no node can hold it".into()),
            });
        }
    }
    unschedulable.sort_by(|a, b| a.pod.cmp(&b.pod));
    claims.sort_by(|a, b| {
        (
            a.node_pool.as_str(),
            a.instance_type.as_str(),
            a.capacity_type.as_str(),
            a.zone.as_str(),
            &a.pods,
        )
            .cmp(&(
                b.node_pool.as_str(),
                b.instance_type.as_str(),
                b.capacity_type.as_str(),
                b.zone.as_str(),
                &b.pods,
            ))
    });
    let existing = existing
        .into_iter()
        .map(|(node, mut pods)| {
            pods.sort();
            ExistingPlacement { node, pods }
        })
        .collect();
    (claims, existing, unschedulable)
}

/// Sum of new nodes' list prices.
pub fn list_cost(problem: &Problem, assignment: &Assignment) -> f64 {
    assignment
        .bins
        .iter()
        .filter(|b| !problem.kinds[b.kind].is_existing())
        .map(|b| problem.kinds[b.kind].price)
        .chain(std::iter::once(0.0))
        .sum()
}

/// Sum of new nodes' objective costs.
pub fn objective(problem: &Problem, assignment: &Assignment) -> f64 {
    assignment.bins.iter().map(|b| problem.kinds[b.kind].cost).sum()
}
