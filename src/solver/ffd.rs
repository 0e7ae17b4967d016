//! The greedy baseline: Karpenter's first-fit-decreasing provisioning algorithm.
//!
//! Pods are taken by priority, then CPU, then memory, descending. Each goes to the first node
//! that can take it: existing nodes first, then nodes opened earlier in this plan, then a new
//! node in the highest-weight NodePool that can hold it. A node opened in the plan keeps every
//! instance type (and offering) that could still hold all its pods; when packing ends it gets
//! the cheapest of them. See docs/ffd.md.

use std::collections::HashMap;

use crate::catalog::CapacityType;

use super::packing::{Assignment, Bin, Contribution, Ledger, add_count};
use super::problem::Problem;

struct OpenNode {
    candidates: Vec<usize>,
    counts: Vec<(usize, u32)>,
    used: Vec<i64>,
    best: usize,
    contribution: Contribution,
}

/// Per class and pool, the new kinds an empty node could be launched as for one unit of the
/// class (compatibility, capacity and node rules; they do not change while packing).
#[derive(Default)]
struct FreshCandidates(HashMap<(usize, usize), Vec<usize>>);

impl FreshCandidates {
    fn get(&mut self, problem: &Problem, class: usize, pool: usize) -> &[usize] {
        self.0.entry((class, pool)).or_insert_with(|| {
            let empty = vec![0; problem.dims.len()];
            problem.classes[class]
                .kinds
                .iter()
                .copied()
                .filter(|&k| problem.kinds[k].pool == Some(pool) && !problem.kinds[k].is_existing())
                .filter(|&k| problem.can_add(k, &empty, &[], class, 1))
                .collect()
        })
    }
}

/// Classes in FFD order: priority, CPU, memory, descending; then class index.
pub fn class_order(problem: &Problem) -> Vec<usize> {
    let mut order: Vec<usize> = (0..problem.classes.len()).collect();
    order.sort_by(|&a, &b| {
        let (ca, cb) = (&problem.classes[a], &problem.classes[b]);
        cb.priority
            .cmp(&ca.priority)
            .then(cb.req[0].cmp(&ca.req[0]))
            .then(cb.req[1].cmp(&ca.req[1]))
            .then(a.cmp(&b))
    });
    order
}

/// Run FFD on `problem`.
pub fn solve(problem: &Problem) -> Assignment {
    let demand = problem.classes.iter().map(|c| c.demand).collect();
    complete(problem, vec![], demand)
}

/// Start from `seeds` (nodes already filled, e.g. by the ILP) and place `demand` more units of
/// each class the FFD way. A seed node may change to any instance type of its pool that still
/// holds its pods; every node ends on the cheapest such type.
pub fn complete(problem: &Problem, seeds: Vec<Bin>, demand: Vec<u32>) -> Assignment {
    let mut ledger = Ledger::new(problem);
    let mut open: Vec<OpenNode> = problem
        .kinds
        .iter()
        .enumerate()
        .filter(|(_, k)| k.is_existing())
        .map(|(i, _)| OpenNode {
            candidates: vec![i],
            counts: vec![],
            used: vec![0; problem.dims.len()],
            best: i,
            contribution: Contribution::default(),
        })
        .collect();
    // Every seed is booked as given first (together they respect the global constraints);
    // only then may each move to a cheaper type, if the whole plan still fits after the move.
    // A cheaper type can carry a larger budget allocation or limit usage than the original.
    let seeds: Vec<OpenNode> = seeds
        .into_iter()
        .map(|seed| seed_node(problem, &mut ledger, seed))
        .collect();
    for mut node in seeds {
        cheapen(problem, &mut ledger, &mut node);
        match open
            .iter_mut()
            .find(|n| n.candidates == [node.best] && problem.kinds[node.best].is_existing())
        {
            Some(slot) => *slot = node,
            None => open.push(node),
        }
    }
    let mut unplaced = vec![];
    let mut pointer: HashMap<usize, usize> = HashMap::new();
    let mut fresh = FreshCandidates::default();
    for c in class_order(problem) {
        let class = &problem.classes[c];
        for unit in 0..demand[c] {
            let start = pointer.get(&c).copied().unwrap_or(0);
            let mut reason: Option<String> = None;
            let placed = try_open_nodes(problem, &mut ledger, &mut open, c, start, &mut pointer, &mut reason)
                || open_new_node(problem, &mut ledger, &mut open, &mut fresh, c, &mut reason);
            if !placed {
                let why = class
                    .no_kind_reason
                    .clone()
                    .or(reason)
                    .unwrap_or_else(|| "no node can hold it".into());
                unplaced.push((c, demand[c] - unit, why));
                break;
            }
        }
    }
    let bins: Vec<Bin> = open
        .into_iter()
        .filter(|n| !n.counts.is_empty())
        .map(|n| Bin {
            kind: n.best,
            used: n.used,
            counts: n.counts,
        })
        .collect();
    let mut assignment = Assignment { bins, unplaced };
    enforce_mix(problem, &mut assignment, &mut ledger);
    assignment
}

