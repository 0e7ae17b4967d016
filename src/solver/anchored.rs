//! Anchored construction: where a class allows at most one unit per node (hostname
//! anti-affinity to its own pods, a host port), each of its units anchors a node of its own. FFD
//! opens those nodes last, at their smallest size and mostly empty, after packing everything
//! else onto large nodes. Here every anchor node is built first: for a few of the cheapest
//! instance types that hold the anchor, fill the node from the pods still to place, each time with
//! the request shape that best matches the room left (the dot-product rule of vector bin
//! packing), and keep the type whose pods are worth most per dollar (each unit valued at its cost
//! allocation at the cheapest unit prices it can get). What is left is packed the FFD way.
//!
//! In: a problem, the FFD assignment and a deadline. Out: a complete assignment (the caller
//! keeps the cheaper of it and its other candidates), or `None` when no class anchors a node.

use std::collections::HashMap;
use std::time::Instant;

use super::clock;
use super::ffd;
use super::ilp::better;
use super::local_search::zone_families;
use super::packing::{Assignment, Bin, Contribution, Ledger, add_count, count_of};
use super::problem::Problem;

/// Instance types tried per anchor in each pool, zone and capacity type, cheapest first (more
/// lets the first anchors take the small pods the last ones need: 6 cost 2% more than 4 on
/// Karpenter's 10k-pod benchmark, 2 and 3 cost 14% and 6% more).
const SIZES_TRIED: usize = 4;

/// Build the anchored assignment, or `None` when no class anchors nodes or time runs out.
pub fn construct(problem: &Problem, baseline: &Assignment, deadline: Instant) -> Option<Assignment> {
    let anchors: Vec<usize> = ffd::class_order(problem)
        .into_iter()
        .filter(|&c| problem.classes[c].conflicts.contains(&c))
        .collect();
    if anchors.is_empty() {
        return None;
    }
    let (families, family_of_kind) = zone_families(problem);
    let shapes = shapes(problem);
    let worth = unit_worth(problem);
    let sizes: Vec<Vec<Vec<usize>>> = anchors
        .iter()
        .map(|&a| families.iter().map(|f| sizes(problem, f, a)).collect())
        .collect();
    let inputs = Inputs {
        sizes,
        anchors,
        worth,
        by_family: classes_by_family(problem, &shapes, families.len(), &family_of_kind),
        shapes,
    };
    // The two fill rules build side by side, one thread each.
    let results = clock::side_by_side(vec![FillRule::Alignment, FillRule::LargestShare], |rule| {
        construct_with(problem, baseline, &inputs, deadline, rule)
    });
    let mut best: Option<Assignment> = None;
    for built in results.into_iter().flatten() {
        if best.as_ref().is_none_or(|b| better(problem, &built, b)) {
            best = Some(built);
        }
    }
    best
}

/// What both constructions read: the anchor classes in FFD order, the types tried for each
/// (per family), each class's worth per unit, and the request shapes.
struct Inputs {
    anchors: Vec<usize>,
    /// Per anchor class and family, the types tried (they do not change while building).
    sizes: Vec<Vec<Vec<usize>>>,
    worth: Vec<f64>,
    shapes: Vec<Shape>,
    /// Per family and shape, the classes of the shape that may use some kind of the family.
    by_family: Vec<Vec<Vec<usize>>>,
}

/// Anchor nodes built between two prunings of the classes with no units left.
const PRUNE_EVERY: usize = 32;

/// Per family and shape, the classes of that shape (in FFD order) that may use some kind of
/// the family.
fn classes_by_family(
    problem: &Problem,
    shapes: &[Shape],
    families: usize,
    family_of_kind: &[Option<usize>],
) -> Vec<Vec<Vec<usize>>> {
    let mut out = vec![vec![vec![]; shapes.len()]; families];
    let mut seen = vec![usize::MAX; families];
    for (s, shape) in shapes.iter().enumerate() {
        for &c in &shape.classes {
            for f in problem.classes[c].kinds.iter().filter_map(|&k| family_of_kind[k]) {
                if seen[f] != c {
                    seen[f] = c;
                    out[f][s].push(c);
                }
            }
        }
    }
    out
}

/// How a node is filled: each step adds a unit of the fitting shape that scores highest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FillRule {
    /// The dot product of request and room left, both as shares of the capacity.
    Alignment,
    /// The request's largest share of the capacity in any dimension (first-fit decreasing by
    /// dominant share).
    LargestShare,
}

impl FillRule {
    fn score(self, used: &[i64], req: &[i64], cap: &[i64]) -> f64 {
        match self {
            FillRule::Alignment => alignment(used, req, cap),
            FillRule::LargestShare => req
                .iter()
                .zip(cap)
                .filter(|(_, k)| **k > 0)
                .map(|(r, k)| *r as f64 / *k as f64)
                .fold(0.0, f64::max),
        }
    }
}

