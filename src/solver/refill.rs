//! Ruin and refill: free the pods of the dearest new nodes, fill the unused room of every other
//! node with them (a knapsack per node: the most valuable pods that fit, the node keeping its
//! instance type), and pack what is left the FFD way. Where anti-affinity forces many small
//! nodes, their room is already paid for; filling it exactly lets the large nodes shrink.
//!
//! In: a problem, a complete assignment and a deadline. Out: an assignment that places the
//! same units at no higher objective cost, within every global constraint.

use std::collections::HashMap;
use std::time::Instant;

use super::clock;

use crate::catalog::CapacityType;

use super::ffd;
use super::ilp::placed_units;
use super::local_search::waste;
use super::packing::{Assignment, Bin, Contribution, Ledger, add_count};
use super::plan::objective;
use super::problem::Problem;

/// Ruin sizes tried, in dearest new nodes.
const RUIN_SIZES: [usize; 6] = [1, 2, 3, 4, 6, 8];

/// Ruin and refill until no ruin size helps or `deadline` passes.
pub fn improve(problem: &Problem, mut assignment: Assignment, deadline: Instant) -> Assignment {
    if clock::now() >= deadline {
        return assignment;
    }
    let values = super::bound::unit_values(problem, &assignment);
    let families = families(problem);
    let mut improved = true;
    while improved && clock::now() < deadline {
        improved = false;
        for size in RUIN_SIZES {
            if clock::now() >= deadline {
                break;
            }
            let Some(next) = ruin_and_refill(problem, &assignment, size, &values, &families, deadline) else {
                continue;
            };
            if accepts(problem, &assignment, &next) {
                assignment = next;
                improved = true;
                break;
            }
        }
    }
    assignment
}

/// New-node kinds by (pool, capacity type), cheapest first.
type Families = HashMap<(usize, CapacityType), Vec<usize>>;

fn families(problem: &Problem) -> Families {
    let mut out: Families = HashMap::new();
    for (k, kind) in problem.kinds.iter().enumerate() {
        if let (false, Some(pool)) = (kind.is_existing(), kind.pool) {
            out.entry((pool, kind.capacity_type)).or_default().push(k);
        }
    }
    for kinds in out.values_mut() {
        kinds.sort_by(|&a, &b| problem.kind_order(a, b));
    }
    out
}

/// Free the `size` dearest new nodes, refill the others' room, and FFD-pack the rest; None when
/// there is nothing to ruin or `deadline` passes first.
fn ruin_and_refill(
    problem: &Problem,
    assignment: &Assignment,
    size: usize,
    values: &[f64],
    families: &Families,
    deadline: Instant,
) -> Option<Assignment> {
    let mut order: Vec<usize> = (0..assignment.bins.len())
        .filter(|&i| !problem.kinds[assignment.bins[i].kind].is_existing())
        .collect();
    if order.len() <= size {
        return None;
    }
    order.sort_by(|&a, &b| {
        problem
            .kind_order(assignment.bins[b].kind, assignment.bins[a].kind)
            .then(a.cmp(&b))
    });
    let ruined = &order[..size];
    let mut free = vec![0u32; problem.classes.len()];
    let mut kept: Vec<Bin> = vec![];
    for (i, bin) in assignment.bins.iter().enumerate() {
        if ruined.contains(&i) {
            for &(c, n) in &bin.counts {
                free[c] += n;
            }
        } else {
            kept.push(bin.clone());
        }
    }
    let mut by_room: Vec<usize> = (0..kept.len()).collect();
    by_room.sort_by(|&a, &b| {
        let room = |bin: &Bin| waste(problem, &bin.used, bin.kind, problem.kinds[bin.kind].price);
        room(&kept[b]).total_cmp(&room(&kept[a])).then(a.cmp(&b))
    });
    for i in by_room {
        if clock::now() >= deadline {
            return None;
        }
        refill_node(problem, &mut kept[i], &mut free, values, families);
    }
    let mut next = ffd::complete(problem, kept, free);
    next.unplaced.extend(assignment.unplaced.iter().cloned());
    Some(next)
}

/// Offerings tried per node: the cheapest of its pool and capacity type that hold its pods.
const KINDS_TRIED: usize = 6;

