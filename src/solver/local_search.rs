//! Local search over a complete assignment: move one pod unit between two new nodes of a pool
//! and capacity type (in any zones the pods allow), or swap two units, and re-size both nodes
//! to the cheapest instance type of their pool, zone and capacity type that holds what they then
//! carry. A move is kept when it lowers the objective cost, or keeps it and either moves load
//! from a dearer node into room a cheaper one already pays for (the dearer one gets closer to
//! shrinking), or concentrates the unused room (the sum of squared per-node waste grows), so
//! that some node can later shrink or empty. Moves stay inside one pool and capacity type, so
//! the capacity mix does not change; pool limits, pool budgets and CostBudgets are checked
//! against the ledger before a move is kept.
//!
//! In: a problem, a complete assignment and a deadline. Out: an assignment that places the
//! same units at no higher objective cost.

use std::collections::HashMap;
use std::time::Instant;

use crate::catalog::CapacityType;

use super::packing::{Assignment, Bin, Contribution, Ledger, add_count, count_of};
use super::problem::Problem;

/// Target nodes tried per source unit when a pool has more nodes than this.
const TARGETS: usize = 80;
/// Improvement smaller than this is noise.
const EPS: f64 = 1e-9;

/// New-node kinds of one pool, zone and capacity type, cheapest first.
type Family = Vec<usize>;

/// Improve `assignment` by moves and swaps until no move helps or `deadline` passes.
pub fn improve(problem: &Problem, assignment: Assignment, deadline: Instant) -> Assignment {
    let mut search = Search::new(problem, assignment);
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    while Instant::now() < deadline {
        if !search.sweep(&mut rng, deadline) {
            break;
        }
    }
    search.finish()
}

/// The state of the search.
struct Search<'a> {
    problem: &'a Problem,
    bins: Vec<Bin>,
    /// Objective cost of each bin's kind (0 for an emptied bin).
    cost: Vec<f64>,
    /// Family of each bin (new nodes only).
    family_of: Vec<Option<usize>>,
    families: Vec<Family>,
    /// Per class, the families whose kinds it may use, sorted.
    class_families: Vec<Vec<usize>>,
    /// Bins of each pool and capacity type, as partners for moves.
    partners: Vec<Vec<usize>>,
    /// Index into `partners` of each new-node bin.
    partners_of: Vec<usize>,
    ledger: Option<Ledger>,
    unplaced: Vec<(usize, u32, String)>,
}

/// A candidate change of two bins.
struct Move {
    a: usize,
    b: usize,
    new_a: Bin,
    new_b: Bin,
    cost_a: f64,
    cost_b: f64,
    delta_cost: f64,
    delta_potential: f64,
    /// Load moves from a dearer node into room a cheaper one already pays for.
    fills_paid_room: bool,
}

impl<'a> Search<'a> {
    fn new(problem: &'a Problem, assignment: Assignment) -> Self {
        let mut family_index: HashMap<(usize, &str, CapacityType), usize> = HashMap::new();
        let mut families: Vec<Family> = vec![];
        let mut family_of_kind: Vec<Option<usize>> = vec![None; problem.kinds.len()];
        for (k, kind) in problem.kinds.iter().enumerate() {
            let (false, Some(pool)) = (kind.is_existing(), kind.pool) else {
                continue;
            };
            let next = families.len();
            let f = *family_index
                .entry((pool, kind.zone.as_str(), kind.capacity_type))
                .or_insert(next);
            if f == families.len() {
                families.push(vec![]);
            }
            families[f].push(k);
            family_of_kind[k] = Some(f);
        }
        for family in &mut families {
            family.sort_by(|&a, &b| problem.kind_order(a, b));
        }
        let class_families = problem
            .classes
            .iter()
            .map(|c| {
                let mut fs: Vec<usize> = c.kinds.iter().filter_map(|&k| family_of_kind[k]).collect();
                fs.sort_unstable();
                fs.dedup();
                fs
            })
            .collect();
        let bins = assignment.bins;
        let family_of: Vec<Option<usize>> = bins.iter().map(|b| family_of_kind[b.kind]).collect();
        let cost = bins.iter().map(|b| problem.kinds[b.kind].cost).collect();
        let mut partner_index: HashMap<(usize, CapacityType), usize> = HashMap::new();
        let mut partners: Vec<Vec<usize>> = vec![];
        let mut partners_of: Vec<usize> = vec![usize::MAX; bins.len()];
        for (i, b) in bins.iter().enumerate() {
            let kind = &problem.kinds[b.kind];
            let (Some(_), Some(pool)) = (family_of[i], kind.pool) else {
                continue;
            };
            let next = partners.len();
            let p = *partner_index.entry((pool, kind.capacity_type)).or_insert(next);
            if p == partners.len() {
                partners.push(vec![]);
            }
            partners[p].push(i);
            partners_of[i] = p;
        }
        let ledger = needs_ledger(problem).then(|| {
            let mut ledger = Ledger::new(problem);
            for b in &bins {
                let c = problem.contribution(b.kind, &b.counts);
                problem.apply_swap(&mut ledger, &Contribution::default(), &c);
            }
            ledger
        });
        Search {
            problem,
            bins,
            cost,
            family_of,
            families,
            class_families,
            partners,
            partners_of,
            ledger,
            unplaced: assignment.unplaced,
        }
    }

