//! Packing primitives shared by every strategy: what one node can take, and the global ledger
//! of pool limits, pool budgets, CostBudgets and the capacity mix.

use super::problem::Problem;

/// Pods (by class, in units) placed on one node of a given kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bin {
    /// The node kind.
    pub kind: usize,
    /// Resources used, per dimension.
    pub used: Vec<i64>,
    /// Units per class, sorted by class.
    pub counts: Vec<(usize, u32)>,
}

/// The result of a strategy before it is turned into pod names.
#[derive(Debug, Clone, Default)]
pub struct Assignment {
    /// Nodes with their pods (existing kinds at most once).
    pub bins: Vec<Bin>,
    /// Units of each class left unplaced, with the reason.
    pub unplaced: Vec<(usize, u32, String)>,
}

/// Units of `class` in `counts`.
pub fn count_of(counts: &[(usize, u32)], class: usize) -> u32 {
    counts
        .binary_search_by_key(&class, |(c, _)| *c)
        .map(|i| counts[i].1)
        .unwrap_or(0)
}

/// Add `n` units of `class` to `counts`, keeping them sorted.
pub fn add_count(counts: &mut Vec<(usize, u32)>, class: usize, n: u32) {
    match counts.binary_search_by_key(&class, |(c, _)| *c) {
        Ok(i) => counts[i].1 += n,
        Err(i) => counts.insert(i, (class, n)),
    }
}

impl Problem {
    /// Can `n` more units of `class` join a node of `kind` already holding `counts` using `used`?
    /// Checks compatibility, capacity, conflicts and node rules (not global constraints).
    pub fn can_add(&self, kind: usize, used: &[i64], counts: &[(usize, u32)], class: usize, n: u32) -> bool {
        let c = &self.classes[class];
        if c.kinds.binary_search(&kind).is_err() {
            return false;
        }
        let cap = &self.kinds[kind].cap;
        if used
            .iter()
            .zip(&c.req)
            .zip(cap)
            .any(|((u, r), k)| u + r * n as i64 > *k)
        {
            return false;
        }
        self.rules_allow(kind, counts, class, n)
    }

    /// Whether a node of `kind` has room for `used` and every one of `classes` may use it
    /// (node rules aside).
    pub fn holds(&self, kind: usize, used: &[i64], mut classes: impl Iterator<Item = usize>) -> bool {
        used.iter().zip(&self.kinds[kind].cap).all(|(u, c)| u <= c)
            && classes.all(|c| self.classes[c].kinds.binary_search(&kind).is_ok())
    }

    /// Conflicts and node rules only.
    pub fn rules_allow(&self, kind: usize, counts: &[(usize, u32)], class: usize, n: u32) -> bool {
        let c = &self.classes[class];
        for &l in &c.conflicts {
            if l == class {
                if count_of(counts, class) + n > 1 {
                    return false;
                }
            } else if count_of(counts, l) > 0 {
                return false;
            }
        }
        // A node holds few classes while a rule may list hundreds: walk the node's counts and
        // look each up in the rule's sorted lists.
        for &r in &c.rules {
            let rule = &self.rules[r];
            let triggers = |x: &usize| rule.trigger.binary_search(x).is_ok();
            let active = triggers(&class) || counts.iter().any(|(t, m)| *m > 0 && triggers(t));
            if !active {
                continue;
            }
            let existing = rule.existing.get(&kind).copied().unwrap_or(0);
            let counted = |x: &usize| rule.counted.binary_search(x).is_ok();
            let mut total: u32 = counts.iter().filter(|(b, _)| counted(b)).map(|(_, m)| *m).sum();
            if counted(&class) {
                total += n;
            }
            if total + existing > rule.cap {
                return false;
            }
        }
        true
    }

    /// Resources `counts` use.
    pub fn usage(&self, counts: &[(usize, u32)]) -> Vec<i64> {
        let mut used = vec![0; self.dims.len()];
        for &(c, n) in counts {
            for (u, r) in used.iter_mut().zip(&self.classes[c].req) {
                *u += r * n as i64;
            }
        }
        used
    }

