//! Large-neighbourhood search: free the pods of a handful of new nodes, re-solve that small
//! problem with the same column generation and integer master, and keep the result when it
//! is cheaper. Small neighbourhoods converge where the full problem is too large to.
//!
//! Before that, a cheaper move: fill the slack of every node (the room its instance type has
//! beyond its pods) with pods taken from other nodes, and shrink those to a cheaper type.
//!
//! In: a problem, a complete assignment and a deadline. Out: an assignment that places the
//! same units at no higher objective cost.

use std::time::{Duration, Instant};

use super::clock;

use super::packing::{Assignment, Bin, Contribution, Ledger, add_count};
use super::plan::objective;
use super::problem::Problem;

/// New nodes per neighbourhood.
const NEIGHBOURHOOD: usize = 24;

/// Improve `assignment` neighbourhood by neighbourhood until `deadline`.
pub fn improve(problem: &Problem, mut assignment: Assignment, deadline: Instant) -> Assignment {
    for round in 0..4 {
        let offset = round * NEIGHBOURHOOD / 2;
        let groups = neighbourhoods(problem, &assignment, offset);
        if groups.is_empty() {
            break;
        }
        let mut improved = false;
        for group in groups {
            if clock::now() >= deadline {
                return assignment;
            }
            if let Some(next) = resolve(problem, &assignment, &group, deadline) {
                assignment = next;
                improved = true;
            }
        }
        if !improved && round > 0 {
            break;
        }
    }
    assignment
}

/// Groups of new-node bin indices: same pool, ordered by zone and capacity type so that
/// zone-pinned pods can move between the nodes of a group.
fn neighbourhoods(problem: &Problem, assignment: &Assignment, offset: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..assignment.bins.len())
        .filter(|&i| !problem.kinds[assignment.bins[i].kind].is_existing())
        .collect();
    order.sort_by(|&a, &b| {
        let (ka, kb) = (
            &problem.kinds[assignment.bins[a].kind],
            &problem.kinds[assignment.bins[b].kind],
        );
        (ka.pool, &ka.zone, ka.capacity_type, a).cmp(&(kb.pool, &kb.zone, kb.capacity_type, b))
    });
    let mut groups: Vec<Vec<usize>> = vec![];
    let mut current: Vec<usize> = vec![];
    let skip = offset.min(order.len());
    for &i in order.iter().skip(skip).chain(order.iter().take(skip)) {
        let same_pool = current.first().is_none_or(|&f| {
            problem.kinds[assignment.bins[f].kind].pool == problem.kinds[assignment.bins[i].kind].pool
        });
        if !same_pool || current.len() == NEIGHBOURHOOD {
            groups.push(std::mem::take(&mut current));
        }
        current.push(i);
    }
    if current.len() > 1 {
        groups.push(current);
    }
    groups.retain(|g| g.len() > 1);
    groups
}

/// Re-solve the pods of `group` with everything else held fixed.
fn resolve(problem: &Problem, assignment: &Assignment, group: &[usize], deadline: Instant) -> Option<Assignment> {
    let (sub, freed) = sub_problem(problem, assignment, group);
    let before = objective(&sub, &freed);
    let budget = deadline
        .saturating_duration_since(clock::now())
        .min(Duration::from_millis(250));
    let better = super::ilp::optimise(&sub, &freed, clock::now() + budget, false);
    let placed = |a: &Assignment| {
        a.bins
            .iter()
            .flat_map(|b| &b.counts)
            .map(|(_, n)| *n as u64)
            .sum::<u64>()
    };
    if placed(&better) < placed(&freed) || objective(&sub, &better) >= before - 1e-9 {
        return None;
    }
    let mut bins: Vec<Bin> = assignment
        .bins
        .iter()
        .enumerate()
        .filter(|(i, _)| !group.contains(i))
        .map(|(_, b)| b.clone())
        .collect();
    bins.extend(better.bins);
    Some(Assignment {
        bins,
        unplaced: assignment.unplaced.clone(),
    })
}

