//! The showback ledger the controller keeps in the cluster, so that `purser report` works
//! without Prometheus: one [`DayLedger`] per UTC day (a ConfigMap each, compact enough for the
//! 1 MiB limit), and the [`Rates`] seen at the last pass with the instant accrued to.
//!
//! Pure: times come in as arguments. Each pass charges the rates seen at the previous pass over
//! the time since then (as the budget ledger does), split over the UTC hours it spans.
//!
//! In: an allocation (the rates) and the stored days. Out: updated days, and a [`Usage`] for a
//! window (the hours whose start lies in it).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{AllocationHour, NodeHour, Usage, Window};
use crate::cost::allocation::Allocation;

/// Days of history kept.
pub const KEPT_DAYS: i64 = 40;
/// Seconds in an hour.
const HOUR: i64 = 3600;
/// Seconds in a day.
const DAY: i64 = 86_400;

/// A node's price now, and what the FOCUS rows say about it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeRate {
    /// Node name.
    pub node: String,
    /// NodePool (empty for nodes Purser does not manage).
    pub nodepool: String,
    /// Instance type.
    pub instance_type: String,
    /// `spot` or `on-demand`.
    pub capacity_type: String,
    /// Region.
    pub region: String,
    /// Zone.
    pub zone: String,
    /// `spec.providerID`.
    pub provider_id: String,
    /// USD per hour.
    pub usd_per_hour: f64,
    /// GPUs.
    pub gpus: f64,
}

/// The allocated cost of the pods of one (node, namespace, team, cost centre) now.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AllocationRate {
    /// Node.
    pub node: String,
    /// Namespace.
    pub namespace: String,
    /// `team` label.
    pub team: String,
    /// `cost-centre` label.
    pub cost_centre: String,
    /// USD per hour.
    pub usd_per_hour: f64,
    /// GPUs requested.
    pub gpus: f64,
}

impl AllocationRate {
    fn key(&self) -> (&str, &str, &str, &str) {
        (&self.node, &self.namespace, &self.team, &self.cost_centre)
    }
}

/// The rates seen at the last pass, and the instant the ledger is accrued to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Rates {
    /// Unix seconds up to which cost has been recorded.
    pub accrued_until: Option<i64>,
    /// Node prices.
    pub nodes: Vec<NodeRate>,
    /// Allocated cost per key.
    pub allocations: Vec<AllocationRate>,
}

impl Rates {
    /// The rates of `allocation`; `meta` gives a node's (region, provider id).
    pub fn of(allocation: &Allocation, meta: &HashMap<String, (String, String)>, at: i64) -> Rates {
        let nodes = allocation
            .nodes
            .iter()
            .map(|n| {
                let (region, provider_id) = meta.get(&n.node).cloned().unwrap_or_default();
                NodeRate {
                    node: n.node.clone(),
                    nodepool: n.pool.clone().unwrap_or_default(),
                    instance_type: n.instance_type.clone(),
                    capacity_type: n.capacity_type.map(|c| c.as_str().to_string()).unwrap_or_default(),
                    region,
                    zone: n.zone.clone(),
                    provider_id,
                    usd_per_hour: n.price,
                    gpus: n.capacity.gpu,
                }
            })
            .collect();
        let mut keyed: BTreeMap<(String, String, String, String), AllocationRate> = BTreeMap::new();
        for p in &allocation.pods {
            let key = (
                p.node.clone(),
                p.namespace.clone(),
                p.team.clone(),
                p.cost_centre.clone(),
            );
            let rate = keyed.entry(key).or_insert_with(|| AllocationRate {
                node: p.node.clone(),
                namespace: p.namespace.clone(),
                team: p.team.clone(),
                cost_centre: p.cost_centre.clone(),
                ..AllocationRate::default()
            });
            rate.usd_per_hour += p.hourly;
            rate.gpus += p.requests.gpu;
        }
        Rates {
            accrued_until: Some(at),
            nodes,
            allocations: keyed.into_values().collect(),
        }
    }
}

/// What one UTC hour accrued: per node index `[USD, hours, GPU-hours]`, per key index
/// `[USD, GPU-hours]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HourRecord {
    /// By index into [`DayLedger::nodes`].
    pub n: BTreeMap<usize, [f64; 3]>,
    /// By index into [`DayLedger::keys`].
    pub a: BTreeMap<usize, [f64; 2]>,
}

/// One UTC day of accruals; nodes and keys are stored once and referred to by index.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DayLedger {
    /// Nodes seen this day (their last rate).
    pub nodes: Vec<NodeRate>,
    /// Allocation keys seen this day.
    pub keys: Vec<AllocationRate>,
    /// By the hour's start, Unix seconds.
    pub hours: BTreeMap<i64, HourRecord>,
}

