//! The ILP strategy: column generation over node patterns with an LP master (HiGHS, through
//! good_lp) and a fast greedy-knapsack pricing step, then an integer master over the generated
//! columns (warm-started from the greedy plan, bounded in nodes and time), rounding and FFD
//! repair. The result is never worse than the greedy baseline: if it places fewer pods or costs
//! more, the baseline is returned with status `fallback`.
//!
//! In: a `Problem`, the FFD assignment and a deadline. Out: an assignment and a status.

use std::collections::HashSet;
use std::time::Instant;

use super::clock;

use good_lp::solvers::highs::{HighsProblem, highs};
use good_lp::{
    Constraint, DualValues, Expression, ProblemVariables, Solution, SolutionWithDual, SolverModel, Variable,
    WithInitialSolution, variable,
};

use super::ffd;
use super::packing::{Assignment, Bin, add_count};
use super::plan::{list_cost, objective};
use super::problem::Problem;

/// A node pattern: a kind and the units of each class it holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Column {
    kind: usize,
    counts: Vec<(usize, u32)>,
}

/// Most column-generation rounds.
const MAX_ROUNDS: usize = 40;
/// Most branch-and-bound nodes for the integer master (a deterministic limit).
const MIP_NODES: i32 = 2000;
/// Most simplex iterations per HiGHS call under the work clock (a deterministic limit).
const WORK_SIMPLEX_ITERATIONS: i32 = 20_000;
/// Wall-clock cap on one HiGHS call under the work clock (a safety valve, not a limit the
/// search is meant to reach).
const WORK_HIGHS_SECONDS: f64 = 5.0;

/// Classes up to which column generation gets most of the time.
const SMALL: usize = 200;
/// Classes above which the local search runs first.
const LARGE: usize = 1000;

/// Share of the time the anchored construction may use (it stops between anchors).
const ANCHORED_SHARE: f64 = 0.7;
/// Rounds of the split local search on large problems, each followed by the slack filler (which
/// finds new moves after every round); each round gets an equal part of the time left.
const SPLIT_ROUNDS: usize = 6;

/// The instant `share` of the way from now to `deadline`.
fn share_of(deadline: Instant, share: f64) -> Instant {
    let now = clock::now();
    now + deadline.saturating_duration_since(now).mul_f64(share)
}

/// Solve with the ILP; `baseline` is the FFD assignment on the same problem.
pub fn solve(problem: &Problem, baseline: &Assignment, deadline: Instant) -> (Assignment, String) {
    let restricted = restrict_to_preferred_pools(problem, baseline);
    let problem = &restricted;
    // Column generation converges on small problems only; on the others moving and swapping
    // single pods gains the most per second, and on the largest it gets most of the time first
    // (the neighbourhoods, each a small integer program, get what is left).
    let classes = problem.classes.len();
    let share = if classes <= SMALL {
        0.7
    } else if classes <= LARGE {
        0.1
    } else {
        0.0
    };
    let start = match super::anchored::construct(problem, baseline, share_of(deadline, ANCHORED_SHARE)) {
        Some(anchored) if better(problem, &anchored, baseline) => anchored,
        _ => baseline.clone(),
    };
    let best = optimise(problem, &start, share_of(deadline, share), true);
    let best = super::neighbourhood::fill_slack(problem, best, share_of(deadline, 0.5));
    let best = if classes > LARGE {
        let mut best = best;
        for left in (1..=SPLIT_ROUNDS).rev() {
            best = super::local_search::improve_split(problem, best, share_of(deadline, 1.0 / (left as f64 + 0.2)));
            best = super::neighbourhood::fill_slack(problem, best, deadline);
        }
        best
    } else {
        best
    };
    let best = super::neighbourhood::fill_slack(problem, best, deadline);
    let best = super::refill::improve(problem, best, deadline);
    let best = super::local_search::improve(problem, best, deadline);
    let best = super::neighbourhood::improve(problem, best, deadline);
    if !better_or_equal(problem, &best, baseline) {
        return (baseline.clone(), "fallback".into());
    }
    (best, "feasible".into())
}