/// The construction with one fill rule; `None` when time runs out.
fn construct_with(
    problem: &Problem,
    baseline: &Assignment,
    inputs: &Inputs,
    deadline: Instant,
    rule: FillRule,
) -> Option<Assignment> {
    let mut left: Vec<u32> = problem.classes.iter().map(|c| c.demand).collect();
    // Pods the baseline put on existing nodes stay there: that room costs nothing.
    let mut seeds: Vec<Bin> = vec![];
    let mut ledger = Ledger::new(problem);
    for bin in baseline.bins.iter().filter(|b| problem.kinds[b.kind].is_existing()) {
        for &(c, n) in &bin.counts {
            left[c] -= n;
        }
        book(problem, &mut ledger, bin);
        seeds.push(bin.clone());
    }
    let mut live = inputs.by_family.clone();
    let mut built = 0usize;
    for (&anchor, sizes) in inputs.anchors.iter().zip(&inputs.sizes) {
        while left[anchor] > 0 {
            if clock::now() >= deadline {
                return None;
            }
            built += 1;
            if built.is_multiple_of(PRUNE_EVERY) {
                for classes in live.iter_mut().flatten() {
                    classes.retain(|&c| left[c] > 0);
                }
            }
            let Some(bin) = best_anchor_node(problem, sizes, inputs, &live, &left, anchor, rule) else {
                break;
            };
            let contribution = problem.contribution(bin.kind, &bin.counts);
            if problem
                .check_swap(&ledger, &Contribution::default(), &contribution)
                .is_err()
            {
                break;
            }
            problem.apply_swap(&mut ledger, &Contribution::default(), &contribution);
            for &(c, n) in &bin.counts {
                left[c] -= n;
            }
            seeds.push(bin);
        }
    }
    Some(ffd::complete(problem, seeds, left))
}

/// Add an existing node's budget allocation to the ledger.
fn book(problem: &Problem, ledger: &mut Ledger, bin: &Bin) {
    let contribution = problem.contribution(bin.kind, &bin.counts);
    problem.apply_swap(ledger, &Contribution::default(), &contribution);
}

/// Classes with the same requests, in FFD order: the fill picks a shape, then a class of it.
struct Shape {
    req: Vec<i64>,
    classes: Vec<usize>,
}

fn shapes(problem: &Problem) -> Vec<Shape> {
    let mut index: HashMap<&[i64], usize> = HashMap::new();
    let mut out: Vec<Shape> = vec![];
    for c in ffd::class_order(problem) {
        let req = problem.classes[c].req.as_slice();
        let next = out.len();
        let s = *index.entry(req).or_insert(next);
        if s == out.len() {
            out.push(Shape {
                req: req.to_vec(),
                classes: vec![],
            });
        }
        out[s].classes.push(c);
    }
    out
}

/// Per class, what one unit is worth: its cost allocation at the cheapest unit prices of the
/// new kinds it may use (0 when it may use none).
fn unit_worth(problem: &Problem) -> Vec<f64> {
    (0..problem.classes.len())
        .map(|c| {
            let w = problem.classes[c]
                .kinds
                .iter()
                .filter(|&&k| !problem.kinds[k].is_existing())
                .map(|&k| problem.alloc_cost(c, k))
                .fold(f64::INFINITY, f64::min);
            if w.is_finite() { w } else { 0.0 }
        })
        .collect()
}

/// The node for one unit of `anchor` whose pods are worth most per unit of objective cost,
/// over `sizes`, the cheapest few types of every family that can hold the anchor.
fn best_anchor_node(
    problem: &Problem,
    sizes: &[Vec<usize>],
    inputs: &Inputs,
    live: &[Vec<Vec<usize>>],
    left: &[u32],
    anchor: usize,
    rule: FillRule,
) -> Option<Bin> {
    let mut best: Option<(f64, Bin)> = None;
    let kinds = sizes
        .iter()
        .enumerate()
        .flat_map(|(f, ks)| ks.iter().map(move |&k| (f, k)));
    for (f, kind) in kinds {
        let bin = fill(problem, kind, &inputs.shapes, &live[f], left, anchor, rule);
        let cost = problem.kinds[kind].cost.max(1e-12);
        let value: f64 = bin.counts.iter().map(|&(c, n)| inputs.worth[c] * n as f64).sum();
        let score = value / cost;
        let wins = match &best {
            None => true,
            Some((s, b)) => score > *s + 1e-12 || (score > *s - 1e-12 && problem.kind_order(kind, b.kind).is_lt()),
        };
        if wins {
            best = Some((score, bin));
        }
    }
    best.map(|(_, bin)| bin)
}

/// The `SIZES_TRIED` cheapest kinds of `family` that can hold one unit of `anchor`.
fn sizes(problem: &Problem, family: &[usize], anchor: usize) -> Vec<usize> {
    let empty = vec![0; problem.dims.len()];
    family
        .iter()
        .copied()
        .filter(|&k| problem.can_add(k, &empty, &[], anchor, 1))
        .take(SIZES_TRIED)
        .collect()
}

