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

use super::clock;

use crate::catalog::CapacityType;

use super::packing::{Assignment, Bin, Contribution, Ledger, add_count, count_of};
use super::problem::Problem;

/// Target nodes tried per source unit when a pool has more nodes than this.
const TARGETS: usize = 40;
/// Improvement smaller than this is noise.
const EPS: f64 = 1e-9;

/// New-node kinds of one pool, zone and capacity type, cheapest first.
type Family = Vec<usize>;

/// New-node kinds grouped by pool, zone and capacity type, each group cheapest first, and the
/// group of each kind (`None` for existing nodes and kinds of no pool).
pub(crate) fn zone_families(problem: &Problem) -> (Vec<Family>, Vec<Option<usize>>) {
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
    (families, family_of_kind)
}

/// Improve `assignment` by moves and swaps until no move helps or `deadline` passes.
pub fn improve(problem: &Problem, assignment: Assignment, deadline: Instant) -> Assignment {
    if clock::now() >= deadline {
        return assignment;
    }
    let mut search = Search::new(problem, assignment);
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    while clock::now() < deadline {
        if !search.sweep(&mut rng, deadline) {
            break;
        }
    }
    search.finish()
}

/// New nodes below which the split search does not pay for its threads.
const SPLIT_MIN_NODES: usize = 200;

/// Improve like `improve`, with the new nodes dealt into two halves (alternately within each
/// pool and capacity type) searched side by side, one thread each, until `deadline`. Moves
/// never cross halves there, so this runs only when no pool limit, pool budget or CostBudget
/// needs the shared ledger and there are enough new nodes; otherwise it is `improve`. The
/// halves are fixed by the input, not the machine, so a work clock still gives one result.
pub fn improve_split(problem: &Problem, assignment: Assignment, deadline: Instant) -> Assignment {
    let searched = assignment.bins.iter().filter(|b| movable(problem, b)).count();
    if needs_ledger(problem) || searched < SPLIT_MIN_NODES || clock::now() >= deadline {
        return improve(problem, assignment, deadline);
    }
    let (halves, rest) = deal(problem, assignment.bins);
    let results = clock::side_by_side(Vec::from(halves), |bins| {
        improve(problem, Assignment { bins, unplaced: vec![] }, deadline)
    });
    let mut bins = rest;
    bins.extend(results.into_iter().flat_map(|a| a.bins));
    Assignment {
        bins,
        unplaced: assignment.unplaced,
    }
}

/// Whether the search may move pods off `bin`: a new node of some pool.
fn movable(problem: &Problem, bin: &Bin) -> bool {
    let kind = &problem.kinds[bin.kind];
    !kind.is_existing() && kind.pool.is_some()
}

/// Deal the movable bins into two halves, alternately within each pool and capacity type;
/// the others are returned apart.
fn deal(problem: &Problem, bins: Vec<Bin>) -> ([Vec<Bin>; 2], Vec<Bin>) {
    let mut halves: [Vec<Bin>; 2] = [vec![], vec![]];
    let mut rest = vec![];
    let mut dealt: HashMap<(usize, CapacityType), usize> = HashMap::new();
    for bin in bins {
        if !movable(problem, &bin) {
            rest.push(bin);
            continue;
        }
        let kind = &problem.kinds[bin.kind];
        let turn = dealt
            .entry((kind.pool.unwrap_or(usize::MAX), kind.capacity_type))
            .or_insert(0);
        halves[*turn % 2].push(bin);
        *turn += 1;
    }
    (halves, rest)
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
    /// Per family, the componentwise largest capacity of its kinds up to each position: no kind
    /// before the first position whose reach covers a load can hold it.
    reach: Vec<Vec<Vec<i64>>>,
    /// Position of each new kind in its family.
    position: Vec<usize>,
    /// Per class, the families whose kinds it may use, sorted.
    class_families: Vec<Vec<usize>>,
    /// Bins of each pool and capacity type, as partners for moves.
    partners: Vec<Vec<usize>>,
    /// Index into `partners` of each new-node bin.
    partners_of: Vec<usize>,
    ledger: Option<Ledger>,
    unplaced: Vec<(usize, u32, String)>,
}

/// A candidate change of two bins: one unit of `class` from `a` to `b`, and for a swap one
/// unit of `other` back; both bins re-sized.
struct Move {
    a: usize,
    b: usize,
    class: usize,
    other: Option<usize>,
    kind_a: usize,
    kind_b: usize,
    cost_a: f64,
    cost_b: f64,
    delta_cost: f64,
    delta_potential: f64,
    /// Load moves from a dearer node into room a cheaper one already pays for.
    fills_paid_room: bool,
}

