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
    // Per class, per new kind, the cost share vector.
    let shares: Vec<Vec<Vec<f64>>> = problem
        .classes
        .iter()
        .enumerate()
        .map(|(c, class)| {
            if placed[c] == 0 {
                return vec![];
            }
            class
                .kinds
                .iter()
                .filter(|&&k| !problem.kinds[k].is_existing())
                .map(|&k| {
                    let kind = &problem.kinds[k];
                    let mut v: Vec<f64> = class
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
                    v.push(if clique.contains(&c) { kind.price } else { 0.0 });
                    v
                })
                .collect()
        })
        .collect();
    let has_existing: Vec<bool> = problem
        .classes
        .iter()
        .map(|c| c.kinds.iter().any(|&k| problem.kinds[k].is_existing()))
        .collect();
    let mut best = 0.0f64;
    for w in &weights {
        let mut total = 0.0;
        for (c, per_kind) in shares.iter().enumerate() {
            if placed[c] == 0 {
                continue;
            }
            let m = per_kind
                .iter()
                .map(|v| v.iter().zip(w).map(|(a, b)| a * b).sum::<f64>())
                .fold(f64::INFINITY, f64::min);
            let m = if m.is_finite() { m } else { 0.0 };
            let m = if per_kind.is_empty() && has_existing[c] { 0.0 } else { m };
            total += m * placed[c] as f64;
        }
        let saving: f64 = (0..dims).map(|d| w[d] * rho[d] * existing_free[d]).sum();
        best = best.max(total - saving);
    }
    // Floating-point sums are rounded down slightly so the bound stays a bound.
    (best * (1.0 - 1e-9)).max(0.0)
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