    /// Cheapest kind (by objective cost, then price, then index) among `candidates` that can hold
    /// all of `counts`, restricted to the same pool, zone and capacity type when `same_as` is set.
    pub fn cheapest_fit(&self, candidates: impl Iterator<Item = usize>, counts: &[(usize, u32)]) -> Option<usize> {
        let used = self.usage(counts);
        candidates
            .filter(|&k| {
                self.holds(k, &used, counts.iter().map(|(c, _)| *c))
                    && counts
                        .iter()
                        .all(|&(c, _)| self.rules_allow(k, &remove(counts, c), c, count_of(counts, c)))
            })
            .min_by(|&a, &b| self.kind_order(a, b))
    }

    /// Order kinds by objective cost, then list price, then index (deterministic).
    pub fn kind_order(&self, a: usize, b: usize) -> std::cmp::Ordering {
        let (ka, kb) = (&self.kinds[a], &self.kinds[b]);
        ka.cost
            .total_cmp(&kb.cost)
            .then(ka.price.total_cmp(&kb.price))
            .then(a.cmp(&b))
    }
}

fn remove(counts: &[(usize, u32)], class: usize) -> Vec<(usize, u32)> {
    counts.iter().copied().filter(|(c, _)| *c != class).collect()
}

/// Running totals of the global constraints.
#[derive(Debug, Clone)]
pub struct Ledger {
    /// Per pool: limit usage added by the plan.
    pub pool_limits: Vec<Vec<i64>>,
    /// Per pool: price added by the plan.
    pub pool_cost: Vec<f64>,
    /// Per budget: allocation added by the plan.
    pub budget_used: Vec<f64>,
}

impl Ledger {
    /// An empty ledger for `problem`.
    pub fn new(problem: &Problem) -> Self {
        Ledger {
            pool_limits: problem.pools.iter().map(|p| vec![0; p.limit_names.len()]).collect(),
            pool_cost: vec![0.0; problem.pools.len()],
            budget_used: vec![0.0; problem.budgets.len()],
        }
    }
}

/// What one node contributes to the ledger.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Contribution {
    /// Pool, limit usage and price (new nodes only).
    pub pool: Option<(usize, Vec<i64>, f64)>,
    /// Allocation per budget.
    pub budgets: Vec<(usize, f64)>,
}

const EPS: f64 = 1e-9;

/// An amount over a cap, in cents, or with more digits when cents would show them equal.
fn usd_pair(amount: f64, cap: f64) -> (String, String) {
    (2..=6)
        .map(|d| (format!("{amount:.d$}"), format!("{cap:.d$}")))
        .find(|(a, c)| a != c)
        .unwrap_or_else(|| (format!("{amount}"), format!("{cap}")))
}

impl Problem {
    /// The ledger contribution of a node of `kind` holding `counts`.
    pub fn contribution(&self, kind: usize, counts: &[(usize, u32)]) -> Contribution {
        let k = &self.kinds[kind];
        let pool = match (k.is_existing(), k.pool) {
            (false, Some(p)) => Some((p, k.limit_usage.clone(), k.price)),
            _ => None,
        };
        let mut budgets: Vec<(usize, f64)> = vec![];
        for &(c, n) in counts {
            if self.classes[c].budgets.is_empty() {
                continue;
            }
            let cost = self.alloc_cost(c, kind) * n as f64;
            for &b in &self.classes[c].budgets {
                match budgets.iter_mut().find(|(x, _)| *x == b) {
                    Some(e) => e.1 += cost,
                    None => budgets.push((b, cost)),
                }
            }
        }
        Contribution { pool, budgets }
    }

    /// True when launching a node of `pool` for units of `class` can break no pool limit, pool
    /// budget or CostBudget (so `check_swap` needs no call).
    pub fn launch_always_within(&self, pool: usize, class: usize) -> bool {
        let p = &self.pools[pool];
        p.limit_names.is_empty() && p.budget_left.is_none() && self.classes[class].budgets.is_empty()
    }

