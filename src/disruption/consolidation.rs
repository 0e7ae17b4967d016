//! Consolidation: empty nodes, GPU nodes left with only CPU pods, and underutilized nodes whose
//! pods fit more cheaply elsewhere. Underutilized nodes are re-planned as a set (m→n): any
//! prefix of the candidates, ordered emptiest first, may be replaced by any set of new nodes
//! the planner finds; Karpenter's m→1 rule is the `ManyToOne` option.

use std::time::Instant;

use crate::catalog::CapacityType;
use crate::model::NodeInfo;
use crate::model::disruption::{ConsolidationPolicy, Reason};
use crate::solver::clock;

use super::candidates::{
    has_accelerators, last_change, pdb_shortfall, pods_on, pool_of, price, protection, utilisation, wants_accelerators,
};
use super::lifecycle::command_from_plan;
use super::{Action, Command, Replacement, State, budgets, whatif};

/// Least saving accepted in any case, USD/hour: consolidation must strictly lower the bill.
const MIN_SAVING: f64 = 1e-6;

/// Delete nodes that have held no reschedulable pod for `consolidateAfter`, within the Empty
/// budget of each pool; one command for all of them.
pub fn empty(state: &mut State) {
    let now = state.options.now;
    let mut nodes: Vec<String> = vec![];
    let mut cost = 0.0;
    let mut usage = state.budget_used.clone();
    for node in stable_nodes(state, false) {
        if !pods_on(&state.work, &state.index, &node.name).is_empty() {
            continue;
        }
        let Some(pool) = pool_of(state.input, &node) else {
            continue;
        };
        if budgets::remaining(state.input, pool, Reason::Empty, &usage, now) == 0 {
            state.block(&node.name, "empty but the Empty disruption budget is used up".into());
            continue;
        }
        usage.add(&pool.name, Reason::Empty);
        cost += price(&node);
        nodes.push(node.name.clone());
    }
    if nodes.is_empty() {
        return;
    }
    let detail = format!("{} empty node(s) for at least consolidateAfter", nodes.len());
    state.accept(Command {
        action: Action::Delete,
        reason: Reason::Empty,
        nodes,
        node_claims: vec![],
        moves: vec![],
        cost_before: cost,
        cost_after: 0.0,
        saving_per_hour: cost,
        launch_before_drain: false,
        stranded: vec![],
        detail,
    });
}

/// Reclaim GPU nodes whose pods no longer use a GPU: move the CPU pods to cheaper capacity and
/// remove the node (Karpenter leaves such nodes up).
pub fn gpu_idle(state: &mut State) {
    let now = state.options.now;
    for node in stable_nodes(state, true) {
        if !has_accelerators(&node) {
            continue;
        }
        let pods = pods_on(&state.work, &state.index, &node.name);
        if pods.is_empty() || pods.iter().any(|p| wants_accelerators(p)) {
            continue;
        }
        let Some(pool) = pool_of(state.input, &node) else {
            continue;
        };
        if budgets::remaining(state.input, pool, Reason::GpuIdle, &state.budget_used, now) == 0 {
            state.block(
                &node.name,
                "GPU idle but the GpuIdle disruption budget is used up".into(),
            );
            continue;
        }
        let names = vec![node.name.clone()];
        if let Some(why) = pdb_shortfall(&state.work, &state.index, &names, &state.pdb_left) {
            state.block(&node.name, format!("GPU idle but {why}"));
            continue;
        }
        let plan = whatif::plan_without(&state.work, &names, state.catalog, &state.plan);
        if !plan.unschedulable.is_empty() || plan.hourly_cost >= price(&node) - MIN_SAVING {
            continue;
        }
        let detail = format!(
            "GPU node holds only CPU pods ({}); they move to {:.4} USD/h of capacity",
            pods.len(),
            plan.hourly_cost
        );
        let command = command_from_plan(state, names, Reason::GpuIdle, &plan, detail);
        state.accept(command);
    }
}

/// Replace sets of underutilized nodes by cheaper capacity until no set saves enough, the
/// budgets are used up or `deadline` passes.
pub fn underutilized(state: &mut State, deadline: Instant) {
    while clock::now() < deadline {
        let candidates = consolidation_candidates(state);
        if candidates.is_empty() {
            return;
        }
        match search(state, &candidates, deadline) {
            Some(command) => state.accept(command),
            None => return,
        }
    }
}

