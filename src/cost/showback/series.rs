//! From sampled gauges to accrued cost: Prometheus range-query samples of the controller's
//! USD-per-hour gauges, each held for one step, summed into node hours and allocation hours.
//!
//! Pure. In: the series of each metric ([`Samples`]), the window and the step. Out: a [`Usage`]
//! and the budgets' standing.

use std::collections::{BTreeMap, HashMap};

use super::{AllocationHour, BudgetStatus, NodeHour, Usage, Window};

/// Seconds in an hour.
const HOUR: f64 = 3600.0;

/// One time series: its labels and its samples (Unix seconds, value).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    /// Label values by name.
    pub labels: BTreeMap<String, String>,
    /// Samples in time order.
    pub samples: Vec<(f64, f64)>,
}

impl Series {
    /// A label's value (empty when absent).
    pub fn label(&self, name: &str) -> &str {
        self.labels.get(name).map_or("", String::as_str)
    }

    /// The last sample's value.
    pub fn last(&self) -> Option<f64> {
        self.samples.last().map(|s| s.1)
    }
}

/// The series `purser report` reads, one list per metric.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Samples {
    /// `node_total_hourly_cost`.
    pub node_cost: Vec<Series>,
    /// `kubecost_node_is_spot`.
    pub node_spot: Vec<Series>,
    /// `node_gpu_count`.
    pub node_gpus: Vec<Series>,
    /// `purser_idle_hourly_cost` (for each node's NodePool).
    pub idle: Vec<Series>,
    /// `purser_allocation_hourly_cost`.
    pub allocations: Vec<Series>,
    /// `sum by (namespace, pod, node) (container_gpu_allocation)`.
    pub pod_gpus: Vec<Series>,
}

/// The instant of a sample, in milliseconds (the key that joins series sampled on one grid).
fn instant(t: f64) -> i64 {
    (t * 1000.0).round() as i64
}

fn hour_of(t: f64) -> i64 {
    let t = t.floor() as i64;
    t - t.rem_euclid(HOUR as i64)
}

/// Values by instant of the series, keyed by `key`.
fn by_instant<K: std::hash::Hash + Eq>(series: &[Series], key: impl Fn(&Series) -> K) -> HashMap<K, HashMap<i64, f64>> {
    let mut out: HashMap<K, HashMap<i64, f64>> = HashMap::new();
    for s in series {
        let values = out.entry(key(s)).or_default();
        for &(t, v) in &s.samples {
            *values.entry(instant(t)).or_insert(0.0) += v;
        }
    }
    out
}

/// The cost accrued in `window` when each sample holds for `step` seconds; samples outside the
/// window are left out.
pub fn usage(samples: &Samples, window: &Window, step: f64) -> Usage {
    Usage {
        nodes: node_hours(samples, window, step),
        allocations: allocation_hours(samples, window, step),
    }
}

fn in_window(t: f64, window: &Window) -> bool {
    t >= window.start.timestamp() as f64 && t < window.end.timestamp() as f64
}

fn node_hours(samples: &Samples, window: &Window, step: f64) -> Vec<NodeHour> {
    let gpus = by_instant(&samples.node_gpus, |s| s.label("node").to_string());
    let spot: HashMap<&str, bool> = samples
        .node_spot
        .iter()
        .map(|s| (s.label("node"), s.samples.iter().any(|&(_, v)| v >= 0.5)))
        .collect();
    let pools: HashMap<&str, &str> = samples
        .idle
        .iter()
        .map(|s| (s.label("node"), s.label("nodepool")))
        .collect();
    let mut hours: BTreeMap<(i64, String), NodeHour> = BTreeMap::new();
    for s in &samples.node_cost {
        let node = s.label("node");
        let capacity_type = match spot.get(node) {
            Some(true) => "spot",
            Some(false) => "on-demand",
            None => "",
        };
        for &(t, usd_per_hour) in s.samples.iter().filter(|(t, _)| in_window(*t, window)) {
            let hour = hour_of(t);
            let entry = hours.entry((hour, node.to_string())).or_insert_with(|| NodeHour {
                hour,
                node: node.to_string(),
                nodepool: pools.get(node).map_or(String::new(), |p| p.to_string()),
                instance_type: s.label("instance_type").into(),
                capacity_type: capacity_type.into(),
                region: s.label("region").into(),
                zone: s.label("zone").into(),
                provider_id: s.label("provider_id").into(),
                ..NodeHour::default()
            });
            let gpu_count = gpus.get(node).and_then(|g| g.get(&instant(t))).copied().unwrap_or(0.0);
            entry.hours += step / HOUR;
            entry.usd += usd_per_hour * step / HOUR;
            entry.gpu_hours += gpu_count * step / HOUR;
        }
    }
    hours.into_values().collect()
}

fn allocation_hours(samples: &Samples, window: &Window, step: f64) -> Vec<AllocationHour> {
    let gpus = by_instant(&samples.pod_gpus, |s| {
        (
            s.label("namespace").to_string(),
            s.label("pod").to_string(),
            s.label("node").to_string(),
        )
    });
    let mut hours: BTreeMap<(i64, String, String, String, String), AllocationHour> = BTreeMap::new();
    for s in &samples.allocations {
        let pod_key = (
            s.label("namespace").to_string(),
            s.label("pod").to_string(),
            s.label("node").to_string(),
        );
        let pod_gpus = gpus.get(&pod_key);
        for &(t, usd_per_hour) in s.samples.iter().filter(|(t, _)| in_window(*t, window)) {
            let hour = hour_of(t);
            let key = (
                hour,
                s.label("node").to_string(),
                s.label("namespace").to_string(),
                s.label("team").to_string(),
                s.label("cost_centre").to_string(),
            );
            let entry = hours.entry(key).or_insert_with(|| AllocationHour {
                hour,
                node: s.label("node").into(),
                namespace: s.label("namespace").into(),
                team: s.label("team").into(),
                cost_centre: s.label("cost_centre").into(),
                ..AllocationHour::default()
            });
            let gpu_count = pod_gpus.and_then(|g| g.get(&instant(t))).copied().unwrap_or(0.0);
            entry.usd += usd_per_hour * step / HOUR;
            entry.gpu_hours += gpu_count * step / HOUR;
        }
    }
    hours.into_values().collect()
}

