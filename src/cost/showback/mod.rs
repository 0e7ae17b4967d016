//! Showback: who spent what over a time window, with idle cost shared so that the groups add up
//! to what the nodes cost.
//!
//! Pure. In: the cost the nodes and the pods accrued per UTC hour in the window and in the
//! window before it ([`Usage`]), a grouping ([`GroupBy`]) and the budgets' standing. Out: a
//! [`Scorecard`]: per group spend, idle cost, waste %, GPU allocation %, spot share, the five
//! largest changes against the previous window, and the budgets. `render` prints it as a table,
//! CSV or Markdown; `focus` turns the node hours into FOCUS 1.2 rows.
//!
//! Idle sharing (Kubecost's "share idle", per node and hour): the part of a node-hour no pod is
//! allocated is charged to the groups that ran on that node in that hour, in proportion to
//! their allocated cost; a node-hour with no pods is charged to the `(idle)` row. Grouped by
//! NodePool, a node's whole cost stays with its pool. Either way the groups add up to the
//! nodes' cost.

pub mod focus;
pub mod ledger;
pub mod render;
pub mod series;

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};

/// The row that takes the cost of node-hours no pod ran on.
pub const IDLE_ROW: &str = "(idle)";
/// The name of a group whose label is not set.
pub const UNLABELLED: &str = "(unlabelled)";
/// The number of changes against the previous window a scorecard lists.
pub const TOP_CHANGES: usize = 5;

/// What the rows of a scorecard are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    /// Pod namespace.
    Namespace,
    /// The pod's `team` label.
    Team,
    /// The pod's `cost-centre` label.
    CostCentre,
    /// The NodePool of the node (idle cost stays with the pool).
    NodePool,
}

impl FromStr for GroupBy {
    type Err = String;

    /// `namespace`, `team`, `cost-centre` or `nodepool`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "namespace" => Ok(GroupBy::Namespace),
            "team" => Ok(GroupBy::Team),
            "cost-centre" => Ok(GroupBy::CostCentre),
            "nodepool" => Ok(GroupBy::NodePool),
            _ => Err(format!(
                "--by is {s:?}; expected namespace, team, cost-centre or nodepool"
            )),
        }
    }
}

impl GroupBy {
    /// The name `--by` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Namespace => "namespace",
            GroupBy::Team => "team",
            GroupBy::CostCentre => "cost-centre",
            GroupBy::NodePool => "nodepool",
        }
    }
}

/// A time window, [start, end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Inclusive start.
    pub start: DateTime<Utc>,
    /// Exclusive end.
    pub end: DateTime<Utc>,
}

impl Window {
    /// A window from `start` to `end`; an error unless `end` is after `start`.
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Self, String> {
        if end <= start {
            return Err(format!(
                "the window ends ({}) before it starts ({}); expected --end after --start",
                end.to_rfc3339(),
                start.to_rfc3339()
            ));
        }
        Ok(Window { start, end })
    }

    /// The window of the same length just before this one.
    pub fn previous(&self) -> Window {
        let length = self.end - self.start;
        Window {
            start: self.start - length,
            end: self.start,
        }
    }

    /// Its length.
    pub fn length(&self) -> Duration {
        self.end - self.start
    }
}

/// What one node accrued in one UTC hour.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeHour {
    /// Start of the UTC hour, Unix seconds.
    pub hour: i64,
    /// Node name.
    pub node: String,
    /// NodePool (empty for nodes Purser does not manage).
    pub nodepool: String,
    /// Instance type.
    pub instance_type: String,
    /// `spot` or `on-demand` (empty when unknown).
    pub capacity_type: String,
    /// Cloud region.
    pub region: String,
    /// Zone.
    pub zone: String,
    /// `spec.providerID`.
    pub provider_id: String,
    /// Hours of the hour the node was priced (at most 1).
    pub hours: f64,
    /// USD accrued.
    pub usd: f64,
    /// GPU-hours of capacity.
    pub gpu_hours: f64,
}

impl NodeHour {
    /// True for spot capacity.
    pub fn is_spot(&self) -> bool {
        self.capacity_type == "spot"
    }

    /// Mean USD per hour while priced.
    pub fn unit_price(&self) -> f64 {
        if self.hours > 0.0 { self.usd / self.hours } else { 0.0 }
    }
}

/// What the pods of one allocation key accrued on one node in one UTC hour.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AllocationHour {
    /// Start of the UTC hour, Unix seconds.
    pub hour: i64,
    /// Node the pods ran on.
    pub node: String,
    /// Namespace.
    pub namespace: String,
    /// `team` label (empty when unset).
    pub team: String,
    /// `cost-centre` label (empty when unset).
    pub cost_centre: String,
    /// USD allocated (requests at the node's unit prices).
    pub usd: f64,
    /// GPU-hours requested.
    pub gpu_hours: f64,
}

