//! Disruption budgets (`spec.disruption.budgets`), as Karpenter reads them: the nodes a pool may
//! have in disruption for a reason is the minimum over its active budgets that cover the
//! reason, less the nodes already being deleted; a percent is of the pool's nodes, rounded up;
//! a schedule (cron, UTC) activates a budget for `duration` after each hit; a schedule that does
//! not parse allows nothing (fail closed). Interruption and expiry are never limited.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{DateTime, Utc};

use crate::model::disruption::{DisruptionBudget, Reason};
use crate::model::{Pool, Snapshot};

/// Nodes disrupted so far in this decision, per pool and reason.
#[derive(Debug, Clone, Default)]
pub struct Usage(BTreeMap<(String, Reason), usize>);

impl Usage {
    /// Count one node of `pool` disrupted for `reason`.
    pub fn add(&mut self, pool: &str, reason: Reason) {
        *self.0.entry((pool.to_string(), reason)).or_default() += 1;
    }

    /// Nodes of `pool` disrupted for any budgeted reason so far.
    fn budgeted(&self, pool: &str) -> usize {
        self.0
            .iter()
            .filter(|((p, r), _)| p == pool && r.is_budgeted())
            .map(|(_, n)| n)
            .sum()
    }
}

/// Is `budget` active at `now`?
pub fn is_active(budget: &DisruptionBudget, now: i64) -> bool {
    let (Some(schedule), Some(duration)) = (&budget.schedule, budget.duration) else {
        return budget.schedule.is_none();
    };
    let Ok(cron) = croner::Cron::from_str(schedule) else {
        return true;
    };
    let Some(at) = DateTime::<Utc>::from_timestamp(now, 0) else {
        return true;
    };
    match cron.find_previous_occurrence(&at, true) {
        Ok(hit) => now < hit.timestamp() + duration,
        Err(_) => false,
    }
}

/// The most nodes `budget` lets be disrupted at once in a pool of `total` nodes (0 when its
/// schedule does not parse).
fn allowance(budget: &DisruptionBudget, total: usize) -> usize {
    if let Some(schedule) = &budget.schedule
        && croner::Cron::from_str(schedule).is_err()
    {
        return 0;
    }
    budget.nodes.allowed(total)
}

/// How many more nodes of `pool` may be disrupted for `reason` now; `usize::MAX` when no budget
/// limits it.
pub fn remaining(snapshot: &Snapshot, pool: &Pool, reason: Reason, usage: &Usage, now: i64) -> usize {
    if !reason.is_budgeted() {
        return usize::MAX;
    }
    let nodes: Vec<_> = snapshot
        .nodes
        .iter()
        .filter(|n| !n.in_flight && n.pool.as_deref() == Some(&pool.name))
        .collect();
    let total = nodes.len();
    let deleting = nodes.iter().filter(|n| n.deleting).count();
    let limit = pool
        .disruption
        .budgets
        .iter()
        .filter(|b| b.reasons.is_empty() || b.reasons.contains(&reason))
        .filter(|b| is_active(b, now))
        .map(|b| allowance(b, total))
        .min();
    match limit {
        None => usize::MAX,
        Some(l) => l.saturating_sub(deleting + usage.budgeted(&pool.name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::disruption::BudgetNodes;

    fn budget(nodes: BudgetNodes, schedule: Option<&str>, duration: Option<i64>) -> DisruptionBudget {
        DisruptionBudget {
            nodes,
            schedule: schedule.map(String::from),
            duration,
            reasons: vec![],
        }
    }

    /// 2026-11-25T12:00:00Z.
    const NOON: i64 = 1_795_608_000;

    #[test]
    fn schedule_activates_for_its_duration() {
        let b = budget(BudgetNodes::Count(0), Some("0 9 * * *"), Some(8 * 3600));
        assert!(is_active(&b, NOON));
        assert!(!is_active(&b, NOON + 5 * 3600 + 1));
        assert!(!is_active(&b, NOON - 3 * 3600 - 1));
        assert!(is_active(&b, NOON - 3 * 3600));
    }

    #[test]
    fn unscheduled_budget_is_always_active() {
        assert!(is_active(&budget(BudgetNodes::Percent(10), None, None), NOON));
    }

    #[test]
    fn bad_cron_allows_nothing() {
        let b = budget(BudgetNodes::Count(5), Some("not a cron"), Some(60));
        assert!(is_active(&b, NOON));
        assert_eq!(allowance(&b, 100), 0);
    }

    #[test]
    fn percent_rounds_up() {
        assert_eq!(BudgetNodes::Percent(10).allowed(15), 2);
        assert_eq!(BudgetNodes::Percent(0).allowed(15), 0);
        assert_eq!(BudgetNodes::Count(3).allowed(1), 3);
    }
}