impl DayLedger {
    /// Charge `rates` for `hours` hours to the hour starting at `hour`.
    pub fn add(&mut self, hour: i64, rates: &Rates, hours: f64) {
        let mut record = self.hours.remove(&hour).unwrap_or_default();
        for rate in &rates.nodes {
            let i = self.node_index(rate);
            let e = record.n.entry(i).or_insert([0.0; 3]);
            e[0] = compact(e[0] + rate.usd_per_hour * hours);
            e[1] = compact(e[1] + hours);
            e[2] = compact(e[2] + rate.gpus * hours);
        }
        for rate in &rates.allocations {
            let i = self.key_index(rate);
            let e = record.a.entry(i).or_insert([0.0; 2]);
            e[0] = compact(e[0] + rate.usd_per_hour * hours);
            e[1] = compact(e[1] + rate.gpus * hours);
        }
        self.hours.insert(hour, record);
    }

    fn node_index(&mut self, rate: &NodeRate) -> usize {
        match self.nodes.iter().position(|n| n.node == rate.node) {
            Some(i) => i,
            None => {
                self.nodes.push(rate.clone());
                self.nodes.len() - 1
            }
        }
    }

    fn key_index(&mut self, rate: &AllocationRate) -> usize {
        match self.keys.iter().position(|k| k.key() == rate.key()) {
            Some(i) => i,
            None => {
                self.keys.push(rate.clone());
                self.keys.len() - 1
            }
        }
    }

    /// The hours of this day whose start lies in `window`.
    pub fn usage(&self, window: &Window) -> Usage {
        let (start, end) = (window.start.timestamp(), window.end.timestamp());
        let mut usage = Usage::default();
        for (&hour, record) in self.hours.range(start..end) {
            usage.nodes.extend(record.n.iter().filter_map(|(&i, v)| {
                let n = self.nodes.get(i)?;
                Some(NodeHour {
                    hour,
                    node: n.node.clone(),
                    nodepool: n.nodepool.clone(),
                    instance_type: n.instance_type.clone(),
                    capacity_type: n.capacity_type.clone(),
                    region: n.region.clone(),
                    zone: n.zone.clone(),
                    provider_id: n.provider_id.clone(),
                    usd: v[0],
                    hours: v[1],
                    gpu_hours: v[2],
                })
            }));
            usage.allocations.extend(record.a.iter().filter_map(|(&i, v)| {
                let k = self.keys.get(i)?;
                Some(AllocationHour {
                    hour,
                    node: k.node.clone(),
                    namespace: k.namespace.clone(),
                    team: k.team.clone(),
                    cost_centre: k.cost_centre.clone(),
                    usd: v[0],
                    gpu_hours: v[1],
                })
            }));
        }
        usage
    }
}

/// `window` with its end moved to the end of its last hour: the ledger's hours are whole, so
/// their FOCUS charge periods end on the hour.
pub fn whole_hours(window: &Window) -> Window {
    let end = window.end.timestamp();
    let rounded = end + (HOUR - end.rem_euclid(HOUR)) % HOUR;
    Window {
        start: window.start,
        end: DateTime::<Utc>::from_timestamp(rounded, 0).unwrap_or(window.end),
    }
}

/// `x` to nine decimals, so the stored JSON stays short (the error, under a micro-dollar a
/// day, is far below what a report prints).
fn compact(x: f64) -> f64 {
    (x * 1e9).round() / 1e9
}

