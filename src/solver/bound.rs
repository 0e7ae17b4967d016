//! A proven lower bound on the list-price cost of any plan that places the same pods.
//!
//! For any weights w ≥ 0 summing to 1 over the resource dimensions (plus one "clique"
//! dimension: a set of classes of which a node can hold at most one unit), every new node of
//! kind t satisfies price_t ≥ Σ_pods Σ_d w_d · req_d / cap_{t,d} · price_t, because the pods on
//! it use at most its capacity in each dimension. Summing over nodes, the plan costs at least
//! Σ_pods min_t Σ_d w_d · req_d · price_t / cap_{t,d}, less what pods on existing nodes (which
//! cost nothing new) could save, which is at most Σ_d w_d · ρ_d · E_d with ρ_d the highest
//! price per unit of d and E_d the free existing capacity. The bound is the best of a grid of w.

use super::packing::Assignment;
use super::problem::Problem;

/// The bound for the pods `assignment` places.
pub fn lower_bound(problem: &Problem, assignment: &Assignment) -> f64 {
    let (best, _) = best_weights(problem, assignment);
    // Floating-point sums are rounded down slightly so the bound stays a bound.
    (best * (1.0 - 1e-9)).max(0.0)
}

/// Per class, the least cost share of one unit under the bound's best weights (its dual-like
/// value: what room on a node is worth when that unit fills it); 0 for a class with no new kind.
pub fn unit_values(problem: &Problem, assignment: &Assignment) -> Vec<f64> {
    let (_, w) = best_weights(problem, assignment);
    let clique = greedy_clique(problem);
    (0..problem.classes.len())
        .map(|c| {
            let in_clique = clique.contains(&c);
            let class = &problem.classes[c];
            let v = class
                .kinds
                .iter()
                .filter(|&&k| !problem.kinds[k].is_existing())
                .map(|&k| {
                    share(problem, c, k, in_clique)
                        .iter()
                        .zip(&w)
                        .map(|(a, b)| a * b)
                        .sum::<f64>()
                })
                .fold(f64::INFINITY, f64::min);
            if v.is_finite() { v } else { 0.0 }
        })
        .collect()
}

/// The best bound over the weight grid, and its weights.
fn best_weights(problem: &Problem, assignment: &Assignment) -> (f64, Vec<f64>) {
    let mut placed = vec![0u64; problem.classes.len()];
    for b in &assignment.bins {
        for &(c, n) in &b.counts {
            placed[c] += n as u64;
        }
    }
    let clique = greedy_clique(problem);
    let dims = problem.dims.len() + 1;
    let weights = weight_grid(dims);
    let new_kinds: Vec<usize> = (0..problem.kinds.len())
        .filter(|&k| !problem.kinds[k].is_existing())
        .collect();
    let mut rho = vec![0.0f64; dims];
    for &k in &new_kinds {
        let kind = &problem.kinds[k];
        for (r, cap) in rho.iter_mut().zip(&kind.cap) {
            if *cap > 0 {
                *r = r.max(kind.price / *cap as f64);
            }
        }
        rho[dims - 1] = rho[dims - 1].max(kind.price);
    }
    let mut existing_free = vec![0.0f64; dims];
    for kind in problem.kinds.iter().filter(|k| k.is_existing()) {
        for (free, cap) in existing_free.iter_mut().zip(&kind.cap) {
            *free += (*cap).max(0) as f64;
        }
        existing_free[dims - 1] += 1.0;
    }
    let shares = share_groups(problem, &placed, &clique);
    let mut best = (0.0f64, weights[0].clone());
    for w in &weights {
        let mut total = 0.0;
        for group in &shares {
            let m = group
                .per_kind
                .iter()
                .map(|v| v.iter().zip(w).map(|(a, b)| a * b).sum::<f64>())
                .fold(f64::INFINITY, f64::min);
            let m = if m.is_finite() && !group.on_existing { m } else { 0.0 };
            total += m * group.units as f64;
        }
        let saving: f64 = (0..dims).map(|d| w[d] * rho[d] * existing_free[d]).sum();
        if total - saving > best.0 {
            best = (total - saving, w.clone());
        }
    }
    best
}