/// The elements of both sorted lists, in order.
fn sorted_intersection<'a>(a: &'a [usize], b: &'a [usize]) -> impl Iterator<Item = usize> + 'a {
    let mut j = 0;
    a.iter().copied().filter(move |&x| {
        while j < b.len() && b[j] < x {
            j += 1;
        }
        j < b.len() && b[j] == x
    })
}

fn seed_node(problem: &Problem, ledger: &mut Ledger, seed: Bin) -> OpenNode {
    let used = problem.usage(&seed.counts);
    let kind = &problem.kinds[seed.kind];
    let candidates: Vec<usize> = if kind.is_existing() {
        vec![seed.kind]
    } else {
        // The seed's own kind passed the node rules, and for new kinds they do not depend on
        // the kind: only compatibility and capacity decide which other types could hold it.
        // Each class's kinds are sorted, so the common ones come from merging the lists.
        let mut common: Vec<usize> = seed
            .counts
            .first()
            .map(|&(c, _)| problem.classes[c].kinds.clone())
            .unwrap_or_default();
        for &(c, _) in seed.counts.iter().skip(1) {
            common = sorted_intersection(&common, &problem.classes[c].kinds).collect();
        }
        let mut list: Vec<usize> = common
            .into_iter()
            .filter(|&k| {
                let other = &problem.kinds[k];
                other.pool == kind.pool && !other.is_existing() && super::problem::fits(&used, &other.cap)
            })
            .collect();
        if !list.contains(&seed.kind) {
            list.push(seed.kind);
            list.sort();
        }
        list
    };
    let contribution = problem.contribution(seed.kind, &seed.counts);
    problem.apply_swap(ledger, &Contribution::default(), &contribution);
    OpenNode {
        candidates,
        counts: seed.counts,
        used,
        best: seed.kind,
        contribution,
    }
}

/// Move a booked node to its cheapest candidate type when the ledger still fits after the move.
fn cheapen(problem: &Problem, ledger: &mut Ledger, node: &mut OpenNode) {
    let cheapest = node
        .candidates
        .iter()
        .copied()
        .min_by(|&a, &b| problem.kind_order(a, b))
        .unwrap_or(node.best);
    if cheapest == node.best {
        return;
    }
    let cheaper = problem.contribution(cheapest, &node.counts);
    if problem.check_swap(ledger, &node.contribution, &cheaper).is_ok() {
        problem.apply_swap(ledger, &node.contribution, &cheaper);
        node.best = cheapest;
        node.contribution = cheaper;
    }
}

fn try_open_nodes(
    problem: &Problem,
    ledger: &mut Ledger,
    open: &mut [OpenNode],
    c: usize,
    start: usize,
    pointer: &mut HashMap<usize, usize>,
    reason: &mut Option<String>,
) -> bool {
    let class = &problem.classes[c];
    for (j, slot) in open.iter_mut().enumerate().skip(start) {
        let node = &*slot;
        let used: Vec<i64> = node.used.iter().zip(&class.req).map(|(u, r)| u + r).collect();
        // Node rules depend on the kind only through pods already running on an existing node,
        // and an existing node is its own single candidate: check them once per node.
        let candidates: Vec<usize> = if problem.rules_allow(node.best, &node.counts, c, 1) {
            sorted_intersection(&node.candidates, &class.kinds)
                .filter(|&k| super::problem::fits(&used, &problem.kinds[k].cap))
                .collect()
        } else {
            vec![]
        };
        let Some(best) = candidates.iter().copied().min_by(|&a, &b| problem.kind_order(a, b)) else {
            if j == pointer.get(&c).copied().unwrap_or(0) {
                pointer.insert(c, j + 1);
            }
            continue;
        };
        let mut counts = node.counts.clone();
        add_count(&mut counts, c, 1);
        let contribution = problem.contribution(best, &counts);
        if let Err(why) = problem.check_swap(ledger, &node.contribution, &contribution) {
            *reason = Some(why);
            continue;
        }
        problem.apply_swap(ledger, &node.contribution, &contribution);
        *slot = OpenNode {
            candidates,
            counts,
            used,
            best,
            contribution,
        };
        return true;
    }
    false
}

fn open_new_node(
    problem: &Problem,
    ledger: &mut Ledger,
    open: &mut Vec<OpenNode>,
    fresh: &mut FreshCandidates,
    c: usize,
    reason: &mut Option<String>,
) -> bool {
    let class = &problem.classes[c];
    for pool in 0..problem.pools.len() {
        let candidates = fresh.get(problem, c, pool);
        // Karpenter drops the instance types whose launch would exceed the pool's limits.
        let within: Vec<usize> = if problem.launch_always_within(pool, c) {
            candidates.to_vec()
        } else {
            candidates
                .iter()
                .copied()
                .filter(|&k| {
                    problem
                        .check_swap(ledger, &Contribution::default(), &problem.contribution(k, &[(c, 1)]))
                        .is_ok()
                })
                .collect()
        };
        let Some(best) = within.iter().copied().min_by(|&a, &b| problem.kind_order(a, b)) else {
            // Report the nearest miss: the cheapest type the pool could have launched.
            if let Some(Err(why)) = candidates
                .iter()
                .min_by(|&&a, &&b| problem.kind_order(a, b))
                .map(|&k| problem.check_swap(ledger, &Contribution::default(), &problem.contribution(k, &[(c, 1)])))
            {
                *reason = Some(why);
            }
            continue;
        };
        let counts = vec![(c, 1)];
        let contribution = problem.contribution(best, &counts);
        problem.apply_swap(ledger, &Contribution::default(), &contribution);
        open.push(OpenNode {
            candidates: within,
            used: class.req.clone(),
            counts,
            best,
            contribution,
        });
        return true;
    }
    false
}

