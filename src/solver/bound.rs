//! A proven lower bound on the list-price cost of any plan that places the same pods.
//!
//! For any weights w ≥ 0 summing to 1 over the resource dimensions (plus one "clique"
//! dimension: a set of classes of which a node can hold at most one unit), every new node of
//! kind t satisfies price_t ≥ Σ_pods Σ_d w_d · req_d / cap_{t,d} · price_t, because the pods on
//! it use at most its capacity in each dimension. Summing over nodes, the plan costs at least
//! Σ_pods min_t Σ_d w_d · req_d · price_t / cap_{t,d}, less what pods on existing nodes (which
//! cost nothing new) could save, which is at most Σ_d w_d · ρ_d · E_d with ρ_d the highest
//! price per unit of d and E_d the free existing capacity. The bound is the best of a grid of w.
//!
//! Classes that can share no kind, directly or through other classes (GPU pods on tainted GPU
//! pools and CPU pods elsewhere), never share a node: the bound is taken for each such part with
//! its own best w, and the parts' bounds are added.

use super::packing::Assignment;
use super::problem::Problem;
use crate::catalog::CapacityType;

/// The bound for the pods `assignment` places.
pub fn lower_bound(problem: &Problem, assignment: &Assignment) -> f64 {
    let (best, _) = best_weights(problem, assignment);
    // Floating-point sums are rounded down slightly so the bound stays a bound.
    (best * (1.0 - 1e-9)).max(0.0)
}

/// Per class, the least cost share of one unit under the bound's best weights (its dual-like
/// value: what room on a node is worth when that unit fills it); 0 for a class with no new kind.
pub fn unit_values(problem: &Problem, assignment: &Assignment) -> Vec<f64> {
    let (_, weights) = best_weights(problem, assignment);
    let clique = greedy_clique(problem);
    let component = components(problem);
    (0..problem.classes.len())
        .map(|c| {
            let w = &weights[component.of_class[c]];
            let in_clique = clique.contains(&c);
            let class = &problem.classes[c];
            let v = class
                .kinds
                .iter()
                .filter(|&&k| !problem.kinds[k].is_existing())
                .map(|&k| {
                    share(problem, c, k, in_clique)
                        .iter()
                        .zip(w)
                        .map(|(a, b)| a * b)
                        .sum::<f64>()
                })
                .fold(f64::INFINITY, f64::min);
            if v.is_finite() { v } else { 0.0 }
        })
        .collect()
}

/// Classes and kinds split into independent parts: two classes are in one part when some kind
/// may hold both (directly or through other classes). A node holds pods of one part only, so
/// the bound of each part holds on its own nodes and the parts' bounds add up.
struct Components {
    of_class: Vec<usize>,
    of_kind: Vec<Option<usize>>,
    count: usize,
}