/// Column generation, rounding and (when `mip`) the integer master, until `deadline`; returns
/// the best assignment found, or `baseline` when nothing better was.
pub fn optimise(problem: &Problem, baseline: &Assignment, deadline: Instant, mip: bool) -> Assignment {
    if clock::now() >= deadline {
        return baseline.clone();
    }
    let mut columns = initial_columns(problem, baseline);
    let mut seen: HashSet<Column> = columns.iter().cloned().collect();
    let lp_deadline = clock::now() + (deadline.saturating_duration_since(clock::now())) / 2;
    let mut lp_x: Vec<f64> = vec![];
    // Columns the last LP solved over: `lp_x` holds their values, then the slacks.
    let mut lp_columns = 0;
    for _ in 0..MAX_ROUNDS {
        let Some(master) = solve_master(problem, &columns, false, None, deadline) else {
            break;
        };
        lp_x = master.values;
        lp_columns = columns.len();
        let new_columns = price(problem, &master.duals, deadline);
        let fresh: Vec<Column> = new_columns.into_iter().filter(|c| seen.insert(c.clone())).collect();
        if fresh.is_empty() {
            break;
        }
        columns.extend(fresh);
        if clock::now() > lp_deadline {
            break;
        }
    }
    let mut best = candidate_from_rounding(problem, &columns[..lp_columns], &lp_x);
    if mip && clock::now() < deadline {
        let warm = warm_start(problem, &columns, baseline);
        if let Some(master) = solve_master(problem, &columns, true, Some(warm), deadline) {
            let from_mip = assignment_from_integer(problem, &columns, &master.values);
            if better(problem, &from_mip, &best) {
                best = from_mip;
            }
        }
    }
    if better(problem, &best, baseline) {
        best
    } else {
        baseline.clone()
    }
}

/// Karpenter tries NodePools by weight: a class may use the highest-weight pools that can take
/// it, and the lower pools the greedy plan had to spill into.
fn restrict_to_preferred_pools(problem: &Problem, baseline: &Assignment) -> Problem {
    let mut restricted = problem.clone();
    let mut used_pools: Vec<HashSet<usize>> = vec![HashSet::new(); problem.classes.len()];
    for b in &baseline.bins {
        if let Some(p) = problem.kinds[b.kind].pool {
            for &(c, _) in &b.counts {
                used_pools[c].insert(p);
            }
        }
    }
    // A pool already over a limit or its budget launches nothing (as in Karpenter, and as
    // `check_swap` decides for the greedy plan); the master's rows cannot say so, since their
    // right-hand sides are clamped at zero.
    let exhausted: Vec<bool> = problem
        .pools
        .iter()
        .map(|p| p.limit_left.iter().any(|&l| l < 0) || p.budget_left.is_some_and(|b| b < -1e-9))
        .collect();
    for (ci, class) in restricted.classes.iter_mut().enumerate() {
        let top = class
            .kinds
            .iter()
            .filter(|&&k| !problem.kinds[k].is_existing())
            .filter_map(|&k| problem.kinds[k].pool)
            .filter(|&p| !exhausted[p])
            .map(|p| problem.pools[p].weight)
            .max();
        class.kinds.retain(|&k| {
            let kind = &problem.kinds[k];
            kind.is_existing()
                || kind.pool.is_some_and(|p| {
                    !exhausted[p] && (Some(problem.pools[p].weight) == top || used_pools[ci].contains(&p))
                })
        });
    }
    restricted
}

fn initial_columns(problem: &Problem, baseline: &Assignment) -> Vec<Column> {
    let mut columns: Vec<Column> = baseline
        .bins
        .iter()
        .map(|b| Column {
            kind: b.kind,
            counts: b.counts.clone(),
        })
        .collect();
    for (c, class) in problem.classes.iter().enumerate() {
        let best = class
            .kinds
            .iter()
            .copied()
            .filter(|&k| !problem.kinds[k].is_existing())
            .map(|k| {
                (
                    k,
                    max_units(problem, k, &vec![0; problem.dims.len()], &[], c, class.demand),
                )
            })
            .filter(|(_, n)| *n > 0)
            .min_by(|a, b| {
                let ca = problem.kinds[a.0].cost / a.1 as f64;
                let cb = problem.kinds[b.0].cost / b.1 as f64;
                ca.total_cmp(&cb).then(a.0.cmp(&b.0))
            });
        if let Some((k, n)) = best {
            columns.push(Column {
                kind: k,
                counts: vec![(c, n)],
            });
        }
    }
    let mut seen = HashSet::new();
    columns.retain(|c| seen.insert(c.clone()));
    columns
}