/// Managed, undecided, initialized nodes whose pool consolidates, that are older than
/// `consolidateAfter` and unchanged for as long; protected ones are recorded as blocked.
fn stable_nodes(state: &mut State, needs_underutilized_policy: bool) -> Vec<NodeInfo> {
    let now = state.options.now;
    let nodes: Vec<NodeInfo> = state
        .work
        .nodes
        .iter()
        .filter(|n| !n.in_flight && !state.decided.contains(&n.name))
        .filter(|n| state.input.nodes.iter().any(|x| x.name == n.name))
        .cloned()
        .collect();
    let mut out = vec![];
    for node in nodes {
        let Some(pool) = pool_of(state.input, &node) else {
            continue;
        };
        let policy = &pool.disruption;
        let Some(after) = policy.consolidate_after else {
            continue;
        };
        if needs_underutilized_policy && policy.consolidation_policy != ConsolidationPolicy::WhenEmptyOrUnderutilized {
            continue;
        }
        if let Some(why) = protection(&state.work, &state.index, &node, &state.pdb_left, now) {
            state.block(&node.name, why);
            continue;
        }
        if now - node.created < after || now - last_change(&state.work, &state.index, &node) < after {
            continue;
        }
        out.push(node);
    }
    out
}

/// Underutilized candidates, emptiest first (then dearest, then by name), each pool's within
/// its Underutilized budget.
fn consolidation_candidates(state: &mut State) -> Vec<NodeInfo> {
    let mut nodes: Vec<(f64, NodeInfo)> = stable_nodes(state, true)
        .into_iter()
        .filter(|n| !pods_on(&state.work, &state.index, &n.name).is_empty())
        .map(|n| (utilisation(&state.work, &state.index, &n), n))
        .collect();
    nodes.sort_by(|(ua, a), (ub, b)| {
        ua.total_cmp(ub)
            .then(price(b).total_cmp(&price(a)))
            .then(a.name.cmp(&b.name))
    });
    let mut usage = state.budget_used.clone();
    let mut out = vec![];
    for (_, node) in nodes {
        let Some(pool) = pool_of(state.input, &node) else {
            continue;
        };
        if budgets::remaining(state.input, pool, Reason::Underutilized, &usage, state.options.now) == 0 {
            continue;
        }
        usage.add(&pool.name, Reason::Underutilized);
        out.push(node);
        if out.len() == state.options.max_consolidation_nodes {
            break;
        }
    }
    out
}

/// The largest prefix of `candidates` whose replacement saves enough (binary search, as
/// Karpenter's multi-node consolidation), else the first single node that does.
fn search(state: &State, candidates: &[NodeInfo], deadline: Instant) -> Option<Command> {
    let found = find(state, candidates, deadline)?;
    let found = trim(state, candidates, found);
    Some(refine(state, candidates, found, deadline))
}

/// Leave out the nodes the command merely moves: a node whose pods all go to one new node that
/// holds nothing else and costs at least `1 - minSavingsPercent` of it saves (almost) nothing
/// by moving, so disrupting it only rides on the others' saving. Kept when the smaller set
/// still passes every rule.
fn trim(state: &State, candidates: &[NodeInfo], found: Command) -> Command {
    let passing: Vec<&String> = found
        .nodes
        .iter()
        .filter(|name| merely_moved(state, candidates, &found, name))
        .collect();
    if passing.is_empty() || passing.len() == found.nodes.len() {
        return found;
    }
    let keep: Vec<NodeInfo> = candidates
        .iter()
        .filter(|n| found.nodes.contains(&n.name) && !passing.contains(&&n.name))
        .cloned()
        .collect();
    evaluate(state, &keep).unwrap_or(found)
}

/// Does `found` move node `name` as a whole onto one new node of about its price?
fn merely_moved(state: &State, candidates: &[NodeInfo], found: &Command, name: &str) -> bool {
    let Some(node) = candidates.iter().find(|n| n.name == name) else {
        return false;
    };
    let pods: Vec<String> = pods_on(&state.work, &state.index, name)
        .iter()
        .map(|p| p.key.clone())
        .collect();
    let min_saving = pool_of(state.input, node).map_or(0.0, |p| p.disruption.min_savings_percent / 100.0);
    found.node_claims.iter().any(|claim| {
        !pods.is_empty()
            && claim.pods.len() == pods.len()
            && pods.iter().all(|p| claim.pods.contains(p))
            && claim.hourly_price >= price(node) * (1.0 - min_saving)
    })
}

/// The chosen set planned again with four times the planner's time, when that is cheaper: the
/// search's short plans leave replacements a next pass would consolidate again.
fn refine(state: &State, candidates: &[NodeInfo], found: Command, deadline: Instant) -> Command {
    let mut options = state.plan.clone();
    options.time_limit *= 4;
    if clock::now() + options.time_limit > deadline + state.options.plan.time_limit {
        return found;
    }
    let nodes: Vec<NodeInfo> = candidates
        .iter()
        .filter(|n| found.nodes.contains(&n.name))
        .cloned()
        .collect();
    match evaluate_with(state, &nodes, &options) {
        Some(better) if better.cost_after < found.cost_after - 1e-9 => better,
        _ => found,
    }
}