/// The `purser_budget_*` gauges, by budget.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BudgetGauges {
    /// `purser_budget_spend_usd`.
    pub spend: Vec<Series>,
    /// `purser_budget_period_cap_usd`.
    pub period_cap: Vec<Series>,
    /// `purser_budget_forecast_usd`.
    pub forecast: Vec<Series>,
    /// `purser_budget_run_rate_usd_per_hour`.
    pub run_rate: Vec<Series>,
    /// `purser_budget_hourly_cap_usd_per_hour`.
    pub hourly_cap: Vec<Series>,
}

/// Each budget's standing from the latest value of its gauges, by name.
pub fn budgets(gauges: &BudgetGauges) -> Vec<BudgetStatus> {
    let last = |series: &[Series]| -> HashMap<String, f64> {
        series
            .iter()
            .filter_map(|s| Some((s.label("budget").to_string(), s.last()?)))
            .collect()
    };
    let (cap, forecast, rate, hourly) = (
        last(&gauges.period_cap),
        last(&gauges.forecast),
        last(&gauges.run_rate),
        last(&gauges.hourly_cap),
    );
    let mut out: Vec<BudgetStatus> = last(&gauges.spend)
        .into_iter()
        .map(|(name, spend)| BudgetStatus {
            spend,
            period_cap: cap.get(&name).copied(),
            forecast: forecast.get(&name).copied().unwrap_or(spend),
            run_rate: rate.get(&name).copied().unwrap_or(0.0),
            hourly_cap: hourly.get(&name).copied().unwrap_or(f64::INFINITY),
            name,
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    fn series(labels: &[(&str, &str)], samples: &[(f64, f64)]) -> Series {
        Series {
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            samples: samples.to_vec(),
        }
    }

    #[test]
    fn samples_held_for_a_step_add_up_per_hour_and_join_on_node_and_pod() {
        let t0 = 1_796_601_600.0 + 3600.0 - 60.0; // one minute before 01:00
        let grid: Vec<f64> = (0..4).map(|i| t0 + 30.0 * i as f64).collect();
        let at = |v: f64| grid.iter().map(|&t| (t, v)).collect::<Vec<_>>();
        let node = [
            ("node", "n1"),
            ("instance_type", "g5.xlarge"),
            ("region", "r"),
            ("zone", "z"),
            ("provider_id", "kwok://n1"),
        ];
        let pod = [
            ("namespace", "ml"),
            ("pod", "p"),
            ("team", "vision"),
            ("cost_centre", ""),
            ("node", "n1"),
        ];
        let samples = Samples {
            node_cost: vec![series(&node, &at(3.6))],
            node_spot: vec![series(&node, &at(1.0))],
            node_gpus: vec![series(&node, &at(1.0))],
            idle: vec![series(&[("node", "n1"), ("nodepool", "gpu")], &at(1.8))],
            allocations: vec![series(&pod, &at(1.8))],
            pod_gpus: vec![series(&[("namespace", "ml"), ("pod", "p"), ("node", "n1")], &at(1.0))],
        };
        let window = Window {
            start: DateTime::<Utc>::from_timestamp(t0 as i64, 0).unwrap(),
            end: DateTime::<Utc>::from_timestamp(t0 as i64 + 90, 0).unwrap(),
        };
        let usage = usage(&samples, &window, 30.0);
        assert_eq!(usage.nodes.len(), 2, "two hours: {usage:?}");
        let first = &usage.nodes[0];
        assert!((first.usd - 3.6 * 60.0 / 3600.0).abs() < 1e-12);
        assert_eq!((first.capacity_type.as_str(), first.nodepool.as_str()), ("spot", "gpu"));
        assert!(
            (usage.nodes[1].usd - 3.6 * 30.0 / 3600.0).abs() < 1e-12,
            "the sample at the end is out"
        );
        assert!((first.gpu_hours - 60.0 / 3600.0).abs() < 1e-12);
        let alloc = &usage.allocations[0];
        assert_eq!((alloc.team.as_str(), alloc.node.as_str()), ("vision", "n1"));
        assert!((alloc.gpu_hours - 60.0 / 3600.0).abs() < 1e-12);
        assert!((usage.node_cost() - 3.6 * 90.0 / 3600.0).abs() < 1e-12);
    }

    #[test]
    fn budgets_take_the_latest_values() {
        let b = |v: f64| vec![series(&[("budget", "vision")], &[(0.0, v - 1.0), (1.0, v)])];
        let gauges = BudgetGauges {
            spend: b(50.0),
            period_cap: b(100.0),
            forecast: b(90.0),
            run_rate: b(2.0),
            hourly_cap: b(5.0),
        };
        let all = budgets(&gauges);
        assert_eq!(all.len(), 1);
        assert_eq!(
            (all[0].spend, all[0].period_cap, all[0].standing()),
            (50.0, Some(100.0), "Warning")
        );
    }
}