/// Refill one node: on its own kind or one of the cheapest others of its pool and capacity type
/// that hold its pods, whichever gains the most value net of the price difference.
fn refill_node(problem: &Problem, bin: &mut Bin, free: &mut [u32], values: &[f64], families: &Families) {
    let kind = &problem.kinds[bin.kind];
    let mut candidates = vec![bin.kind];
    if let (false, Some(pool)) = (kind.is_existing(), kind.pool) {
        let others = families.get(&(pool, kind.capacity_type)).into_iter().flatten();
        candidates.extend(
            others
                .copied()
                .filter(|&k| k != bin.kind && problem.holds(k, &bin.used, bin.counts.iter().map(|(c, _)| *c)))
                .take(KINDS_TRIED),
        );
    }
    let base = problem.kinds[bin.kind].cost;
    let mut best: Option<(f64, Bin, Vec<u32>)> = None;
    for k in candidates {
        let mut trial = bin.clone();
        trial.kind = k;
        let mut left = free.to_vec();
        let gained = fill(problem, &mut trial, &mut left, values) - (problem.kinds[k].cost - base);
        if best.as_ref().is_none_or(|(g, _, _)| gained > g + 1e-9) {
            best = Some((gained, trial, left));
        }
    }
    if let Some((_, trial, left)) = best {
        *bin = trial;
        free.copy_from_slice(&left);
    }
}

/// Fill `bin`'s room from `free`: classes by value per share of the room they take, as many
/// units of each as fit. Returns the value added.
fn fill(problem: &Problem, bin: &mut Bin, free: &mut [u32], values: &[f64]) -> f64 {
    let cap = &problem.kinds[bin.kind].cap;
    let room: Vec<i64> = cap.iter().zip(&bin.used).map(|(c, u)| c - u).collect();
    let mut candidates: Vec<(f64, usize)> = free
        .iter()
        .enumerate()
        .filter(|&(c, &n)| n > 0 && problem.classes[c].kinds.binary_search(&bin.kind).is_ok())
        .filter_map(|(c, _)| {
            let req = &problem.classes[c].req;
            if req.iter().zip(&room).any(|(r, left)| r > left) {
                return None;
            }
            let share: f64 = req
                .iter()
                .zip(&room)
                .filter(|(_, left)| **left > 0)
                .map(|(r, left)| *r as f64 / *left as f64)
                .sum();
            Some((values[c] / share.max(1e-12), c))
        })
        .collect();
    candidates.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut gained = 0.0;
    for (_, c) in candidates {
        let n = super::ilp::max_units(problem, bin.kind, &bin.used, &bin.counts, c, free[c]);
        if n == 0 {
            continue;
        }
        free[c] -= n;
        gained += values[c] * n as f64;
        add_count(&mut bin.counts, c, n);
        for (u, r) in bin.used.iter_mut().zip(&problem.classes[c].req) {
            *u += r * n as i64;
        }
    }
    gained
}

/// Keep `next` when it places every unit `current` places, costs less, and respects every
/// global constraint no worse than `current` does.
fn accepts(problem: &Problem, current: &Assignment, next: &Assignment) -> bool {
    let (before, after) = (placed_units(problem, current), placed_units(problem, next));
    if before.iter().zip(&after).any(|(b, a)| a < b) {
        return false;
    }
    objective(problem, next) < objective(problem, current) - 1e-9
        && within_globals(problem, &next.bins)
        && no_new_mix_shortfall(problem, &current.bins, &next.bins)
}

/// Whether every pool short of its on-demand share in `after` was already short in `before`.
fn no_new_mix_shortfall(problem: &Problem, before: &[Bin], after: &[Bin]) -> bool {
    let short_before = problem.mix_shortfalls(before);
    problem
        .mix_shortfalls(after)
        .iter()
        .all(|x| short_before.iter().any(|b| b.0 == x.0))
}

/// Whether `bins` together respect pool limits, pool budgets and CostBudgets.
fn within_globals(problem: &Problem, bins: &[Bin]) -> bool {
    let mut ledger = Ledger::new(problem);
    bins.iter().all(|b| {
        let c = problem.contribution(b.kind, &b.counts);
        let ok = problem.check_swap(&ledger, &Contribution::default(), &c).is_ok();
        problem.apply_swap(&mut ledger, &Contribution::default(), &c);
        ok
    })
}