/// The largest valid prefix (binary search), else the first valid single node.
fn find(state: &State, candidates: &[NodeInfo], deadline: Instant) -> Option<Command> {
    let n = candidates.len();
    if let Some(c) = evaluate(state, &candidates[..n]) {
        return Some(c);
    }
    let (mut lo, mut hi) = (2, n.saturating_sub(1));
    let mut best = None;
    while lo <= hi && clock::now() < deadline {
        let mid = (lo + hi) / 2;
        match evaluate(state, &candidates[..mid]) {
            Some(c) => {
                best = Some(c);
                lo = mid + 1;
            }
            None => hi = mid - 1,
        }
    }
    if best.is_some() {
        return best;
    }
    candidates
        .iter()
        .take_while(|_| clock::now() < deadline)
        .find_map(|c| evaluate(state, std::slice::from_ref(c)))
}

/// The command replacing `nodes`, when it is allowed and saves enough.
fn evaluate(state: &State, nodes: &[NodeInfo]) -> Option<Command> {
    evaluate_with(state, nodes, &state.plan)
}

/// `evaluate` with the given planner settings.
fn evaluate_with(state: &State, nodes: &[NodeInfo], options: &crate::solver::PlanOptions) -> Option<Command> {
    let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
    pdb_shortfall(&state.work, &state.index, &names, &state.pdb_left)
        .is_none()
        .then_some(())?;
    let plan = whatif::plan_without(&state.work, &names, state.catalog, options);
    if !plan.unschedulable.is_empty() {
        return None;
    }
    if state.options.replacement == Replacement::ManyToOne && plan.node_claims.len() > 1 {
        return None;
    }
    let before: f64 = nodes.iter().map(price).sum();
    let saving = before - plan.hourly_cost;
    let needed = required_saving(state, nodes, before);
    if saving < needed || saving < MIN_SAVING {
        return None;
    }
    if !spot_rule_holds(state, nodes, &plan) {
        return None;
    }
    let detail = format!(
        "{} node(s) at {before:.4} USD/h -> {} new node(s) at {:.4} USD/h and {} moved onto existing nodes; saves {saving:.4} USD/h ({:.1}%, needed {needed:.4})",
        nodes.len(),
        plan.node_claims.len(),
        plan.hourly_cost,
        plan.existing_nodes.iter().map(|e| e.pods.len()).sum::<usize>(),
        100.0 * saving / before.max(f64::MIN_POSITIVE),
    );
    Some(command_from_plan(state, names, Reason::Underutilized, &plan, detail))
}

/// The strictest saving the pools of `nodes` ask for: `minSavingsPercent` of their cost and
/// `minSavingsPerHour`.
fn required_saving(state: &State, nodes: &[NodeInfo], before: f64) -> f64 {
    nodes
        .iter()
        .filter_map(|n| pool_of(state.input, n))
        .map(|p| (p.disruption.min_savings_percent / 100.0 * before).max(p.disruption.min_savings_per_hour))
        .fold(0.0, f64::max)
}

/// Spot → spot: new spot nodes may not carry a higher expected interruption cost (price ×
/// interruption rate) than the spot nodes they replace.
fn spot_rule_holds(state: &State, nodes: &[NodeInfo], plan: &crate::solver::Plan) -> bool {
    let rate = |it: &str, zone: &str| {
        state
            .catalog
            .find(it)
            .and_then(|t| {
                t.offerings
                    .iter()
                    .find(|o| o.zone == zone && o.capacity_type == CapacityType::Spot)
            })
            .and_then(|o| o.interruption_rate)
            .unwrap_or(0.0)
    };
    let old: Vec<&NodeInfo> = nodes
        .iter()
        .filter(|n| n.capacity_type == Some(CapacityType::Spot))
        .collect();
    let new_spot: Vec<_> = plan
        .node_claims
        .iter()
        .filter(|c| c.capacity_type == CapacityType::Spot.as_str())
        .collect();
    if old.is_empty() || new_spot.is_empty() {
        return true;
    }
    let old_cost: f64 = old
        .iter()
        .map(|n| {
            price(n)
                * rate(
                    n.instance_type.as_deref().unwrap_or(""),
                    n.zone.as_deref().unwrap_or(""),
                )
        })
        .sum();
    let new_cost: f64 = new_spot
        .iter()
        .map(|c| c.hourly_price * rate(&c.instance_type, &c.zone))
        .sum();
    new_cost <= old_cost + 1e-12
}