/// Buffers `evaluate` reuses for the resources each side of a move would use.
#[derive(Default)]
struct Scratch {
    used_a: Vec<i64>,
    used_b: Vec<i64>,
    /// The re-sized source of a plain move (no unit back): the same for every partner.
    moved_a: Option<Option<(usize, f64)>>,
}

/// One side of a candidate move: resources used after it, and the classes on the node
/// (conservatively, including a unit that leaves when others of its class stay or not).
struct Side<'b> {
    bin: usize,
    used: &'b [i64],
    classes: &'b [(usize, u32)],
    extra: Option<usize>,
    emptied: bool,
}

impl<'a> Search<'a> {
    fn new(problem: &'a Problem, assignment: Assignment) -> Self {
        let (mut families, family_of_kind) = zone_families(problem);
        let mut position = vec![0; problem.kinds.len()];
        for family in &mut families {
            for (i, &k) in family.iter().enumerate() {
                position[k] = i;
            }
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
        let reach = families.iter().map(|f| prefix_reach(problem, f)).collect();
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
            reach,
            position,
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
            if clock::now() >= deadline {
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
        let mut best: Option<Move> = None;
        let mut scratch = Scratch::default();
        for b in sample(partners, a, rng) {
            if self.bins[b].counts.is_empty() || !self.may_use(class, b) {
                continue;
            }
            if let Some(m) = self.evaluate(a, b, class, None, &mut scratch) {
                keep_better(&mut best, m);
            }
            for &(d, _) in &self.bins[b].counts {
                if d != class
                    && self.may_use(d, a)
                    && let Some(m) = self.evaluate(a, b, class, Some(d), &mut scratch)
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

    /// Score moving one unit of `class` from `a` to `b` (and one of `other` back).
    fn evaluate(&self, a: usize, b: usize, class: usize, other: Option<usize>, scratch: &mut Scratch) -> Option<Move> {
        let p = self.problem;
        let (bin_a, bin_b) = (&self.bins[a], &self.bins[b]);
        if !self.rules_allow_after(bin_b, other, class) {
            return None;
        }
        if let Some(d) = other
            && !self.rules_allow_after(bin_a, Some(class), d)
        {
            return None;
        }
        let req = |c: usize| &p.classes[c].req;
        let Scratch {
            used_a,
            used_b,
            moved_a,
        } = scratch;
        used_a.clear();
        used_a.extend_from_slice(&bin_a.used);
        used_b.clear();
        used_b.extend_from_slice(&bin_b.used);
        for ((ua, ub), r) in used_a.iter_mut().zip(used_b.iter_mut()).zip(req(class)) {
            *ua -= r;
            *ub += r;
        }
        if let Some(d) = other {
            for ((ua, ub), r) in used_a.iter_mut().zip(used_b.iter_mut()).zip(req(d)) {
                *ua += r;
                *ub -= r;
            }
        }
        let (used_a, used_b) = (&used_a[..], &used_b[..]);
        let emptied = other.is_none() && bin_a.counts.len() == 1 && bin_a.counts[0].1 == 1;
        let side_a = Side {
            bin: a,
            used: used_a,
            classes: &bin_a.counts,
            extra: other,
            emptied,
        };
        let side_b = Side {
            bin: b,
            used: used_b,
            classes: &bin_b.counts,
            extra: Some(class),
            emptied: false,
        };
        let (kind_a, cost_a) = match (other, *moved_a) {
            (None, Some(known)) => known?,
            (None, None) => (*moved_a.insert(self.resize(&side_a)))?,
            (Some(_), _) => self.resize(&side_a)?,
        };
        let (kind_b, cost_b) = self.resize(&side_b)?;
        let fills_paid_room = self.cost[a] > self.cost[b] + EPS
            && (cost_b - self.cost[b]).abs() <= EPS
            && side_b.used.iter().zip(&bin_b.used).all(|(n, o)| n >= o);
        let delta_cost = cost_a + cost_b - self.cost[a] - self.cost[b];
        let before =
            potential(p, &bin_a.used, bin_a.kind, self.cost[a]) + potential(p, &bin_b.used, bin_b.kind, self.cost[b]);
        let after = if emptied {
            0.0
        } else {
            potential(p, side_a.used, kind_a, cost_a)
        } + potential(p, side_b.used, kind_b, cost_b);
        Some(Move {
            a,
            b,
            class,
            other,
            kind_a,
            kind_b,
            cost_a,
            cost_b,
            delta_cost,
            delta_potential: after - before,
            fills_paid_room,
        })
    }

    /// Whether the node rules let one unit of `class` join `bin` once one unit of `leaving` has
    /// left it.
    fn rules_allow_after(&self, bin: &Bin, leaving: Option<usize>, class: usize) -> bool {
        let c = &self.problem.classes[class];
        if c.rules.is_empty() && c.conflicts.is_empty() {
            return true;
        }
        match leaving {
            None => self.problem.rules_allow(bin.kind, &bin.counts, class, 1),
            Some(l) => {
                let mut counts = bin.counts.clone();
                if let Some(i) = counts.iter().position(|(x, _)| *x == l) {
                    counts[i].1 -= 1;
                    if counts[i].1 == 0 {
                        counts.remove(i);
                    }
                }
                self.problem.rules_allow(bin.kind, &counts, class, 1)
            }
        }
    }

    /// The cheapest kind of a side's family that holds it, and its cost (0 when emptied). A side
    /// that only grew starts the scan at its current kind: a cheaper kind cannot hold more.
    fn resize(&self, side: &Side) -> Option<(usize, f64)> {
        let current = self.bins[side.bin].kind;
        if side.emptied {
            return Some((current, 0.0));
        }
        let f = self.family_of[side.bin]?;
        let family = &self.families[f];
        let grew = side.used.iter().zip(&self.bins[side.bin].used).all(|(n, o)| n >= o);
        let reach = &self.reach[f];
        let first_reaching = reach.partition_point(|r| r.iter().zip(side.used).any(|(c, u)| c < u));
        let start = if grew { self.position[current] } else { 0 }.max(first_reaching);
        if start >= family.len() {
            return None;
        }
        let kind = family[start..].iter().copied().find(|&k| self.holds(k, side))?;
        Some((kind, self.problem.kinds[kind].cost))
    }

    /// Whether a new node of `kind` can hold a side.
    fn holds(&self, kind: usize, side: &Side) -> bool {
        let classes = side.classes.iter().map(|(c, _)| *c).chain(side.extra);
        self.problem.holds(kind, side.used, classes)
    }

    /// Keep `m` when the global constraints allow it; true when kept.
    fn apply(&mut self, m: Move) -> bool {
        let p = self.problem;
        let mut new_a = removed(p, &self.bins[m.a], m.class);
        let mut new_b = self.bins[m.b].clone();
        if let Some(d) = m.other {
            new_b = removed(p, &new_b, d);
            new_a = added(p, &new_a, d);
        }
        new_b = added(p, &new_b, m.class);
        new_a.kind = m.kind_a;
        new_b.kind = m.kind_b;
        if let Some(ledger) = &mut self.ledger {
            let old_a = p.contribution(self.bins[m.a].kind, &self.bins[m.a].counts);
            let old_b = p.contribution(self.bins[m.b].kind, &self.bins[m.b].counts);
            let (contribution_a, contribution_b) = (contribution_of(p, &new_a), contribution_of(p, &new_b));
            let mut trial = ledger.clone();
            p.apply_swap(&mut trial, &old_a, &Contribution::default());
            p.apply_swap(&mut trial, &old_b, &Contribution::default());
            for c in [&contribution_a, &contribution_b] {
                if p.check_swap(&trial, &Contribution::default(), c).is_err() {
                    return false;
                }
                p.apply_swap(&mut trial, &Contribution::default(), c);
            }
            *ledger = trial;
        }
        self.cost[m.a] = m.cost_a;
        self.cost[m.b] = m.cost_b;
        self.bins[m.a] = new_a;
        self.bins[m.b] = new_b;
        true
    }

    fn finish(self) -> Assignment {
        Assignment {
            bins: self.bins.into_iter().filter(|b| !b.counts.is_empty()).collect(),
            unplaced: self.unplaced,
        }
    }
}

/// The componentwise largest capacity of `family`'s kinds up to each position.
fn prefix_reach(problem: &Problem, family: &[usize]) -> Vec<Vec<i64>> {
    let mut reach: Vec<Vec<i64>> = Vec::with_capacity(family.len());
    for &k in family {
        let cap = &problem.kinds[k].cap;
        let next = match reach.last() {
            None => cap.clone(),
            Some(prev) => prev.iter().zip(cap).map(|(a, b)| *a.max(b)).collect(),
        };
        reach.push(next);
    }
    reach
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
fn potential(problem: &Problem, used: &[i64], kind: usize, cost: f64) -> f64 {
    let w = waste(problem, used, kind, cost);
    w * w
}

/// Cost of the room a node leaves unused: its cost times the share of its fullest dimension
/// that is free (0 for an empty node, whose cost is 0).
pub(super) fn waste(problem: &Problem, used: &[i64], kind: usize, cost: f64) -> f64 {
    let fullest = used
        .iter()
        .zip(&problem.kinds[kind].cap)
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

/// `bin` with one unit of `class` more (the caller checked the node rules).
fn added(problem: &Problem, bin: &Bin, class: usize) -> Bin {
    let mut out = bin.clone();
    add_count(&mut out.counts, class, 1);
    for (u, r) in out.used.iter_mut().zip(&problem.classes[class].req) {
        *u += r;
    }
    out
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