    /// One pass over every unit of every new node; true when some move was kept.
    fn sweep(&mut self, rng: &mut u64, deadline: Instant) -> bool {
        let mut moved = false;
        for a in 0..self.bins.len() {
            if Instant::now() >= deadline {
                return moved;
            }
            if self.family_of[a].is_none() {
                continue;
            }
            let classes: Vec<usize> = self.bins[a].counts.iter().map(|(c, _)| *c).collect();
            for c in classes {
                if count_of(&self.bins[a].counts, c) == 0 {
                    continue;
                }
                if let Some(m) = self.best_move(a, c, rng) {
                    moved |= self.apply(m);
                }
            }
        }
        moved
    }

    /// The best move or swap of one unit of `class` out of bin `a`.
    fn best_move(&self, a: usize, class: usize, rng: &mut u64) -> Option<Move> {
        self.family_of[a]?;
        let partners = &self.partners[self.partners_of[a]];
        let without = removed(self.problem, &self.bins[a], class);
        let mut best: Option<Move> = None;
        for b in sample(partners, a, rng) {
            if self.bins[b].counts.is_empty() || !self.may_use(class, b) {
                continue;
            }
            if let Some(m) = self.relocation(a, b, class, &without) {
                keep_better(&mut best, m);
            }
            for &(d, _) in &self.bins[b].counts {
                if d != class
                    && self.may_use(d, a)
                    && let Some(m) = self.swap(a, b, class, d, &without)
                {
                    keep_better(&mut best, m);
                }
            }
        }
        best.filter(|m| m.delta_cost < -EPS || (m.delta_cost <= EPS && (m.delta_potential > EPS || m.fills_paid_room)))
    }

    /// Whether `class` may use some kind of bin `b`'s family.
    fn may_use(&self, class: usize, b: usize) -> bool {
        self.family_of[b].is_some_and(|f| self.class_families[class].binary_search(&f).is_ok())
    }

    /// Move one unit of `class` from `a` (leaving `without`) to `b`.
    fn relocation(&self, a: usize, b: usize, class: usize, without: &Bin) -> Option<Move> {
        let new_b = added(self.problem, &self.bins[b], class)?;
        self.evaluate(a, b, without.clone(), new_b)
    }

    /// Swap one unit of `class` in `a` with one unit of `other` in `b`.
    fn swap(&self, a: usize, b: usize, class: usize, other: usize, without: &Bin) -> Option<Move> {
        let new_a = added(self.problem, without, other)?;
        let new_b = added(self.problem, &removed(self.problem, &self.bins[b], other), class)?;
        self.evaluate(a, b, new_a, new_b)
    }

    /// Re-size both bins and score the change.
    fn evaluate(&self, a: usize, b: usize, mut new_a: Bin, mut new_b: Bin) -> Option<Move> {
        let cost_a = self.resize(a, &mut new_a)?;
        let cost_b = self.resize(b, &mut new_b)?;
        let fills_paid_room = self.cost[a] > self.cost[b] + EPS
            && (cost_b - self.cost[b]).abs() <= EPS
            && new_b.used.iter().zip(&self.bins[b].used).all(|(n, o)| n >= o);
        let delta_cost = cost_a + cost_b - self.cost[a] - self.cost[b];
        let before =
            potential(self.problem, &self.bins[a], self.cost[a]) + potential(self.problem, &self.bins[b], self.cost[b]);
        let after = potential(self.problem, &new_a, cost_a) + potential(self.problem, &new_b, cost_b);
        Some(Move {
            a,
            b,
            new_a,
            new_b,
            cost_a,
            cost_b,
            delta_cost,
            delta_potential: after - before,
            fills_paid_room,
        })
    }

    /// Give `bin` (a changed copy of bin `i`) the cheapest kind of its family that holds it;
    /// returns its cost (0 when empty), or None when nothing holds it.
    fn resize(&self, i: usize, bin: &mut Bin) -> Option<f64> {
        if bin.counts.is_empty() {
            return Some(0.0);
        }
        let family = &self.families[self.family_of[i]?];
        let kind = family.iter().copied().find(|&k| self.holds(k, bin))?;
        bin.kind = kind;
        Some(self.problem.kinds[kind].cost)
    }

    /// Whether a new node of `kind` can hold the pods of `bin`.
    fn holds(&self, kind: usize, bin: &Bin) -> bool {
        let cap = &self.problem.kinds[kind].cap;
        bin.used.iter().zip(cap).all(|(u, c)| u <= c)
            && bin
                .counts
                .iter()
                .all(|&(c, _)| self.problem.classes[c].kinds.binary_search(&kind).is_ok())
    }

