//! `purser report`: a showback scorecard for a time window, from a Prometheus server that
//! scrapes the controller's cost metrics, or from the showback ledger the controller keeps in
//! the cluster (`controllers::showback`), read through the API server.
//!
//! In: flags, then the usage of the window and of the one before it. Out: the scorecard
//! (`cost::showback`) as a table, CSV, Markdown or FOCUS 1.2 CSV. Exit code 2: unusable flags;
//! 1: Prometheus or the API server did not answer or answered an error.

pub mod prometheus;

use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Args, ValueEnum};

use self::prometheus::{Prometheus, PrometheusError};
use crate::cost::showback::series::{self, BudgetGauges, Samples};
use crate::cost::showback::{self, GroupBy, Scorecard, Usage, Window, focus, render};

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// An aligned text table, the top changes and the budgets.
    Table,
    /// The group rows and the total as CSV.
    Csv,
    /// Markdown tables.
    Markdown,
    /// FOCUS 1.2 CSV: one row per node and hour.
    Focus,
}

/// `purser report` arguments.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Prometheus server that scrapes the controller's /metrics (http://host:port); without it
    /// the ledger the controller keeps is read through the API server (KUBECONFIG).
    #[arg(long, env = "PURSER_PROMETHEUS")]
    pub prometheus: Option<String>,
    /// Namespace of the controller's showback ledger (without --prometheus).
    #[arg(long, env = "POD_NAMESPACE", default_value = "purser")]
    pub namespace: String,
    /// Length of the window (e.g. 24h, 7d, 90m); ends at --end, or now.
    #[arg(long, value_parser = parse_span)]
    pub window: Option<Duration>,
    /// Start of the window, RFC 3339 (e.g. 2026-12-01T00:00:00Z).
    #[arg(long, value_parser = parse_time)]
    pub start: Option<DateTime<Utc>>,
    /// End of the window, RFC 3339 (default: now).
    #[arg(long, value_parser = parse_time)]
    pub end: Option<DateTime<Utc>>,
    /// Rows: namespace, team, cost-centre or nodepool.
    #[arg(long, default_value = "namespace", value_parser = parse_group)]
    pub by: GroupBy,
    /// Sampling step of the range queries (each sample counts for one step).
    #[arg(long, default_value = "60s", value_parser = super::parse_duration)]
    pub step: Duration,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub output: Format,
    /// FOCUS BillingAccountId (and BillingAccountName) of the rows.
    #[arg(long, default_value = "kubernetes")]
    pub billing_account: String,
}

/// Run `purser report`; returns the process exit code.
pub fn run(args: ReportArgs) -> i32 {
    let window = match window_of(args.window, args.start, args.end, Utc::now()) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let prometheus = match args.prometheus.as_deref().map(Prometheus::new).transpose() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return 1;
        }
    };
    let step = args.step.as_secs_f64();
    let full = args.output != Format::Focus;
    let read = runtime.block_on(async {
        match &prometheus {
            Some(p) => read(p, &window, step, full).await.map_err(|e| e.to_string()),
            None => read_cluster(&args.namespace, &window, full).await,
        }
    });
    let (current, previous, budgets) = match read {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    match args.output {
        Format::Focus => {
            let periods = match prometheus {
                Some(_) => window,
                None => showback::ledger::whole_hours(&window),
            };
            out!("{}", focus::csv(&current.nodes, &periods, &args.billing_account))
        }
        format => {
            let card = showback::scorecard(args.by, window, &current, &previous, budgets);
            out!("{}", render_card(&card, format));
        }
    }
    0
}

fn render_card(card: &Scorecard, format: Format) -> String {
    match format {
        Format::Csv => render::csv(card),
        Format::Markdown => render::markdown(card),
        _ => render::table(card),
    }
}

/// The usage of `window` and (when `with_previous`) of the window before it, and the budgets.
async fn read(
    prometheus: &Prometheus,
    window: &Window,
    step: f64,
    with_previous: bool,
) -> Result<Read, PrometheusError> {
    let from = if with_previous { window.previous() } else { *window };
    let samples = samples(prometheus, from.start, window.end, step).await?;
    let current = series::usage(&samples, window, step);
    let previous = if with_previous {
        series::usage(&samples, &window.previous(), step)
    } else {
        Usage::default()
    };
    let budgets = if with_previous {
        series::budgets(&budget_gauges(prometheus, window.end).await?)
    } else {
        vec![]
    };
    Ok((current, previous, budgets))
}

/// What [`read`] and [`read_cluster`] give: this window, the previous one, the budgets.
type Read = (Usage, Usage, Vec<showback::BudgetStatus>);