/// Everything accrued in one window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage {
    /// Node hours.
    pub nodes: Vec<NodeHour>,
    /// Allocation hours.
    pub allocations: Vec<AllocationHour>,
}

impl Usage {
    /// USD the nodes accrued.
    pub fn node_cost(&self) -> f64 {
        self.nodes.iter().map(|n| n.usd).sum()
    }
}

/// A CostBudget's standing, as the controller last reported it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BudgetStatus {
    /// CostBudget name.
    pub name: String,
    /// USD spent in the current period.
    pub spend: f64,
    /// Period cap, USD (none: no `maxPeriodCost`).
    pub period_cap: Option<f64>,
    /// Forecast for the period, USD.
    pub forecast: f64,
    /// Current USD per hour.
    pub run_rate: f64,
    /// Hourly cap, USD per hour.
    pub hourly_cap: f64,
}

impl BudgetStatus {
    /// `Exceeded`, `Warning` or `Within`, by the controller's rules (docs/crds.md).
    pub fn standing(&self) -> &'static str {
        let over_period = self.period_cap.is_some_and(|cap| self.spend >= cap);
        if over_period || self.run_rate > self.hourly_cap {
            "Exceeded"
        } else if self
            .period_cap
            .is_some_and(|cap| self.forecast >= crate::cost::ledger::WARNING_SHARE * cap)
        {
            "Warning"
        } else {
            "Within"
        }
    }
}

/// One row of a scorecard.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupRow {
    /// Group name.
    pub group: String,
    /// USD charged: allocated plus the shared idle cost.
    pub spend: f64,
    /// USD of idle cost charged to the group.
    pub idle: f64,
    /// GPU-hours the group's pods requested.
    pub gpu_hours_allocated: f64,
    /// GPU-hours of the nodes the group paid for (each node's GPU-hours times the group's share of its cost).
    pub gpu_hours_paid: f64,
    /// USD of the spend on spot capacity.
    pub spot_spend: f64,
}

impl GroupRow {
    /// Idle cost as a share of spend, percent.
    pub fn waste_pct(&self) -> f64 {
        percent(self.idle, self.spend)
    }

    /// GPU-hours requested as a share of the GPU-hours paid for, percent (none without GPUs).
    pub fn gpu_allocation_pct(&self) -> Option<f64> {
        (self.gpu_hours_paid > 0.0).then(|| percent(self.gpu_hours_allocated, self.gpu_hours_paid))
    }

    /// Spend on spot capacity as a share of spend, percent.
    pub fn spot_share_pct(&self) -> f64 {
        percent(self.spot_spend, self.spend)
    }

    fn add(&mut self, other: &GroupRow) {
        self.spend += other.spend;
        self.idle += other.idle;
        self.gpu_hours_allocated += other.gpu_hours_allocated;
        self.gpu_hours_paid += other.gpu_hours_paid;
        self.spot_spend += other.spot_spend;
    }
}

fn percent(part: f64, whole: f64) -> f64 {
    if whole > 0.0 { 100.0 * part / whole } else { 0.0 }
}

/// A group's spend in this window against the previous one.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Group name.
    pub group: String,
    /// USD in the previous window.
    pub previous: f64,
    /// USD in this window.
    pub current: f64,
}

impl Change {
    /// USD more (or, negative, less) than in the previous window.
    pub fn delta(&self) -> f64 {
        self.current - self.previous
    }
}

/// A showback scorecard.
#[derive(Debug, Clone, PartialEq)]
pub struct Scorecard {
    /// What the rows are.
    pub by: GroupBy,
    /// The window.
    pub window: Window,
    /// One row per group, highest spend first.
    pub rows: Vec<GroupRow>,
    /// The sum of the rows.
    pub total: GroupRow,
    /// USD the nodes accrued in the window (the total reconciles with it).
    pub node_cost: f64,
    /// The largest changes against the previous window, by absolute USD.
    pub changes: Vec<Change>,
    /// The budgets' standing.
    pub budgets: Vec<BudgetStatus>,
}

/// The scorecard of `current` grouped `by`, compared with `previous`.
pub fn scorecard(
    by: GroupBy,
    window: Window,
    current: &Usage,
    previous: &Usage,
    budgets: Vec<BudgetStatus>,
) -> Scorecard {
    let groups = charge(by, current);
    let before = charge(by, previous);
    let changes = top_changes(&groups, &before);
    let mut total = GroupRow {
        group: "(total)".into(),
        ..GroupRow::default()
    };
    for row in groups.values() {
        total.add(row);
    }
    let mut rows: Vec<GroupRow> = groups.into_values().collect();
    rows.sort_by(|a, b| b.spend.total_cmp(&a.spend).then_with(|| a.group.cmp(&b.group)));
    Scorecard {
        by,
        window,
        rows,
        total,
        node_cost: current.node_cost(),
        changes,
        budgets,
    }
}