/// The problem of placing only the pods of `group`, on new nodes, with the global constraints
/// reduced by what the other nodes of the assignment already use.
fn sub_problem(problem: &Problem, assignment: &Assignment, group: &[usize]) -> (Problem, Assignment) {
    let mut sub = problem.clone();
    for class in sub.classes.iter_mut() {
        class.demand = 0;
        class.kinds.retain(|&k| !problem.kinds[k].is_existing());
    }
    let mut freed = Assignment::default();
    for (i, bin) in assignment.bins.iter().enumerate() {
        if group.contains(&i) {
            for &(c, n) in &bin.counts {
                sub.classes[c].demand += n;
            }
            freed.bins.push(bin.clone());
            continue;
        }
        let contribution = problem.contribution(bin.kind, &bin.counts);
        if let Some((p, usage, price)) = &contribution.pool {
            let pool = &mut sub.pools[*p];
            for (left, u) in pool.limit_left.iter_mut().zip(usage) {
                *left -= u;
            }
            if let Some(left) = pool.budget_left.as_mut() {
                *left -= price;
            }
        }
        for (b, cost) in &contribution.budgets {
            sub.budgets[*b].used += cost;
        }
        let kind = &problem.kinds[bin.kind];
        if let Some(p) = kind.pool {
            let cpu: f64 = bin
                .counts
                .iter()
                .map(|&(c, n)| problem.classes[c].cpu_cores * n as f64)
                .sum();
            sub.pools[p].cpu_existing += cpu;
            if kind.capacity_type == crate::catalog::CapacityType::OnDemand {
                sub.pools[p].od_cpu_existing += cpu;
            }
        }
    }
    (sub, freed)
}

/// Targets tried between two readings of the clock: reading it costs more than most tries.
const CLOCK_EVERY: usize = 128;

/// Move pods from the dearest nodes into the slack of others, and shrink each source node to
/// the cheapest type of its pool that still holds what is left; a move is kept only when the
/// source gets cheaper and every global constraint still holds.
pub fn fill_slack(problem: &Problem, mut assignment: Assignment, deadline: Instant) -> Assignment {
    let mut ledger = Ledger::new(problem);
    for b in &assignment.bins {
        problem.apply_swap(
            &mut ledger,
            &Contribution::default(),
            &problem.contribution(b.kind, &b.counts),
        );
    }
    let mut sources: Vec<usize> = (0..assignment.bins.len())
        .filter(|&i| !problem.kinds[assignment.bins[i].kind].is_existing())
        .collect();
    sources.sort_by(|&a, &b| {
        problem
            .kind_order(assignment.bins[b].kind, assignment.bins[a].kind)
            .then(a.cmp(&b))
    });
    // Only a node with room for the smallest request in every dimension can take any unit, and
    // after packing few have it: the others are never tried.
    let least = least_requests(problem);
    let mut open: Vec<usize> = (0..assignment.bins.len())
        .filter(|&t| has_room_for(problem, &assignment.bins[t], &least))
        .collect();
    for s in sources {
        if clock::now() >= deadline {
            break;
        }
        try_empty_into_slack(problem, &mut assignment, &mut ledger, s, &open, deadline);
        open.retain(|&t| has_room_for(problem, &assignment.bins[t], &least));
        if let Err(at) = open.binary_search(&s)
            && has_room_for(problem, &assignment.bins[s], &least)
        {
            open.insert(at, s);
        }
    }
    assignment.bins.retain(|b| !b.counts.is_empty());
    assignment
}

/// Whether some pool of `problem` asks for a share of on-demand capacity.
fn has_mix(problem: &Problem) -> bool {
    problem.pools.iter().any(|p| p.min_on_demand > 0.0)
}

/// Whether `target` has room for one more unit of `class` by resources alone (a cheap test
/// before the full one, which also checks the class's kinds and placement rules).
fn has_room(problem: &Problem, target: &Bin, class: usize) -> bool {
    has_room_for(problem, target, &problem.classes[class].req)
}

/// Whether `target` has room for `req` by resources alone.
fn has_room_for(problem: &Problem, target: &Bin, req: &[i64]) -> bool {
    let cap = &problem.kinds[target.kind].cap;
    req.iter().zip(&target.used).zip(cap).all(|((r, u), k)| u + r <= *k)
}

/// Per dimension, the smallest request of any class: a node without that much room in some
/// dimension has room for no unit at all.
fn least_requests(problem: &Problem) -> Vec<i64> {
    (0..problem.dims.len())
        .map(|d| problem.classes.iter().map(|c| c.req[d]).min().unwrap_or(0))
        .collect()
}