/// The same from the controller's ledger ConfigMaps in `namespace` and the CostBudgets.
async fn read_cluster(namespace: &str, window: &Window, with_previous: bool) -> Result<Read, String> {
    let client = kube::Client::try_default()
        .await
        .map_err(|e| format!("no Kubernetes API server (KUBECONFIG or in-cluster config) and no --prometheus: {e}"))?;
    let api = kube::Api::namespaced(client.clone(), namespace);
    let from = if with_previous { window.previous() } else { *window };
    let days = crate::controllers::showback::read_days(&api, from.start.timestamp(), window.end.timestamp())
        .await
        .map_err(|e| format!("showback ledger in namespace {namespace}: {e}"))?;
    let usage = |w: &Window| {
        let mut all = Usage::default();
        for day in &days {
            let u = day.usage(w);
            all.nodes.extend(u.nodes);
            all.allocations.extend(u.allocations);
        }
        all
    };
    let previous = if with_previous {
        usage(&window.previous())
    } else {
        Usage::default()
    };
    let budgets = if with_previous {
        cluster_budgets(client).await?
    } else {
        vec![]
    };
    Ok((usage(window), previous, budgets))
}

/// Each CostBudget's standing from its spec and status.
async fn cluster_budgets(client: kube::Client) -> Result<Vec<showback::BudgetStatus>, String> {
    let api: kube::Api<crate::api::CostBudget> = kube::Api::all(client);
    let list = api
        .list(&Default::default())
        .await
        .map_err(|e| format!("cannot list CostBudgets: {e}"))?;
    let mut out: Vec<showback::BudgetStatus> = list
        .items
        .iter()
        .filter_map(|b| serde_json::to_value(b).ok())
        .map(|v| {
            let num = |p: &str| v.pointer(p).and_then(serde_json::Value::as_f64);
            showback::BudgetStatus {
                name: v
                    .pointer("/metadata/name")
                    .and_then(|n| n.as_str())
                    .unwrap_or_default()
                    .to_string(),
                spend: num("/status/spendToDate").unwrap_or(0.0),
                period_cap: num("/spec/maxPeriodCost"),
                forecast: num("/status/forecast").unwrap_or(0.0),
                run_rate: num("/status/runRate").unwrap_or(0.0),
                hourly_cap: num("/spec/maxHourlyCost").unwrap_or(f64::INFINITY),
            }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

async fn samples(
    prometheus: &Prometheus,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    step: f64,
) -> Result<Samples, PrometheusError> {
    let (start, end) = (start.timestamp() as f64, end.timestamp() as f64);
    let range = |q: &'static str| prometheus.range(q, start, end, step);
    Ok(Samples {
        node_cost: range("node_total_hourly_cost").await?,
        node_spot: range("kubecost_node_is_spot").await?,
        node_gpus: range("node_gpu_count").await?,
        idle: range("purser_idle_hourly_cost").await?,
        allocations: range("purser_allocation_hourly_cost").await?,
        pod_gpus: range("sum by (namespace, pod, node) (container_gpu_allocation)").await?,
    })
}

async fn budget_gauges(prometheus: &Prometheus, at: DateTime<Utc>) -> Result<BudgetGauges, PrometheusError> {
    let at = at.timestamp() as f64;
    let instant = |q: &'static str| prometheus.instant(q, at);
    Ok(BudgetGauges {
        spend: instant("purser_budget_spend_usd").await?,
        period_cap: instant("purser_budget_period_cap_usd").await?,
        forecast: instant("purser_budget_forecast_usd").await?,
        run_rate: instant("purser_budget_run_rate_usd_per_hour").await?,
        hourly_cap: instant("purser_budget_hourly_cap_usd_per_hour").await?,
    })
}

/// The window the flags give: `--start` and `--end`; or `--window` ending at `--end` (or now),
/// or starting at `--start`; by default the 24 hours before now.
pub fn window_of(
    span: Option<Duration>,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Window, String> {
    let span = span
        .map(|d| chrono::Duration::from_std(d).map_err(|_| "--window is too long".to_string()))
        .transpose()?;
    match (span, start, end) {
        (Some(_), Some(_), Some(_)) => Err("give --window or --start and --end, not all three".into()),
        (Some(len), Some(start), None) => Window::new(start, start + len),
        (Some(len), None, end) => {
            let end = end.unwrap_or(now);
            Window::new(end - len, end)
        }
        (None, Some(start), end) => Window::new(start, end.unwrap_or(now)),
        (None, None, end) => {
            let end = end.unwrap_or(now);
            Window::new(end - chrono::Duration::hours(24), end)
        }
    }
}

/// A span such as `90m`, `24h`, `7d` or `30s`.
pub fn parse_span(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let expected = || format!("invalid --window {text:?}: expected a number and a unit, e.g. 90m, 24h, 7d");
    let (number, unit) = text.split_at(text.find(|c: char| c.is_ascii_alphabetic()).ok_or_else(expected)?);
    let value: f64 = number.parse().map_err(|_| expected())?;
    let seconds = match unit {
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        "w" => 604_800.0,
        _ => return Err(expected()),
    };
    if !value.is_finite() || value <= 0.0 {
        return Err(format!("invalid --window {text:?}: must be positive"));
    }
    Ok(Duration::from_secs_f64(value * seconds))
}

/// An RFC 3339 instant.
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("invalid time {text:?} ({e}); expected RFC 3339, e.g. 2026-12-07T10:00:00Z"))
}

fn parse_group(text: &str) -> Result<GroupBy, String> {
    text.parse()
}

#[cfg(test)]
mod tests;