fn components(problem: &Problem) -> Components {
    let n = problem.classes.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn root(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    let mut first_class_of_kind: Vec<Option<usize>> = vec![None; problem.kinds.len()];
    for (c, class) in problem.classes.iter().enumerate() {
        for &k in &class.kinds {
            match first_class_of_kind[k] {
                None => first_class_of_kind[k] = Some(c),
                Some(o) => {
                    let (a, b) = (root(&mut parent, o), root(&mut parent, c));
                    parent[a.max(b)] = a.min(b);
                }
            }
        }
    }
    let mut id: Vec<Option<usize>> = vec![None; n];
    let mut count = 0;
    let of_class: Vec<usize> = (0..n)
        .map(|c| {
            let r = root(&mut parent, c);
            *id[r].get_or_insert_with(|| {
                count += 1;
                count - 1
            })
        })
        .collect();
    let of_kind = first_class_of_kind.iter().map(|c| c.map(|c| of_class[c])).collect();
    Components {
        of_class,
        of_kind,
        count,
    }
}

/// The bound (the sum over independent parts of each part's best bound over the weight grid),
/// and each part's weights.
fn best_weights(problem: &Problem, assignment: &Assignment) -> (f64, Vec<Vec<f64>>) {
    let mut placed = vec![0u64; problem.classes.len()];
    for b in &assignment.bins {
        for &(c, n) in &b.counts {
            placed[c] += n as u64;
        }
    }
    let clique = greedy_clique(problem);
    let parts = components(problem);
    let mut total = 0.0;
    let mut weights = vec![];
    for part in 0..parts.count {
        let (bound, w) = part_bound(problem, &placed, &clique, &parts, part);
        total += bound;
        weights.push(w);
    }
    (total, weights)
}

/// The best bound over the weight grid for the classes and kinds of one part.
fn part_bound(problem: &Problem, placed: &[u64], clique: &[usize], parts: &Components, part: usize) -> (f64, Vec<f64>) {
    let dims = problem.dims.len() + 1;
    let weights = weight_grid(dims);
    let in_part = |k: usize| parts.of_kind[k] == Some(part);
    let mut rho = vec![0.0f64; dims];
    for (_, kind) in problem
        .kinds
        .iter()
        .enumerate()
        .filter(|(k, kind)| in_part(*k) && !kind.is_existing())
    {
        for (r, cap) in rho.iter_mut().zip(&kind.cap) {
            if *cap > 0 {
                *r = r.max(kind.price / *cap as f64);
            }
        }
        rho[dims - 1] = rho[dims - 1].max(kind.price);
    }
    let mut existing_free = vec![0.0f64; dims];
    for (_, kind) in problem
        .kinds
        .iter()
        .enumerate()
        .filter(|(k, kind)| in_part(*k) && kind.is_existing())
    {
        for (free, cap) in existing_free.iter_mut().zip(&kind.cap) {
            *free += (*cap).max(0) as f64;
        }
        existing_free[dims - 1] += 1.0;
    }
    let placed_here: Vec<u64> = placed
        .iter()
        .enumerate()
        .map(|(c, &n)| if parts.of_class[c] == part { n } else { 0 })
        .collect();
    let shares = share_groups(problem, &placed_here, clique);
    let free = existing_free_cpu(problem, in_part);
    let mut best = (0.0f64, weights[0].clone());
    for w in &weights {
        let dots: Vec<Vec<f64>> = shares
            .iter()
            .map(|g| {
                g.per_kind
                    .iter()
                    .map(|v| v.iter().zip(w).map(|(a, b)| a * b).sum())
                    .collect()
            })
            .collect();
        let least: Vec<f64> = shares
            .iter()
            .zip(&dots)
            .map(|(g, d)| {
                let m = d.iter().copied().fold(f64::INFINITY, f64::min);
                if m.is_finite() && !g.on_existing { m } else { 0.0 }
            })
            .collect();
        let mut total: f64 = shares.iter().zip(&least).map(|(g, m)| m * g.units as f64).sum();
        total += mix_extra(problem, &shares, &dots, &least, &free);
        let saving: f64 = (0..dims).map(|d| w[d] * rho[d] * existing_free[d]).sum();
        if total - saving > best.0 {
            best = (total - saving, w.clone());
        }
    }
    best
}

/// Free CPU cores of existing nodes per pool, among the kinds `keep` selects.
struct ExistingFree {
    /// On on-demand nodes.
    on_demand: Vec<f64>,
    /// On all nodes.
    all: Vec<f64>,
}

fn existing_free_cpu(problem: &Problem, keep: impl Fn(usize) -> bool) -> ExistingFree {
    let cpu = problem.dims.iter().position(|d| d == crate::model::resources::CPU);
    let mut free = ExistingFree {
        on_demand: vec![0.0; problem.pools.len()],
        all: vec![0.0; problem.pools.len()],
    };
    for (k, kind) in problem.kinds.iter().enumerate() {
        if let (true, true, Some(p), Some(d)) = (keep(k), kind.is_existing(), kind.pool, cpu) {
            let cores = kind.cap[d].max(0) as f64 / 1000.0;
            free.all[p] += cores;
            if kind.capacity_type == CapacityType::OnDemand {
                free.on_demand[p] += cores;
            }
        }
    }
    free
}

/// What the capacity mix adds to the bound: a pool with `minOnDemandPercent` must run at least
/// that share of its pod CPU on on-demand capacity. The units that can only use the pool
/// (`forced_pool`) set a floor on its total CPU; what the floor asks of new on-demand nodes,
/// beyond what the pool's running and free existing on-demand capacity covers, is bought at the
/// least extra share per core (a fractional knapsack: a bound on any integer choice). Only a
/// pool whose on-demand kinds serve forced units alone is counted, so no unit is charged twice,
/// and only when its forced units need more CPU than its existing nodes have free: the mix binds
/// a plan that launches nodes in the pool, and such a plan must.
fn mix_extra(problem: &Problem, shares: &[ShareGroup], dots: &[Vec<f64>], least: &[f64], free: &ExistingFree) -> f64 {
    let mut extra = 0.0;
    for (p, pool) in problem.pools.iter().enumerate() {
        if pool.min_on_demand <= 0.0 {
            continue;
        }
        let on_demand_here = |g: &ShareGroup| g.kind_meta.contains(&(Some(p), CapacityType::OnDemand));
        if shares.iter().any(|g| on_demand_here(g) && g.forced_pool != Some(p)) {
            continue;
        }
        let forced: f64 = shares
            .iter()
            .filter(|g| g.forced_pool == Some(p))
            .map(|g| g.cpu * g.units as f64)
            .sum();
        if forced <= free.all[p] + 1e-9 {
            continue;
        }
        let mut need = pool.min_on_demand * (pool.cpu_existing + forced) - pool.od_cpu_existing - free.on_demand[p];
        let mut options: Vec<(f64, f64)> = shares
            .iter()
            .zip(dots)
            .zip(least)
            .filter(|((g, _), _)| g.forced_pool == Some(p) && g.cpu > 0.0 && !g.on_existing)
            .filter_map(|((g, d), m)| {
                let od = g
                    .kind_meta
                    .iter()
                    .zip(d)
                    .filter(|(meta, _)| **meta == (Some(p), CapacityType::OnDemand))
                    .map(|(_, v)| *v)
                    .fold(f64::INFINITY, f64::min);
                od.is_finite()
                    .then(|| ((od - m).max(0.0) / g.cpu, g.cpu * g.units as f64))
            })
            .collect();
        options.sort_by(|a, b| a.0.total_cmp(&b.0));
        for (per_core, cores) in options {
            if need <= 0.0 {
                break;
            }
            let take = cores.min(need);
            extra += per_core * take;
            need -= take;
        }
    }
    extra
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
    /// CPU cores of one unit.
    cpu: f64,
    /// Pool and capacity type of each entry of `per_kind`.
    kind_meta: Vec<(Option<usize>, CapacityType)>,
    /// The pool every kind of the group's classes (new or existing) belongs to, if one.
    forced_pool: Option<usize>,
}

fn share_groups(problem: &Problem, placed: &[u64], clique: &[usize]) -> Vec<ShareGroup> {
    use std::collections::HashMap;
    // Kinds with the same capacity, price, pool and capacity type (an instance type in several
    // zones) share a key.
    type KindKey = (Vec<i64>, u64, Option<usize>, CapacityType);
    let mut kind_key: HashMap<KindKey, usize> = HashMap::new();
    let kind_ids: Vec<usize> = problem
        .kinds
        .iter()
        .map(|k| {
            let next = kind_key.len();
            *kind_key
                .entry((k.cap.clone(), k.price.to_bits(), k.pool, k.capacity_type))
                .or_insert(next)
        })
        .collect();
    type Key = (Vec<i64>, bool, Vec<usize>, bool, Option<usize>);
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
        let forced_pool = class
            .kinds
            .first()
            .and_then(|&k| problem.kinds[k].pool)
            .filter(|&p| class.kinds.iter().all(|&k| problem.kinds[k].pool == Some(p)));
        let key = (class.req.clone(), in_clique, new_kinds, on_existing, forced_pool);
        if let Some(&g) = groups.get(&key) {
            out[g].units += placed[c];
            continue;
        }
        let mut seen = std::collections::HashSet::new();
        let distinct: Vec<usize> = class
            .kinds
            .iter()
            .copied()
            .filter(|&k| !problem.kinds[k].is_existing() && seen.insert(kind_ids[k]))
            .collect();
        groups.insert(key, out.len());
        out.push(ShareGroup {
            units: placed[c],
            per_kind: distinct.iter().map(|&k| share(problem, c, k, in_clique)).collect(),
            on_existing,
            cpu: class.cpu_cores,
            kind_meta: distinct
                .iter()
                .map(|&k| (problem.kinds[k].pool, problem.kinds[k].capacity_type))
                .collect(),
            forced_pool,
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