/// Empty node `s` into the slack of the nodes in `open` as far as it allows and shrink what is
/// left; undo every change unless the node gets cheaper within all global constraints. Only the
/// bins it touches are saved for the undo, so a pass over all nodes stays linear in their number
/// per source.
fn try_empty_into_slack(
    problem: &Problem,
    assignment: &mut Assignment,
    ledger: &mut Ledger,
    s: usize,
    open: &[usize],
    deadline: Instant,
) {
    let mix = has_mix(problem);
    let short_before = if mix {
        problem.mix_shortfalls(&assignment.bins)
    } else {
        vec![]
    };
    let ledger_before = ledger.clone();
    let source = assignment.bins[s].clone();
    let pool = problem.kinds[source.kind].pool;
    let mut touched: Vec<(usize, Bin)> = vec![];
    for &(c, n) in &source.counts {
        let mut left = n;
        for (tried, &t) in open.iter().enumerate() {
            if left == 0 || (tried % CLOCK_EVERY == 0 && clock::now() >= deadline) {
                break;
            }
            let target = &assignment.bins[t];
            let kind = &problem.kinds[target.kind];
            if t == s
                || target.counts.is_empty()
                || !(kind.pool == pool || kind.is_existing())
                || !has_room(problem, target, c)
            {
                continue;
            }
            let take = super::ilp::max_units(problem, target.kind, &target.used, &target.counts, c, left);
            if take == 0 {
                continue;
            }
            let old = problem.contribution(target.kind, &target.counts);
            let counts = with(&target.counts, c, take);
            let new = problem.contribution(target.kind, &counts);
            if problem.check_swap(ledger, &old, &new).is_err() {
                continue;
            }
            problem.apply_swap(ledger, &old, &new);
            if !touched.iter().any(|(i, _)| *i == t) {
                touched.push((t, assignment.bins[t].clone()));
            }
            let target = &mut assignment.bins[t];
            target.used = problem.usage(&counts);
            target.counts = counts;
            left -= take;
            remove_units(&mut assignment.bins[s], c, take);
        }
    }
    if touched.is_empty() {
        return;
    }
    let rest = assignment.bins[s].counts.clone();
    let old = problem.contribution(source.kind, &source.counts);
    // Only a kind cheaper than the source's can make the move worth keeping.
    let source_cost = problem.kinds[source.kind].cost;
    let pool_kinds = (0..problem.kinds.len()).filter(|&k| {
        let kind = &problem.kinds[k];
        kind.pool == pool && !kind.is_existing() && kind.cost < source_cost - 1e-9
    });
    let new_kind = if rest.is_empty() {
        None
    } else {
        problem.cheapest_fit(pool_kinds, &rest)
    };
    let (new, new_cost) = match new_kind {
        Some(k) => (problem.contribution(k, &rest), problem.kinds[k].cost),
        None if rest.is_empty() => (Contribution::default(), 0.0),
        None => (old.clone(), f64::INFINITY),
    };
    if let Some(k) = new_kind {
        assignment.bins[s].kind = k;
    }
    let mix_ok = !mix
        || problem
            .mix_shortfalls(&assignment.bins)
            .iter()
            .all(|x| short_before.iter().any(|b| b.0 == x.0));
    if new_cost < problem.kinds[source.kind].cost - 1e-9 && mix_ok && problem.check_swap(ledger, &old, &new).is_ok() {
        problem.apply_swap(ledger, &old, &new);
        let bin = &mut assignment.bins[s];
        bin.used = problem.usage(&bin.counts);
    } else {
        assignment.bins[s] = source;
        for (t, bin) in touched {
            assignment.bins[t] = bin;
        }
        *ledger = ledger_before;
    }
}

fn with(counts: &[(usize, u32)], class: usize, n: u32) -> Vec<(usize, u32)> {
    let mut out = counts.to_vec();
    if n > 0 {
        add_count(&mut out, class, n);
    }
    out
}

fn remove_units(bin: &mut Bin, class: usize, n: u32) {
    if let Some(e) = bin.counts.iter_mut().find(|(c, _)| *c == class) {
        e.1 -= n;
    }
    bin.counts.retain(|(_, m)| *m > 0);
}