/// How many units of `class` (at most `upper`) a node of `kind` holding `counts` can still take.
pub(crate) fn max_units(
    problem: &Problem,
    kind: usize,
    used: &[i64],
    counts: &[(usize, u32)],
    class: usize,
    upper: u32,
) -> u32 {
    let c = &problem.classes[class];
    if c.kinds.binary_search(&kind).is_err() {
        return 0;
    }
    let cap = &problem.kinds[kind].cap;
    let mut n = upper as i64;
    for ((u, r), k) in used.iter().zip(&c.req).zip(cap) {
        if *r > 0 {
            n = n.min((k - u) / r);
        }
    }
    let mut n = n.max(0) as u32;
    while n > 0 && !problem.rules_allow(kind, counts, class, n) {
        n = if n > 8 { n / 2 } else { n - 1 };
    }
    n
}

struct MasterSolution {
    values: Vec<f64>,
    duals: Duals,
}

#[derive(Default)]
struct Duals {
    cover: Vec<f64>,
    existing: Vec<f64>,
    limits: Vec<Vec<f64>>,
    pool_budget: Vec<f64>,
    budgets: Vec<f64>,
    mix: Vec<f64>,
}

/// Penalty for leaving one unit of a class unplaced: more than any node costs, higher for
/// higher priorities, so budgets and limits squeeze out low-priority pods first.
fn penalties(problem: &Problem) -> Vec<f64> {
    let max_cost = problem.kinds.iter().map(|k| k.cost).fold(1.0, f64::max);
    let mut priorities: Vec<i32> = problem.classes.iter().map(|c| c.priority).collect();
    priorities.sort();
    priorities.dedup();
    problem
        .classes
        .iter()
        .map(|c| {
            let tier = priorities.binary_search(&c.priority).unwrap_or(0) as f64;
            (max_cost * 4.0 + 1.0) * (1.0 + tier) * c.unit_pods as f64
        })
        .collect()
}

struct Rows {
    cover: Vec<Constraint>,
    existing: Vec<(usize, Constraint)>,
    limits: Vec<(usize, usize, Constraint)>,
    pool_budget: Vec<(usize, Constraint)>,
    budgets: Vec<(usize, Constraint)>,
    mix: Vec<(usize, Constraint)>,
}

fn build_rows(problem: &Problem, columns: &[Column], x: &[Variable], slack: &[Variable]) -> Rows {
    let mut cover: Vec<Expression> = slack.iter().map(|s| Expression::from(*s)).collect();
    let mut existing: Vec<(usize, Expression)> = vec![];
    let mut limits: Vec<Vec<Expression>> = problem
        .pools
        .iter()
        .map(|p| vec![Expression::from(0.0); p.limit_names.len()])
        .collect();
    let mut pool_budget: Vec<Expression> = vec![Expression::from(0.0); problem.pools.len()];
    let mut budgets: Vec<Expression> = vec![Expression::from(0.0); problem.budgets.len()];
    let mut mix: Vec<Expression> = vec![Expression::from(0.0); problem.pools.len()];
    for (col, &var) in columns.iter().zip(x) {
        let kind = &problem.kinds[col.kind];
        for &(c, n) in &col.counts {
            cover[c].add_mul(n as f64, var);
        }
        if kind.is_existing() {
            match existing.iter_mut().find(|(k, _)| *k == col.kind) {
                Some((_, e)) => e.add_mul(1.0, var),
                None => existing.push((col.kind, Expression::from(var))),
            }
        }
        let contribution = problem.contribution(col.kind, &col.counts);
        if let Some((p, usage, price)) = &contribution.pool {
            for (j, u) in usage.iter().enumerate() {
                limits[*p][j].add_mul(*u as f64, var);
            }
            pool_budget[*p].add_mul(*price, var);
        }
        for (b, cost) in &contribution.budgets {
            budgets[*b].add_mul(*cost, var);
        }
        if let Some(p) = kind.pool {
            let m = problem.pools[p].min_on_demand;
            if m > 0.0 {
                let cpu: f64 = col
                    .counts
                    .iter()
                    .map(|&(c, n)| problem.classes[c].cpu_cores * n as f64)
                    .sum();
                let od = if kind.capacity_type == crate::catalog::CapacityType::OnDemand {
                    1.0
                } else {
                    0.0
                };
                mix[p].add_mul((od - m) * cpu, var);
            }
        }
    }
    let mut rows = Rows {
        cover: vec![],
        existing: vec![],
        limits: vec![],
        pool_budget: vec![],
        budgets: vec![],
        mix: vec![],
    };
    for (c, e) in cover.into_iter().enumerate() {
        rows.cover.push(e.geq(problem.classes[c].demand as f64));
    }
    for (k, e) in existing {
        rows.existing.push((k, e.leq(1.0)));
    }
    for (p, pool) in problem.pools.iter().enumerate() {
        for (j, e) in std::mem::take(&mut limits[p]).into_iter().enumerate() {
            rows.limits.push((p, j, e.leq(pool.limit_left[j].max(0) as f64)));
        }
        if let Some(left) = pool.budget_left {
            rows.pool_budget
                .push((p, std::mem::take(&mut pool_budget[p]).leq(left.max(0.0))));
        }
        if pool.min_on_demand > 0.0 {
            let rhs = pool.min_on_demand * pool.cpu_existing - pool.od_cpu_existing;
            rows.mix.push((p, std::mem::take(&mut mix[p]).geq(rhs)));
        }
    }
    for (b, budget) in problem.budgets.iter().enumerate() {
        rows.budgets.push((
            b,
            std::mem::take(&mut budgets[b]).leq((budget.cap - budget.used).max(0.0)),
        ));
    }
    rows
}