/// The UTC day (`YYYY-MM-DD`) of Unix second `t`.
pub fn day_of(t: i64) -> String {
    DateTime::<Utc>::from_timestamp(t - t.rem_euclid(DAY), 0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// The UTC days [from, to) touches.
pub fn days_between(from: i64, to: i64) -> Vec<String> {
    let mut days = vec![];
    let mut t = from - from.rem_euclid(DAY);
    while t < to.max(from + 1) {
        days.push(day_of(t));
        t += DAY;
    }
    days
}

/// Charge `rates` over [from, to) to `days` (by `YYYY-MM-DD`, created as needed), split by
/// UTC hour; at most [`KEPT_DAYS`] are charged (a controller down longer loses the rest).
pub fn accrue(days: &mut BTreeMap<String, DayLedger>, rates: &Rates, from: i64, to: i64) {
    let mut t = from.max(to - KEPT_DAYS * DAY);
    while t < to {
        let hour = t - t.rem_euclid(HOUR);
        let until = (hour + HOUR).min(to);
        days.entry(day_of(hour))
            .or_default()
            .add(hour, rates, (until - t) as f64 / HOUR as f64);
        t = until;
    }
}

/// True when day `day` (`YYYY-MM-DD`) is older than [`KEPT_DAYS`] at `now`.
pub fn expired(day: &str, now: i64) -> bool {
    day < day_of(now - KEPT_DAYS * DAY).as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIDNIGHT: i64 = 1_796_601_600; // 2026-12-07T00:00:00Z

    fn rates() -> Rates {
        Rates {
            accrued_until: Some(MIDNIGHT),
            nodes: vec![NodeRate {
                node: "n1".into(),
                nodepool: "gpu".into(),
                capacity_type: "spot".into(),
                usd_per_hour: 2.0,
                gpus: 4.0,
                ..NodeRate::default()
            }],
            allocations: vec![AllocationRate {
                node: "n1".into(),
                namespace: "vision".into(),
                usd_per_hour: 1.5,
                gpus: 3.0,
                ..AllocationRate::default()
            }],
        }
    }

    fn at(t: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(t, 0).unwrap()
    }

    #[test]
    fn accrual_splits_over_hours_and_days_and_reads_back_as_usage() {
        let mut days = BTreeMap::new();
        accrue(&mut days, &rates(), MIDNIGHT - 1800, MIDNIGHT + 5400);
        assert_eq!(days.keys().collect::<Vec<_>>(), vec!["2026-12-06", "2026-12-07"]);
        let window = Window::new(at(MIDNIGHT - 3600), at(MIDNIGHT + 7200)).unwrap();
        let mut usage = Usage::default();
        for day in days.values() {
            let u = day.usage(&window);
            usage.nodes.extend(u.nodes);
            usage.allocations.extend(u.allocations);
        }
        assert!((usage.node_cost() - 2.0 * 2.0).abs() < 1e-9, "{usage:?}");
        let hours: Vec<f64> = usage.nodes.iter().map(|n| n.hours).collect();
        assert_eq!(hours, vec![0.5, 1.0, 0.5]);
        let card = super::super::scorecard(
            super::super::GroupBy::Namespace,
            window,
            &usage,
            &Usage::default(),
            vec![],
        );
        assert!((card.total.spend - 4.0).abs() < 1e-9);
        assert!((card.rows[0].gpu_allocation_pct().unwrap() - 75.0).abs() < 1e-9);
        let text = serde_json::to_string(&days["2026-12-07"]).unwrap();
        assert_eq!(serde_json::from_str::<DayLedger>(&text).unwrap(), days["2026-12-07"]);
    }

    #[test]
    fn a_window_takes_the_hours_that_start_in_it() {
        let mut days = BTreeMap::new();
        accrue(&mut days, &rates(), MIDNIGHT, MIDNIGHT + 3 * 3600);
        let day = &days["2026-12-07"];
        let window = Window::new(at(MIDNIGHT + 1800), at(MIDNIGHT + 3 * 3600)).unwrap();
        assert_eq!(
            day.usage(&window).nodes.len(),
            2,
            "the hour that starts before the window is out"
        );
    }

    #[test]
    fn retention_and_day_names() {
        assert_eq!(day_of(MIDNIGHT - 1), "2026-12-06");
        assert_eq!(
            days_between(MIDNIGHT - 1, MIDNIGHT + 1),
            vec!["2026-12-06", "2026-12-07"]
        );
        assert!(expired("2026-10-27", MIDNIGHT));
        assert!(!expired("2026-10-28", MIDNIGHT));
        let mut days = BTreeMap::new();
        accrue(&mut days, &rates(), 0, MIDNIGHT);
        assert_eq!(
            days.len() as i64,
            KEPT_DAYS,
            "a long outage is charged for at most the kept days"
        );
    }

    #[test]
    fn a_realistic_day_fits_a_config_map() {
        // 200 nodes, 600 (node, namespace, team, cost-centre) keys, 24 hours.
        let nodes: Vec<NodeRate> = (0..200)
            .map(|i| NodeRate {
                node: format!("ip-10-0-{}-{}.ec2.internal", i / 250, i % 250),
                nodepool: format!("pool-{}", i % 5),
                instance_type: "g5.12xlarge".into(),
                capacity_type: "on-demand".into(),
                region: "us-east-1".into(),
                zone: "us-east-1a".into(),
                provider_id: format!("aws:///us-east-1a/i-0123456789abcd{i:03}"),
                usd_per_hour: 5.672,
                gpus: 4.0,
            })
            .collect();
        let allocations: Vec<AllocationRate> = (0..600)
            .map(|i| AllocationRate {
                node: nodes[i % 200].node.clone(),
                namespace: format!("team-namespace-{}", i % 40),
                team: format!("team-{}", i % 12),
                cost_centre: format!("cc-{}", i % 8),
                usd_per_hour: 0.123456789,
                gpus: 1.0,
            })
            .collect();
        let rates = Rates {
            accrued_until: None,
            nodes,
            allocations,
        };
        let mut days = BTreeMap::new();
        for pass in 0..(24 * 60) {
            let t = MIDNIGHT + pass * 60;
            accrue(&mut days, &rates, t, t + 60);
        }
        let size = serde_json::to_string(&days["2026-12-07"]).unwrap().len();
        assert!(size < 1024 * 1024, "{size} bytes");
        eprintln!("a day of 200 nodes and 600 keys: {size} bytes");
    }
}