    /// Keep `m` when the global constraints allow it; true when kept.
    fn apply(&mut self, m: Move) -> bool {
        if let Some(ledger) = &mut self.ledger {
            let p = self.problem;
            let old_a = p.contribution(self.bins[m.a].kind, &self.bins[m.a].counts);
            let old_b = p.contribution(self.bins[m.b].kind, &self.bins[m.b].counts);
            let new_a = contribution_of(p, &m.new_a);
            let new_b = contribution_of(p, &m.new_b);
            let mut trial = ledger.clone();
            p.apply_swap(&mut trial, &old_a, &Contribution::default());
            p.apply_swap(&mut trial, &old_b, &Contribution::default());
            if p.check_swap(&trial, &Contribution::default(), &new_a).is_err() {
                return false;
            }
            p.apply_swap(&mut trial, &Contribution::default(), &new_a);
            if p.check_swap(&trial, &Contribution::default(), &new_b).is_err() {
                return false;
            }
            p.apply_swap(&mut trial, &Contribution::default(), &new_b);
            *ledger = trial;
        }
        self.cost[m.a] = m.cost_a;
        self.cost[m.b] = m.cost_b;
        self.bins[m.a] = m.new_a;
        self.bins[m.b] = m.new_b;
        true
    }

    fn finish(self) -> Assignment {
        Assignment {
            bins: self.bins.into_iter().filter(|b| !b.counts.is_empty()).collect(),
            unplaced: self.unplaced,
        }
    }
}

/// Whether any global constraint (pool limits or budgets, CostBudgets) needs the ledger.
fn needs_ledger(problem: &Problem) -> bool {
    !problem.budgets.is_empty()
        || problem
            .pools
            .iter()
            .any(|p| !p.limit_names.is_empty() || p.budget_left.is_some())
}

/// The ledger contribution of a bin, nothing when it is empty.
fn contribution_of(problem: &Problem, bin: &Bin) -> Contribution {
    if bin.counts.is_empty() {
        Contribution::default()
    } else {
        problem.contribution(bin.kind, &bin.counts)
    }
}

/// A bin's share of the search's potential: its squared waste (concentrated room can be given
/// back by shrinking or emptying a node, room spread thinly cannot).
fn potential(problem: &Problem, bin: &Bin, cost: f64) -> f64 {
    let w = waste(problem, bin, cost);
    w * w
}

/// Cost of the room a bin leaves unused: its cost times the share of its fullest dimension
/// that is free.
fn waste(problem: &Problem, bin: &Bin, cost: f64) -> f64 {
    if bin.counts.is_empty() {
        return 0.0;
    }
    let cap = &problem.kinds[bin.kind].cap;
    let fullest = bin
        .used
        .iter()
        .zip(cap)
        .filter(|(_, c)| **c > 0)
        .map(|(u, c)| *u as f64 / *c as f64)
        .fold(0.0, f64::max);
    cost * (1.0 - fullest.min(1.0))
}

/// `bin` with one unit of `class` less.
fn removed(problem: &Problem, bin: &Bin, class: usize) -> Bin {
    let mut out = bin.clone();
    if let Some(i) = out.counts.iter().position(|(c, _)| *c == class) {
        out.counts[i].1 -= 1;
        if out.counts[i].1 == 0 {
            out.counts.remove(i);
        }
        for (u, r) in out.used.iter_mut().zip(&problem.classes[class].req) {
            *u -= r;
        }
    }
    out
}

/// `bin` with one unit of `class` more, when the node rules allow it.
fn added(problem: &Problem, bin: &Bin, class: usize) -> Option<Bin> {
    if !problem.rules_allow(bin.kind, &bin.counts, class, 1) {
        return None;
    }
    let mut out = bin.clone();
    add_count(&mut out.counts, class, 1);
    for (u, r) in out.used.iter_mut().zip(&problem.classes[class].req) {
        *u += r;
    }
    Some(out)
}

/// Up to `TARGETS` partners other than `a`, drawn with a fixed-seed generator.
fn sample(partners: &[usize], a: usize, rng: &mut u64) -> Vec<usize> {
    if partners.len() <= TARGETS + 1 {
        return partners.iter().copied().filter(|&b| b != a).collect();
    }
    let mut out = Vec::with_capacity(TARGETS);
    while out.len() < TARGETS {
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        let b = partners[(*rng % partners.len() as u64) as usize];
        if b != a && !out.contains(&b) {
            out.push(b);
        }
    }
    out
}

/// Keep the better of two moves: lower cost change, then higher potential change.
fn keep_better(best: &mut Option<Move>, m: Move) {
    let wins = best.as_ref().is_none_or(|b| {
        m.delta_cost < b.delta_cost - EPS
            || (m.delta_cost <= b.delta_cost + EPS
                && (m.fills_paid_room, m.delta_potential) > (b.fills_paid_room, b.delta_potential + EPS))
    });
    if wins {
        *best = Some(m);
    }
}