/// The cost share vector of one unit of `class` on a node of `kind`: per dimension, the price
/// times the share of the capacity it takes, then the clique share.
fn share(problem: &Problem, class: usize, kind: usize, in_clique: bool) -> Vec<f64> {
    let kind = &problem.kinds[kind];
    let mut v: Vec<f64> = problem.classes[class]
        .req
        .iter()
        .zip(&kind.cap)
        .map(|(r, cap)| {
            if *cap > 0 {
                kind.price * *r as f64 / *cap as f64
            } else {
                0.0
            }
        })
        .collect();
    v.push(if in_clique { kind.price } else { 0.0 });
    v
}

/// Placed classes that share requests, clique membership and kind prices and capacities: they
/// contribute the same per unit, so each group is priced once.
struct ShareGroup {
    /// Units placed, over the group's classes.
    units: u64,
    /// Per distinct new kind (capacity and price), the cost share vector of one unit.
    per_kind: Vec<Vec<f64>>,
    /// True when a class of the group has no new kind but may use an existing node (its share
    /// is then zero: existing capacity costs nothing new).
    on_existing: bool,
}

fn share_groups(problem: &Problem, placed: &[u64], clique: &[usize]) -> Vec<ShareGroup> {
    use std::collections::HashMap;
    // Kinds with the same capacity and price (an instance type in several zones) share a key.
    let mut kind_key: HashMap<(Vec<i64>, u64), usize> = HashMap::new();
    let kind_ids: Vec<usize> = problem
        .kinds
        .iter()
        .map(|k| {
            let next = kind_key.len();
            *kind_key.entry((k.cap.clone(), k.price.to_bits())).or_insert(next)
        })
        .collect();
    type Key = (Vec<i64>, bool, Vec<usize>, bool);
    let mut groups: HashMap<Key, usize> = HashMap::new();
    let mut out: Vec<ShareGroup> = vec![];
    for (c, class) in problem.classes.iter().enumerate() {
        if placed[c] == 0 {
            continue;
        }
        let mut new_kinds: Vec<usize> = class
            .kinds
            .iter()
            .filter(|&&k| !problem.kinds[k].is_existing())
            .map(|&k| kind_ids[k])
            .collect();
        new_kinds.sort_unstable();
        new_kinds.dedup();
        let on_existing = new_kinds.is_empty() && class.kinds.iter().any(|&k| problem.kinds[k].is_existing());
        let in_clique = clique.contains(&c);
        let key = (class.req.clone(), in_clique, new_kinds, on_existing);
        if let Some(&g) = groups.get(&key) {
            out[g].units += placed[c];
            continue;
        }
        let mut seen = std::collections::HashSet::new();
        let per_kind = class
            .kinds
            .iter()
            .filter(|&&k| !problem.kinds[k].is_existing() && seen.insert(kind_ids[k]))
            .map(|&k| share(problem, c, k, in_clique))
            .collect();
        groups.insert(key, out.len());
        out.push(ShareGroup {
            units: placed[c],
            per_kind,
            on_existing,
        });
    }
    out
}

/// A set of classes that pairwise conflict (each with itself too): a node holds at most one
/// unit of the whole set.
fn greedy_clique(problem: &Problem) -> Vec<usize> {
    let mut order: Vec<usize> = (0..problem.classes.len())
        .filter(|&c| problem.classes[c].conflicts.contains(&c))
        .collect();
    order.sort_by_key(|&c| std::cmp::Reverse(problem.classes[c].demand));
    let mut clique: Vec<usize> = vec![];
    for c in order {
        if clique.iter().all(|&o| problem.classes[c].conflicts.contains(&o)) {
            clique.push(c);
        }
    }
    clique
}

/// Unit vectors, and every pair of dimensions mixed 1:3, 1:1 and 3:1.
fn weight_grid(dims: usize) -> Vec<Vec<f64>> {
    let mut out = vec![];
    for i in 0..dims {
        let mut w = vec![0.0; dims];
        w[i] = 1.0;
        out.push(w);
        for j in i + 1..dims {
            for a in [0.25, 0.5, 0.75] {
                let mut w = vec![0.0; dims];
                w[i] = a;
                w[j] = 1.0 - a;
                out.push(w);
            }
        }
    }
    out
}