/// The rows of `usage` grouped `by`, keyed by group name.
pub fn charge(by: GroupBy, usage: &Usage) -> BTreeMap<String, GroupRow> {
    let mut on_node: HashMap<(i64, &str), Vec<&AllocationHour>> = HashMap::new();
    for a in &usage.allocations {
        on_node.entry((a.hour, a.node.as_str())).or_default().push(a);
    }
    let mut groups: BTreeMap<String, GroupRow> = BTreeMap::new();
    for node in &usage.nodes {
        let allocations = on_node.remove(&(node.hour, node.node.as_str())).unwrap_or_default();
        for (group, row) in share_node_hour(by, node, &allocations) {
            entry(&mut groups, &group).add(&row);
        }
    }
    for allocations in on_node.values() {
        for a in allocations {
            let row = entry(&mut groups, &group_of(by, a, ""));
            row.spend += a.usd;
            row.gpu_hours_allocated += a.gpu_hours;
        }
    }
    groups
}

fn entry<'a>(groups: &'a mut BTreeMap<String, GroupRow>, group: &str) -> &'a mut GroupRow {
    groups.entry(group.to_string()).or_insert_with(|| GroupRow {
        group: group.to_string(),
        ..GroupRow::default()
    })
}

/// The group an allocation belongs to (`pool` is its node's NodePool).
fn group_of(by: GroupBy, a: &AllocationHour, pool: &str) -> String {
    let name = match by {
        GroupBy::Namespace => &a.namespace,
        GroupBy::Team => &a.team,
        GroupBy::CostCentre => &a.cost_centre,
        GroupBy::NodePool => pool,
    };
    if name.is_empty() {
        UNLABELLED.to_string()
    } else {
        name.to_string()
    }
}

/// One node-hour's cost split over the groups that ran on it. Allocations that add up to more
/// than the node cost (samples taken at slightly different instants) are scaled down to it.
fn share_node_hour(by: GroupBy, node: &NodeHour, allocations: &[&AllocationHour]) -> Vec<(String, GroupRow)> {
    let allocated: f64 = allocations.iter().map(|a| a.usd).sum();
    let idle = (node.usd - allocated).max(0.0);
    if by == GroupBy::NodePool || allocated <= 0.0 {
        let group = match by {
            GroupBy::NodePool if node.nodepool.is_empty() => UNLABELLED.to_string(),
            GroupBy::NodePool => node.nodepool.clone(),
            _ => IDLE_ROW.to_string(),
        };
        let row = GroupRow {
            spend: node.usd,
            idle,
            gpu_hours_allocated: allocations.iter().map(|a| a.gpu_hours).sum(),
            gpu_hours_paid: node.gpu_hours,
            spot_spend: if node.is_spot() { node.usd } else { 0.0 },
            ..GroupRow::default()
        };
        return vec![(group, row)];
    }
    let scale = if allocated > node.usd {
        node.usd / allocated
    } else {
        1.0
    };
    allocations
        .iter()
        .map(|a| {
            let share = a.usd / allocated;
            let spend = a.usd * scale + idle * share;
            let row = GroupRow {
                spend,
                idle: idle * share,
                gpu_hours_allocated: a.gpu_hours,
                gpu_hours_paid: if node.usd > 0.0 {
                    node.gpu_hours * spend / node.usd
                } else {
                    0.0
                },
                spot_spend: if node.is_spot() { spend } else { 0.0 },
                ..GroupRow::default()
            };
            (group_of(by, a, &node.nodepool), row)
        })
        .collect()
}

/// The [`TOP_CHANGES`] largest spend changes by absolute USD (ties by name); unchanged groups
/// are left out.
fn top_changes(current: &BTreeMap<String, GroupRow>, previous: &BTreeMap<String, GroupRow>) -> Vec<Change> {
    let spend = |m: &BTreeMap<String, GroupRow>, g: &str| m.get(g).map_or(0.0, |r| r.spend);
    let names: std::collections::BTreeSet<&String> = current.keys().chain(previous.keys()).collect();
    let mut changes: Vec<Change> = names
        .into_iter()
        .map(|g| Change {
            group: g.clone(),
            previous: spend(previous, g),
            current: spend(current, g),
        })
        .filter(|c| c.delta().abs() > 1e-9)
        .collect();
    changes.sort_by(|a, b| {
        b.delta()
            .abs()
            .total_cmp(&a.delta().abs())
            .then_with(|| a.group.cmp(&b.group))
    });
    changes.truncate(TOP_CHANGES);
    changes
}

#[cfg(test)]
mod tests;