/// A node of `kind` holding one unit of `anchor`, filled from the units still in `left` one
/// unit at a time with the fitting shape `rule` scores highest.
fn fill(
    problem: &Problem,
    kind: usize,
    shapes: &[Shape],
    classes: &[Vec<usize>],
    left: &[u32],
    anchor: usize,
    rule: FillRule,
) -> Bin {
    let mut node = Bin {
        kind,
        used: problem.classes[anchor].req.clone(),
        counts: vec![(anchor, 1)],
    };
    while let Some((s, c)) = next_unit(problem, shapes, classes, left, &node, rule) {
        add_count(&mut node.counts, c, 1);
        for (u, r) in node.used.iter_mut().zip(&shapes[s].req) {
            *u += r;
        }
    }
    node
}

/// The (shape, class) unit of the best-matching shape that may join `node`, if any; `classes`
/// lists, per shape, the classes that may use the node's family.
fn next_unit(
    problem: &Problem,
    shapes: &[Shape],
    classes: &[Vec<usize>],
    left: &[u32],
    node: &Bin,
    rule: FillRule,
) -> Option<(usize, usize)> {
    let cap = &problem.kinds[node.kind].cap;
    let mut tried = vec![false; shapes.len()];
    loop {
        // The highest-scoring fitting shape not tried yet (ties to the earlier shape).
        let mut best: Option<(f64, usize)> = None;
        for (s, shape) in shapes.iter().enumerate() {
            if tried[s] || classes[s].is_empty() || !fits_room(&node.used, &shape.req, cap) {
                continue;
            }
            let score = rule.score(&node.used, &shape.req, cap);
            if best.is_none_or(|(b, _)| score > b) {
                best = Some((score, s));
            }
        }
        let (_, s) = best?;
        tried[s] = true;
        let class = classes[s].iter().copied().find(|&c| {
            left[c] > count_of(&node.counts, c) && problem.can_add(node.kind, &node.used, &node.counts, c, 1)
        });
        if let Some(c) = class {
            return Some((s, c));
        }
    }
}

/// True when `req` fits in the room `cap - used`.
fn fits_room(used: &[i64], req: &[i64], cap: &[i64]) -> bool {
    used.iter().zip(req).zip(cap).all(|((u, r), k)| u + r <= *k)
}

/// The dot product of a request and the room left, each as shares of the capacity.
fn alignment(used: &[i64], req: &[i64], cap: &[i64]) -> f64 {
    used.iter()
        .zip(req)
        .zip(cap)
        .filter(|(_, k)| **k > 0)
        .map(|((u, r), k)| {
            let k = *k as f64;
            (*r as f64 / k) * ((k - *u as f64) / k)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::solver::PlanOptions;
    use crate::solver::plan::list_cost;

    fn karpenter(pods: usize) -> Problem {
        let w = crate::bench::karpenter::workload(pods).unwrap();
        Problem::build(&w.snapshot, &w.catalog, &PlanOptions::default())
    }

    fn far_future() -> Instant {
        clock::now() + std::time::Duration::from_secs(60)
    }

    #[test]
    fn every_anchor_gets_a_filled_node_of_its_own_and_it_beats_ffd() {
        let problem = karpenter(500);
        let greedy = ffd::solve(&problem);
        let built = construct(&problem, &greedy, far_future()).unwrap();
        assert!(built.unplaced.is_empty());
        let anchored_units = |b: &Bin| -> u32 {
            b.counts
                .iter()
                .filter(|(c, _)| problem.classes[*c].conflicts.contains(c))
                .map(|(_, n)| n)
                .sum()
        };
        assert!(built.bins.iter().all(|b| anchored_units(b) <= 1));
        let anchors: u32 = problem
            .classes
            .iter()
            .enumerate()
            .filter(|(c, class)| class.conflicts.contains(c))
            .map(|(_, class)| class.demand)
            .sum();
        assert_eq!(built.bins.iter().map(anchored_units).sum::<u32>(), anchors);
        let (ffd_cost, cost) = (list_cost(&problem, &greedy), list_cost(&problem, &built));
        assert!(cost < 0.9 * ffd_cost, "anchored {cost} vs FFD {ffd_cost}");
    }

    #[test]
    fn the_same_input_builds_the_same_nodes() {
        let problem = karpenter(300);
        let greedy = ffd::solve(&problem);
        let a = construct(&problem, &greedy, far_future()).unwrap();
        let b = construct(&problem, &greedy, far_future()).unwrap();
        assert_eq!(a.bins, b.bins);
    }

    #[test]
    fn nothing_is_built_without_anchors_or_time() {
        let w = crate::bench::aiml::workload().unwrap();
        let problem = Problem::build(&w.snapshot, &w.catalog, &PlanOptions::default());
        let greedy = ffd::solve(&problem);
        assert!(
            problem
                .classes
                .iter()
                .enumerate()
                .all(|(c, k)| !k.conflicts.contains(&c))
        );
        assert!(construct(&problem, &greedy, far_future()).is_none());
        let problem = karpenter(100);
        let greedy = ffd::solve(&problem);
        assert!(construct(&problem, &greedy, clock::now()).is_none());
    }
}
