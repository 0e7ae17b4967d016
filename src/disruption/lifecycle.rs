//! Decisions that do not depend on savings: interruption notices, expiry and drift. Each
//! replaces one node with whatever the planner finds for its pods.

use crate::catalog::CapacityType;
use crate::model::disruption::{InterruptionKind, Reason};
use crate::model::{NodeInfo, Pool};
use crate::solver::Plan;

use super::candidates::{pool_of, protection};
use super::{Action, Command, State, budgets, whatif};

/// Replace nodes with a spot interruption warning or scheduled maintenance at once, and
/// pre-launch for a rebalance recommendation when the pool opts in. Protections and budgets do
/// not apply: the node goes away regardless.
pub fn interruptions(state: &mut State) {
    let nodes: Vec<NodeInfo> = state
        .input
        .nodes
        .iter()
        .filter(|n| n.interruption.is_some() && pool_of(state.input, n).is_some())
        .cloned()
        .collect();
    for node in nodes {
        let Some(kind) = node.interruption else { continue };
        let pool = pool_of(state.input, &node).map(|p| p.disruption.prelaunch_on_rebalance);
        if kind == InterruptionKind::Rebalance && pool != Some(true) {
            state.block(
                &node.name,
                "rebalance recommendation: the NodePool does not pre-launch (spec.disruption.prelaunchOnRebalance)"
                    .into(),
            );
            continue;
        }
        if let (Some(it), Some(zone), Some(ct)) = (&node.instance_type, &node.zone, node.capacity_type) {
            state.plan.unavailable.insert((it.clone(), zone.clone(), ct));
        }
        let names = vec![node.name.clone()];
        let plan = whatif::plan_without(&state.work, &names, state.catalog, &state.plan);
        let detail = format!(
            "{kind:?} notice; offering {} {} {} unavailable to replacements for {}s",
            node.instance_type.as_deref().unwrap_or("?"),
            node.zone.as_deref().unwrap_or("?"),
            node.capacity_type.unwrap_or(CapacityType::OnDemand).as_str(),
            state.options.unavailable_for
        );
        let command = command_from_plan(state, names, Reason::Interrupted, &plan, detail);
        state.accept(command);
    }
}

/// Replace nodes older than their pool's `expireAfter`.
pub fn expired(state: &mut State) {
    let now = state.options.now;
    let due: Vec<(NodeInfo, i64)> = managed(state)
        .into_iter()
        .filter_map(|(node, pool)| {
            let ttl = pool.disruption.expire_after?;
            (node.created > 0 && now >= node.created + ttl).then_some((node, ttl))
        })
        .collect();
    for (node, ttl) in due {
        let age = now - node.created;
        replace_one(
            state,
            &node,
            Reason::Expired,
            format!("age {age}s >= expireAfter {ttl}s"),
        );
    }
}

/// Replace nodes whose NodePool template no longer matches them, within the Drifted budget.
pub fn drifted(state: &mut State) {
    let drifted: Vec<(NodeInfo, String)> = managed(state)
        .into_iter()
        .filter_map(|(node, pool)| drift(&node, pool, state.catalog).map(|why| (node, why)))
        .collect();
    for (node, why) in drifted {
        let Some(pool) = pool_of(state.input, &node) else {
            continue;
        };
        if budgets::remaining(
            state.input,
            pool,
            Reason::Drifted,
            &state.budget_used,
            state.options.now,
        ) == 0
        {
            state.block(
                &node.name,
                format!("drifted ({why}) but the Drifted disruption budget is used up"),
            );
            continue;
        }
        replace_one(state, &node, Reason::Drifted, why);
    }
}

/// Why `node` no longer matches `pool`, if it does not: a changed template hash, a requirement
/// its labels fail, a template label or taint it lacks.
pub fn drift(node: &NodeInfo, pool: &Pool, catalog: &crate::catalog::Catalog) -> Option<String> {
    if let Some(hash) = &node.pool_hash
        && !pool.template_hash.is_empty()
        && hash != &pool.template_hash
    {
        return Some(format!(
            "NodePool template changed (node hash {hash}, template hash {})",
            pool.template_hash
        ));
    }
    let mut labels = node
        .instance_type
        .as_deref()
        .and_then(|t| catalog.find(t))
        .map(|it| it.labels.clone())
        .unwrap_or_default();
    labels.extend(node.labels.clone());
    if let Some(r) = pool.requirements.first_failure(&labels) {
        return Some(format!("requirement {r} no longer matches"));
    }
    if let Some((k, v)) = pool.labels.iter().find(|(k, v)| node.labels.get(*k) != Some(*v)) {
        return Some(format!("template label {k}={v} missing"));
    }
    pool.taints
        .iter()
        .find(|t| !node.taints.contains(t))
        .map(|t| format!("template taint {}={}:{:?} missing", t.key, t.value, t.effect))
}

/// Managed, undecided nodes of the input with their pool, by name.
fn managed<'a>(state: &State<'a>) -> Vec<(NodeInfo, &'a Pool)> {
    state
        .input
        .nodes
        .iter()
        .filter(|n| !n.in_flight && !state.decided.contains(&n.name))
        .filter_map(|n| pool_of(state.input, n).map(|p| (n.clone(), p)))
        .collect()
}

/// Replace one node when nothing protects it and its pods all fit elsewhere.
fn replace_one(state: &mut State, node: &NodeInfo, reason: Reason, why: String) {
    if state.decided.contains(&node.name) {
        return;
    }
    if let Some(p) = protection(&state.work, &state.index, node, &state.pdb_left, state.options.now) {
        state.block(&node.name, format!("{} ({why}) but {p}", reason.as_str()));
        return;
    }
    let names = vec![node.name.clone()];
    if let Some(why) = super::candidates::pdb_shortfall(&state.work, &state.index, &names, &state.pdb_left) {
        state.block(&node.name, format!("{} but {why}", reason.as_str()));
        return;
    }
    let plan = whatif::plan_without(&state.work, &names, state.catalog, &state.plan);
    if let Some(u) = plan.unschedulable.first() {
        state.block(
            &node.name,
            format!(
                "{} ({why}) but pod {} cannot move: {}",
                reason.as_str(),
                u.pod,
                u.reason
            ),
        );
        return;
    }
    let command = command_from_plan(state, names, reason, &plan, why);
    state.accept(command);
}

/// A command that replaces `nodes` by what `plan` launches and moves.
pub fn command_from_plan(
    state: &State,
    mut nodes: Vec<String>,
    reason: Reason,
    plan: &Plan,
    detail: String,
) -> Command {
    nodes.sort();
    let cost_before: f64 = nodes
        .iter()
        .filter_map(|n| state.work.nodes.iter().find(|x| &x.name == n))
        .map(super::candidates::price)
        .sum();
    let cost_after = plan.hourly_cost;
    let action = if plan.node_claims.is_empty() {
        Action::Delete
    } else {
        Action::Replace
    };
    Command {
        action,
        reason,
        nodes,
        node_claims: plan.node_claims.clone(),
        moves: plan.existing_nodes.clone(),
        cost_before,
        cost_after,
        saving_per_hour: cost_before - cost_after,
        launch_before_drain: action == Action::Replace,
        stranded: plan.unschedulable.iter().map(|u| u.pod.clone()).collect(),
        detail,
    }
}