fn solve_master(
    problem: &Problem,
    columns: &[Column],
    integer: bool,
    warm: Option<Vec<f64>>,
    deadline: Instant,
) -> Option<MasterSolution> {
    if columns.is_empty() && problem.classes.is_empty() {
        // Nothing to decide (every pending pod was rejected up front); HiGHS refuses an empty
        // start solution.
        return None;
    }
    let mut vars = ProblemVariables::new();
    let x: Vec<Variable> = columns
        .iter()
        .map(|_| {
            vars.add(if integer {
                variable().integer().min(0)
            } else {
                variable().min(0)
            })
        })
        .collect();
    let slack: Vec<Variable> = problem
        .classes
        .iter()
        .map(|c| {
            let v = variable().min(0).max(c.demand as f64);
            vars.add(if integer { v.integer() } else { v })
        })
        .collect();
    let penalty = penalties(problem);
    let mut obj = Expression::from(0.0);
    for (col, &v) in columns.iter().zip(&x) {
        obj.add_mul(problem.kinds[col.kind].cost, v);
    }
    for (p, &s) in penalty.iter().zip(&slack) {
        obj.add_mul(*p, s);
    }
    let rows = build_rows(problem, columns, &x, &slack);
    let seconds = deadline.saturating_duration_since(clock::now()).as_secs_f64().max(0.05);
    let mut model: HighsProblem = vars
        .minimise(obj)
        .using(highs)
        .set_threads(1)
        .set_option("random_seed", 0)
        .set_option("mip_max_nodes", MIP_NODES);
    // Under the work clock HiGHS stops on node and iteration limits, not on time, so that it
    // decides the same way on any machine.
    model = if clock::counts_work() {
        // The wall-clock limit is only a safety valve here, far beyond what a decision needs.
        model
            .set_option("simplex_iteration_limit", WORK_SIMPLEX_ITERATIONS)
            .set_time_limit(WORK_HIGHS_SECONDS)
    } else {
        model.set_time_limit(seconds)
    };
    if let Some(w) = warm {
        // HiGHS (1.16) can lose the objective offset of columns its MIP presolve fixes when it
        // maps a start solution into the reduced space, and then stops at the start claiming
        // optimality. The start is kept (it guarantees an incumbent), presolve is not.
        model = model.set_option("presolve", "off");
        let pairs: Vec<(Variable, f64)> = x.iter().copied().zip(w.iter().copied()).collect();
        let slack_pairs: Vec<(Variable, f64)> = slack.iter().copied().zip(w[x.len()..].iter().copied()).collect();
        model = model.with_initial_solution(pairs.into_iter().chain(slack_pairs));
    }
    let cover: Vec<_> = rows.cover.into_iter().map(|c| model.add_constraint(c)).collect();
    let existing: Vec<_> = rows
        .existing
        .into_iter()
        .map(|(k, c)| (k, model.add_constraint(c)))
        .collect();
    let limits: Vec<_> = rows
        .limits
        .into_iter()
        .map(|(p, j, c)| (p, j, model.add_constraint(c)))
        .collect();
    let pool_budget: Vec<_> = rows
        .pool_budget
        .into_iter()
        .map(|(p, c)| (p, model.add_constraint(c)))
        .collect();
    let budgets: Vec<_> = rows
        .budgets
        .into_iter()
        .map(|(b, c)| (b, model.add_constraint(c)))
        .collect();
    let mix: Vec<_> = rows
        .mix
        .into_iter()
        .map(|(p, c)| (p, model.add_constraint(c)))
        .collect();
    let mut solution = model.solve().ok()?;
    let values: Vec<f64> = x.iter().chain(&slack).map(|v| solution.value(*v)).collect();
    let mut duals = Duals::default();
    if !integer {
        let d = solution.compute_dual();
        duals.cover = cover.iter().map(|r| d.dual(r.clone())).collect();
        duals.existing = vec![0.0; problem.kinds.len()];
        for (k, r) in &existing {
            duals.existing[*k] = d.dual(r.clone());
        }
        duals.limits = problem.pools.iter().map(|p| vec![0.0; p.limit_names.len()]).collect();
        for (p, j, r) in &limits {
            duals.limits[*p][*j] = d.dual(r.clone());
        }
        duals.pool_budget = vec![0.0; problem.pools.len()];
        for (p, r) in &pool_budget {
            duals.pool_budget[*p] = d.dual(r.clone());
        }
        duals.budgets = vec![0.0; problem.budgets.len()];
        for (b, r) in &budgets {
            duals.budgets[*b] = d.dual(r.clone());
        }
        duals.mix = vec![0.0; problem.pools.len()];
        for (p, r) in &mix {
            duals.mix[*p] = d.dual(r.clone());
        }
    }
    Some(MasterSolution { values, duals })
}