/// Make each pool meet its on-demand floor: switch spot nodes to the cheapest on-demand
/// offering that holds the same pods (smallest extra cost per CPU first); if that is not
/// enough, unplace pods from spot nodes.
pub fn enforce_mix(problem: &Problem, assignment: &mut Assignment, ledger: &mut Ledger) {
    for _ in 0..problem.pools.len() + 1 {
        // The mix binds a pool the plan launches nodes in; a pool that was already short and
        // gets no new node is left alone (nothing launched could fix it).
        let shortfalls = problem.mix_shortfalls(&assignment.bins);
        let Some(&(pool, _, _)) = shortfalls.iter().find(|s| launches_in(problem, &assignment.bins, s.0)) else {
            return;
        };
        let mut options: Vec<(f64, usize, usize)> = vec![];
        for (i, b) in assignment.bins.iter().enumerate() {
            let k = &problem.kinds[b.kind];
            if k.pool != Some(pool) || k.is_existing() || k.capacity_type != CapacityType::Spot {
                continue;
            }
            let od = problem.classes[b.counts[0].0].kinds.iter().copied().filter(|&x| {
                problem.kinds[x].pool == Some(pool)
                    && !problem.kinds[x].is_existing()
                    && problem.kinds[x].capacity_type == CapacityType::OnDemand
            });
            if let Some(new_kind) = problem.cheapest_fit(od, &b.counts) {
                let cpu: f64 = b
                    .counts
                    .iter()
                    .map(|&(c, n)| problem.classes[c].cpu_cores * n as f64)
                    .sum();
                let extra = problem.kinds[new_kind].cost - k.cost;
                options.push((extra / cpu.max(1e-9), i, new_kind));
            }
        }
        options.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for (_, i, new_kind) in options {
            if problem.mix_shortfalls(&assignment.bins).iter().all(|s| s.0 != pool) {
                break;
            }
            let bin = &assignment.bins[i];
            let old = problem.contribution(bin.kind, &bin.counts);
            let new = problem.contribution(new_kind, &bin.counts);
            if problem.check_swap(ledger, &old, &new).is_ok() {
                problem.apply_swap(ledger, &old, &new);
                assignment.bins[i].kind = new_kind;
            }
        }
        unplace_spot_until_mix(problem, assignment, ledger, pool);
    }
}

/// True when `bins` include a new node of `pool`.
fn launches_in(problem: &Problem, bins: &[Bin], pool: usize) -> bool {
    bins.iter()
        .any(|b| problem.kinds[b.kind].pool == Some(pool) && !problem.kinds[b.kind].is_existing())
}

fn unplace_spot_until_mix(problem: &Problem, assignment: &mut Assignment, ledger: &mut Ledger, pool: usize) {
    while let Some(&(_, od, total)) = problem
        .mix_shortfalls(&assignment.bins)
        .iter()
        .find(|s| s.0 == pool && launches_in(problem, &assignment.bins, pool))
    {
        // New spot nodes go first; then pending pods placed on the pool's existing spot nodes,
        // which count towards the mix as well.
        let spot_bin = |existing: bool| {
            assignment.bins.iter().rposition(|b| {
                let k = &problem.kinds[b.kind];
                k.pool == Some(pool) && k.is_existing() == existing && k.capacity_type == CapacityType::Spot
            })
        };
        // A pool whose running nodes already miss the mix by more than its new on-demand nodes
        // make up launches nothing at all.
        let new_bin = || {
            assignment
                .bins
                .iter()
                .rposition(|b| problem.kinds[b.kind].pool == Some(pool) && !problem.kinds[b.kind].is_existing())
        };
        let Some(i) = spot_bin(false).or_else(|| spot_bin(true)).or_else(new_bin) else {
            return;
        };
        let bin = assignment.bins.remove(i);
        let old = problem.contribution(bin.kind, &bin.counts);
        problem.apply_swap(ledger, &old, &Contribution::default());
        let want = problem.pools[pool].min_on_demand * 100.0;
        for (c, n) in bin.counts {
            assignment.unplaced.push((
                c,
                n,
                format!(
                    "capacity mix of NodePool {}: on-demand share {:.1}% below the required {:.0}%",
                    problem.pools[pool].name,
                    100.0 * od / total.max(1e-9),
                    want
                ),
            ));
        }
    }
}