    /// Check replacing contribution `old` by `new`; the error names the binding constraint.
    pub fn check_swap(&self, ledger: &Ledger, old: &Contribution, new: &Contribution) -> Result<(), String> {
        if let Some((p, usage, price)) = &new.pool {
            let pool = &self.pools[*p];
            let (old_usage, old_price) = match &old.pool {
                Some((q, u, pr)) if q == p => (u.clone(), *pr),
                _ => (vec![0; usage.len()], 0.0),
            };
            for (j, name) in pool.limit_names.iter().enumerate() {
                let after = ledger.pool_limits[*p][j] - old_usage[j] + usage[j];
                if after > pool.limit_left[j] {
                    // Limits are stored in problem units (milli-units for cpu and GPUs).
                    let show = |v: i64| {
                        if name == "nodes" {
                            v.to_string()
                        } else {
                            super::problem::dim_quantity(v, name).to_string()
                        }
                    };
                    return Err(format!(
                        "NodePool {} limit {}: {} of {} left",
                        pool.name,
                        name,
                        show(after),
                        show(pool.limit_left[j].max(0))
                    ));
                }
            }
            if let (Some(left), Some(cap)) = (pool.budget_left, pool.budget_cap) {
                let after = ledger.pool_cost[*p] - old_price + price;
                if after > left + EPS {
                    let (a, c) = usd_pair(pool.existing_cost + after, cap);
                    return Err(format!("budget NodePool {}: {a} of {c} USD/h", pool.name));
                }
            }
        }
        for &(b, cost) in &new.budgets {
            let before = old.budgets.iter().find(|(x, _)| *x == b).map(|e| e.1).unwrap_or(0.0);
            let budget = &self.budgets[b];
            let after = budget.used + ledger.budget_used[b] - before + cost;
            if after > budget.cap + EPS {
                let (a, c) = usd_pair(after, budget.cap);
                return Err(format!("budget {}: {a} of {c} USD/h", budget.name));
            }
        }
        Ok(())
    }

    /// Apply a swap to the ledger (after `check_swap` accepted it).
    pub fn apply_swap(&self, ledger: &mut Ledger, old: &Contribution, new: &Contribution) {
        if let Some((p, usage, price)) = &old.pool {
            for (j, u) in usage.iter().enumerate() {
                ledger.pool_limits[*p][j] -= u;
            }
            ledger.pool_cost[*p] -= price;
        }
        if let Some((p, usage, price)) = &new.pool {
            for (j, u) in usage.iter().enumerate() {
                ledger.pool_limits[*p][j] += u;
            }
            ledger.pool_cost[*p] += price;
        }
        for &(b, c) in &old.budgets {
            ledger.budget_used[b] -= c;
        }
        for &(b, c) in &new.budgets {
            ledger.budget_used[b] += c;
        }
    }

    /// Capacity-mix violations of `bins`: (pool, on-demand CPU, total CPU, required share).
    pub fn mix_shortfalls(&self, bins: &[Bin]) -> Vec<(usize, f64, f64)> {
        let mut od = self.pools.iter().map(|p| p.od_cpu_existing).collect::<Vec<_>>();
        let mut total = self.pools.iter().map(|p| p.cpu_existing).collect::<Vec<_>>();
        for b in bins {
            let k = &self.kinds[b.kind];
            let Some(p) = k.pool else { continue };
            let cpu: f64 = b
                .counts
                .iter()
                .map(|&(c, n)| self.classes[c].cpu_cores * n as f64)
                .sum();
            total[p] += cpu;
            if k.capacity_type == crate::catalog::CapacityType::OnDemand {
                od[p] += cpu;
            }
        }
        self.pools
            .iter()
            .enumerate()
            .filter(|(p, pool)| pool.min_on_demand > 0.0 && od[*p] + 1e-9 < pool.min_on_demand * total[*p])
            .map(|(p, _)| (p, od[p], total[p]))
            .collect()
    }
}