/// Pricing: for every kind, greedy knapsacks under three orderings of the classes by dual
/// profit density; keep patterns with negative reduced cost.
fn price(problem: &Problem, duals: &Duals, deadline: Instant) -> Vec<Column> {
    let mut found: Vec<(f64, Column)> = vec![];
    let zero = vec![0; problem.dims.len()];
    let mut by_kind: Vec<Vec<usize>> = vec![vec![]; problem.kinds.len()];
    for (c, class) in problem.classes.iter().enumerate() {
        if duals.cover.get(c).copied().unwrap_or(0.0) > 1e-9 {
            for &k in &class.kinds {
                by_kind[k].push(c);
            }
        }
    }
    for (k, kind) in problem.kinds.iter().enumerate() {
        if by_kind[k].is_empty() {
            continue;
        }
        if k % 64 == 0 && clock::now() >= deadline {
            break;
        }
        let mut fixed = kind.cost - duals.existing.get(k).copied().unwrap_or(0.0);
        if let Some(p) = kind.pool.filter(|_| !kind.is_existing()) {
            for (j, u) in kind.limit_usage.iter().enumerate() {
                fixed -= duals.limits[p][j] * *u as f64;
            }
            fixed -= duals.pool_budget[p] * kind.price;
        }
        let profit: Vec<(usize, f64)> = by_kind[k]
            .iter()
            .map(|&c| {
                let class = &problem.classes[c];
                let mut v = duals.cover[c];
                for &b in &class.budgets {
                    v += duals.budgets[b] * problem.alloc_cost(c, k);
                }
                if let Some(p) = kind.pool {
                    let m = problem.pools[p].min_on_demand;
                    if m > 0.0 {
                        let od = if kind.capacity_type == crate::catalog::CapacityType::OnDemand {
                            1.0
                        } else {
                            0.0
                        };
                        v += duals.mix[p] * (od - m) * class.cpu_cores;
                    }
                }
                (c, v)
            })
            .filter(|(_, v)| *v > 1e-9)
            .collect();
        if profit.is_empty() {
            continue;
        }
        let mut best: Option<(f64, Column)> = None;
        for ordering in 0..3 {
            let mut order = profit.clone();
            let size = |c: usize| -> (f64, f64) {
                let req = &problem.classes[c].req;
                let fracs = req
                    .iter()
                    .zip(&kind.cap)
                    .map(|(r, cap)| if *cap > 0 { *r as f64 / *cap as f64 } else { 0.0 });
                let max = fracs.clone().fold(0.0, f64::max);
                let sum: f64 = fracs.sum();
                (max.max(1e-12), sum.max(1e-12))
            };
            order.sort_by(|a, b| {
                let key = |(c, v): &(usize, f64)| match ordering {
                    0 => v / size(*c).0,
                    1 => v / size(*c).1,
                    _ => *v,
                };
                key(b).total_cmp(&key(a)).then(a.0.cmp(&b.0))
            });
            let mut used = zero.clone();
            let mut counts: Vec<(usize, u32)> = vec![];
            let mut value = 0.0;
            for &(c, v) in &order {
                let n = max_units(problem, k, &used, &counts, c, problem.classes[c].demand);
                if n == 0 {
                    continue;
                }
                add_count(&mut counts, c, n);
                for (u, r) in used.iter_mut().zip(&problem.classes[c].req) {
                    *u += r * n as i64;
                }
                value += v * n as f64;
            }
            let reduced = fixed - value;
            if reduced < -1e-7 && best.as_ref().is_none_or(|(r, _)| reduced < *r) {
                best = Some((reduced, Column { kind: k, counts }));
            }
        }
        if let Some(b) = best {
            found.push(b);
        }
    }
    found.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.kind.cmp(&b.1.kind)));
    let keep = (problem.classes.len() * 2).max(20);
    found.into_iter().take(keep).map(|(_, c)| c).collect()
}

/// Round the LP solution down, then place what is left with FFD.
fn candidate_from_rounding(problem: &Problem, columns: &[Column], lp_x: &[f64]) -> Assignment {
    let floors: Vec<f64> = lp_x.iter().take(columns.len()).map(|v| (v + 1e-6).floor()).collect();
    assignment_from_integer(problem, columns, &floors)
}

/// Turn integer column counts into bins, trim over-coverage, and let FFD place the rest.
fn assignment_from_integer(problem: &Problem, columns: &[Column], values: &[f64]) -> Assignment {
    let mut remaining: Vec<u32> = problem.classes.iter().map(|c| c.demand).collect();
    let mut seeds: Vec<Bin> = vec![];
    let mut order: Vec<usize> = (0..columns.len())
        .filter(|&i| values.get(i).copied().unwrap_or(0.0) > 0.5)
        .collect();
    order.sort_by(|&a, &b| problem.kind_order(columns[a].kind, columns[b].kind).then(a.cmp(&b)));
    for i in order {
        let copies = (values[i] + 1e-6).floor() as u32;
        for _ in 0..copies {
            let mut counts = vec![];
            for &(c, n) in &columns[i].counts {
                let take = n.min(remaining[c]);
                if take > 0 {
                    remaining[c] -= take;
                    add_count(&mut counts, c, take);
                }
            }
            if counts.is_empty() {
                continue;
            }
            let kind = columns[i].kind;
            if problem.kinds[kind].is_existing() && seeds.iter().any(|s| s.kind == kind) {
                for &(c, n) in &counts {
                    remaining[c] += n;
                }
                continue;
            }
            seeds.push(Bin {
                kind,
                used: problem.usage(&counts),
                counts,
            });
        }
    }
    ffd::complete(problem, seeds, remaining)
}

fn warm_start(problem: &Problem, columns: &[Column], baseline: &Assignment) -> Vec<f64> {
    let mut values = vec![0.0; columns.len() + problem.classes.len()];
    for b in &baseline.bins {
        if let Some(i) = columns.iter().position(|c| c.kind == b.kind && c.counts == b.counts) {
            values[i] += 1.0;
        }
    }
    for (c, n, _) in &baseline.unplaced {
        values[columns.len() + c] += *n as f64;
    }
    values
}

/// Units of each class `a` places.
pub(super) fn placed_units(problem: &Problem, a: &Assignment) -> Vec<u32> {
    let mut placed = vec![0u32; problem.classes.len()];
    for b in &a.bins {
        for &(c, n) in &b.counts {
            placed[c] += n;
        }
    }
    placed
}

/// Strictly better: places at least as much of every class and costs less, or places more.
pub(crate) fn better(problem: &Problem, a: &Assignment, b: &Assignment) -> bool {
    let (pa, pb) = (placed_units(problem, a), placed_units(problem, b));
    let covers = pa.iter().zip(&pb).all(|(x, y)| x >= y);
    covers && (pa != pb || objective(problem, a) < objective(problem, b) - 1e-9)
}

/// Acceptable against the baseline: places every unit the baseline places, and (when it places
/// exactly the same) costs no more, in list price and in objective.
fn better_or_equal(problem: &Problem, a: &Assignment, baseline: &Assignment) -> bool {
    let (pa, pb) = (placed_units(problem, a), placed_units(problem, baseline));
    if !pa.iter().zip(&pb).all(|(x, y)| x >= y) {
        return false;
    }
    if pa != pb {
        return true;
    }
    list_cost(problem, a) <= list_cost(problem, baseline) + 1e-9
        && objective(problem, a) <= objective(problem, baseline) + 1e-9
}
