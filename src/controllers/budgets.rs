//! CostBudget status over time: the per-budget ledger of allocated cost, kept in a ConfigMap
//! (`purser-ledger-<budget>` in the controller's namespace) so that a restart loses no spend,
//! and the status, Events and metrics that follow from it.
//!
//! Each status pass (leader only) accrues, per budget, the run-rate seen at the previous pass over the time
//! since then (so the cost of an interval is charged at the rate that held during it), then
//! records the current run-rate for the next pass. A controller that starts finds the ledger
//! and the last run-rate in the ConfigMap and charges the time it was down at that rate.
//!
//! In: the snapshot (pods on nodes with prices, budgets) and the stored ledgers. Out: CostBudget
//! status (runRate, periodStart, periodEnd, spendToDate, forecast, allowedRunRate; conditions
//! Ready, Warning, Exceeded), the ledger ConfigMaps, an Event and a counted transition whenever
//! Warning or Exceeded changes, and the `purser_budget_*` gauges.

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::conditions::{self, Condition};
use super::events::cluster_ref;
use super::metrics::{BudgetLabel, BudgetTransition};
use super::{Context, Error};
use crate::api::CostBudget;
use crate::cost::ledger::{self, Assessment, HourlyLedger, Period};
use crate::model::{Budget, Snapshot};

/// Key of the ledger in its ConfigMap.
const DATA_KEY: &str = "ledger.json";

/// What the ConfigMap holds: the hourly ledger and the run-rate last seen.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stored {
    /// USD per UTC hour and the instant it is accrued to.
    pub ledger: HourlyLedger,
    /// USD per hour allocated to the scope when last seen.
    pub run_rate: f64,
}

/// Name of the ConfigMap that keeps `budget`'s ledger.
pub fn ledger_name(budget: &str) -> String {
    format!("purser-ledger-{budget}")
}

/// Where a budget stands: the states Events and the transition counter report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    Within,
    Warning,
    Exceeded,
}

impl Standing {
    fn as_str(self) -> &'static str {
        match self {
            Standing::Within => "Within",
            Standing::Warning => "Warning",
            Standing::Exceeded => "Exceeded",
        }
    }
}

/// Update `budget`'s ledger and status for this pass.
pub async fn update(ctx: &Context, snapshot: &Snapshot, budget: &Budget) -> Result<(), Error> {
    let now = Utc::now();
    let rate = super::status::run_rate(snapshot, budget);
    let api: Api<CostBudget> = Api::all(ctx.client.clone());
    let current = serde_json::to_value(api.get(&budget.name).await?)?;
    let stored = accrue(ctx, &budget.name, &current, rate, now).await?;
    let period: Period = budget
        .period
        .as_deref()
        .unwrap_or("Monthly")
        .parse()
        .map_err(|e: String| Error::Other(format!("CostBudget {}: spec.period {e}", budget.name)))?;
    let assessment = ledger::assess(
        &period,
        &stored.ledger,
        budget.max_period_cost.unwrap_or(f64::INFINITY),
        rate,
        now,
    )
    .map_err(|e| Error::Other(format!("CostBudget {}: spec.period: {e}", budget.name)))?;
    let spec_cap = current
        .pointer("/spec/maxHourlyCost")
        .and_then(Value::as_f64)
        .unwrap_or(budget.max_hourly_cost);
    let (warning, exceeded) = budget_conditions(budget, spec_cap, rate, &assessment);
    let old = conditions::current_conditions(&current);
    report_transition(
        ctx,
        budget,
        standing_of(&old),
        standing(&warning, &exceeded),
        &exceeded,
        &warning,
    )
    .await;
    observe(ctx, budget, rate, &assessment);
    let stamp = conditions::now();
    let mut conds = conditions::set(
        &old,
        &Condition::yes("Ready", "Ready", "the budget is enforced"),
        &stamp,
    );
    conds = conditions::set(&conds, &warning, &stamp);
    conds = conditions::set(&conds, &exceeded, &stamp);
    let mut status = json!({
        "runRate": round(rate),
        "periodStart": assessment.period_start.to_rfc3339(),
        "periodEnd": assessment.period_end.to_rfc3339(),
        "spendToDate": round(assessment.spend),
        "forecast": round(assessment.forecast),
        "conditions": conds,
    });
    if budget.max_period_cost.is_some() {
        status["allowedRunRate"] = json!(round(assessment.allowed_run_rate));
    }
    api.patch_status(
        &budget.name,
        &PatchParams::default(),
        &Patch::Merge(&json!({ "status": status })),
    )
    .await?;
    Ok(())
}

/// Read the budget's ledger, charge the time since it was last accrued at the run-rate seen
/// then, record `rate` for the next pass and store it. The ledger is read from the cluster on
/// every pass, not cached, so a replica that regains leadership never writes back an old copy.
async fn accrue(ctx: &Context, budget: &str, current: &Value, rate: f64, now: DateTime<Utc>) -> Result<Stored, Error> {
    let mut stored = load(ctx, budget, current).await?;
    stored.ledger.accrue(stored.run_rate, now);
    stored.run_rate = rate;
    save(ctx, budget, &stored).await?;
    Ok(stored)
}

/// The stored ledger; a missing one starts from the status's spend to date (so that deleting
/// the ConfigMap loses no spend of the period), an unreadable one is reported and replaced.
async fn load(ctx: &Context, budget: &str, current: &Value) -> Result<Stored, Error> {
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ctx.settings.lease_namespace);
    let found = api.get_opt(&ledger_name(budget)).await?;
    let text = found
        .as_ref()
        .and_then(|c| c.data.as_ref())
        .and_then(|d| d.get(DATA_KEY));
    if let Some(text) = text {
        match serde_json::from_str::<Stored>(text) {
            Ok(stored) => return Ok(stored),
            Err(e) => {
                let note = format!(
                    "CostBudget {budget}: ConfigMap {}/{} data.{DATA_KEY} is not a ledger ({e}); \
                     starting again from status.spendToDate",
                    ctx.settings.lease_namespace,
                    ledger_name(budget)
                );
                tracing::warn!(budget, "{note}");
                ctx.events
                    .warning(&budget_ref(budget), "LedgerUnreadable", "Load", note)
                    .await;
            }
        }
    }
    Ok(from_status(current))
}

/// A ledger holding the status's spend to date at the start of its period, accrued from now.
fn from_status(current: &Value) -> Stored {
    let spend = current.pointer("/status/spendToDate").and_then(Value::as_f64);
    let start = current
        .pointer("/status/periodStart")
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok());
    let mut stored = Stored::default();
    if let (Some(spend), Some(start)) = (spend, start)
        && spend > 0.0
    {
        stored.ledger.hours.insert(start.timestamp(), spend);
    }
    stored
}

/// Write the ledger to its ConfigMap (created on first use).
async fn save(ctx: &Context, budget: &str, stored: &Stored) -> Result<(), Error> {
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ctx.settings.lease_namespace);
    let name = ledger_name(budget);
    let data = json!({ DATA_KEY: serde_json::to_string(stored)? });
    let patch = json!({"data": data});
    match api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => {
            let map: ConfigMap = serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": ctx.settings.lease_namespace,
                    "labels": {"app.kubernetes.io/managed-by": "purser", "purser.dev/costbudget": budget}},
                "data": data,
            }))?;
            api.create(&PostParams::default(), &map).await?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// The Warning and Exceeded conditions: Warning when the forecast reaches 80% of the period
/// cap; Exceeded when the period's spend reaches its cap or the run-rate is over the hourly cap.
fn budget_conditions(budget: &Budget, spec_cap: f64, rate: f64, a: &Assessment) -> (Condition, Condition) {
    let name = &budget.name;
    let warning = match budget.max_period_cost {
        Some(cap) => {
            let note = format!(
                "budget {name}: forecast {:.2} of {cap:.2} USD this period (spent {:.2}; the forecast is an estimate)",
                a.forecast, a.spend
            );
            if a.warning {
                Condition::yes("Warning", "ForecastOverWarningShare", note)
            } else {
                Condition::no("Warning", "ForecastWithinBudget", note)
            }
        }
        None => Condition::no("Warning", "NoPeriodCap", "no spec.maxPeriodCost"),
    };
    let hourly = format!("budget {name}: {rate:.2} of {spec_cap:.2} USD/h");
    let exceeded = match budget.max_period_cost {
        Some(cap) if a.exceeded => Condition::yes(
            "Exceeded",
            "PeriodCapReached",
            format!("budget {name}: spent {:.2} of {cap:.2} USD this period", a.spend),
        ),
        _ if rate > spec_cap => Condition::yes("Exceeded", "OverBudget", hourly),
        _ => Condition::no("Exceeded", "WithinBudget", hourly),
    };
    (warning, exceeded)
}

fn standing(warning: &Condition, exceeded: &Condition) -> Standing {
    if exceeded.status {
        Standing::Exceeded
    } else if warning.status {
        Standing::Warning
    } else {
        Standing::Within
    }
}

/// The standing the stored conditions show (Within when there are none).
fn standing_of(conditions: &[Value]) -> Standing {
    let holds = |t: &str| {
        conditions.iter().any(|c| {
            c.get("type").and_then(Value::as_str) == Some(t) && c.get("status").and_then(Value::as_str) == Some("True")
        })
    };
    if holds("Exceeded") {
        Standing::Exceeded
    } else if holds("Warning") {
        Standing::Warning
    } else {
        Standing::Within
    }
}

/// An Event and a counted transition when the standing changed.
async fn report_transition(
    ctx: &Context,
    budget: &Budget,
    before: Standing,
    after: Standing,
    exceeded: &Condition,
    warning: &Condition,
) {
    if before == after {
        return;
    }
    ctx.metrics
        .budget_transitions
        .get_or_create(&BudgetTransition {
            budget: budget.name.clone(),
            to: after.as_str().into(),
        })
        .inc();
    let regarding = budget_ref(&budget.name);
    match after {
        Standing::Exceeded => {
            ctx.events
                .warning(&regarding, "BudgetExceeded", "Assess", exceeded.message.clone())
                .await
        }
        Standing::Warning => {
            ctx.events
                .warning(&regarding, "BudgetWarning", "Assess", warning.message.clone())
                .await
        }
        Standing::Within => {
            ctx.events
                .normal(&regarding, "BudgetWithin", "Assess", exceeded.message.clone())
                .await
        }
    }
}

/// The `purser_budget_*` gauges of one budget.
fn observe(ctx: &Context, budget: &Budget, rate: f64, a: &Assessment) {
    let label = BudgetLabel {
        budget: budget.name.clone(),
    };
    let m = &ctx.metrics;
    m.budget_run_rate.get_or_create(&label).set(rate);
    m.budget_hourly_cap.get_or_create(&label).set(budget.max_hourly_cost);
    m.budget_spend.get_or_create(&label).set(a.spend);
    m.budget_forecast.get_or_create(&label).set(a.forecast);
    if let Some(cap) = budget.max_period_cost {
        m.budget_period_cap.get_or_create(&label).set(cap);
    }
}

fn budget_ref(name: &str) -> k8s_openapi::api::core::v1::ObjectReference {
    cluster_ref("purser.dev/v1", "CostBudget", name)
}

fn round(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(period_cap: Option<f64>) -> Budget {
        Budget {
            name: "team-vision".into(),
            namespaces: vec![],
            selector: None,
            max_hourly_cost: 40.0,
            period: Some("Monthly".into()),
            max_period_cost: period_cap,
        }
    }

    fn assessment(spend: f64, forecast: f64, warning: bool, exceeded: bool) -> Assessment {
        let at = DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        Assessment {
            period_start: at,
            period_end: at,
            spend,
            forecast,
            allowed_run_rate: 0.0,
            warning,
            exceeded,
        }
    }

    #[test]
    fn the_conditions_name_the_budget_and_the_numbers() {
        let (w, e) = budget_conditions(
            &budget(Some(3000.0)),
            40.0,
            10.0,
            &assessment(2500.0, 2900.0, true, false),
        );
        assert!(
            w.status && w.message.contains("forecast 2900.00 of 3000.00 USD"),
            "{w:?}"
        );
        assert!(!e.status && e.message.contains("10.00 of 40.00 USD/h"), "{e:?}");
        let (_, e) = budget_conditions(
            &budget(Some(3000.0)),
            40.0,
            10.0,
            &assessment(3000.0, 3100.0, true, true),
        );
        assert!(e.status && e.message.contains("spent 3000.00 of 3000.00 USD"), "{e:?}");
        let (w, e) = budget_conditions(&budget(None), 40.0, 41.2, &assessment(0.0, 0.0, false, false));
        assert!(
            !w.status && e.status && e.message.contains("41.20 of 40.00 USD/h"),
            "{e:?}"
        );
        assert_eq!(standing(&w, &e), Standing::Exceeded);
    }

    #[test]
    fn the_stored_standing_is_read_back_from_the_conditions() {
        let conds = vec![
            json!({"type": "Warning", "status": "True"}),
            json!({"type": "Exceeded", "status": "False"}),
        ];
        assert_eq!(standing_of(&conds), Standing::Warning);
        assert_eq!(standing_of(&[]), Standing::Within);
    }

    #[test]
    fn a_missing_ledger_starts_from_the_status_spend() {
        let current = json!({"status": {"spendToDate": 123.5, "periodStart": "2026-12-01T00:00:00Z"}});
        let stored = from_status(&current);
        let start = DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let end = DateTime::parse_from_rfc3339("2027-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(stored.ledger.spend_between(start, end), 123.5);
        assert_eq!(from_status(&json!({})), Stored::default());
    }

    #[test]
    fn the_stored_form_round_trips() {
        let mut stored = Stored::default();
        let at = DateTime::parse_from_rfc3339("2026-12-07T10:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        stored.ledger.accrue(0.0, at);
        stored.ledger.accrue(4.0, at + chrono::Duration::minutes(90));
        stored.run_rate = 4.0;
        let text = serde_json::to_string(&stored).unwrap();
        assert_eq!(serde_json::from_str::<Stored>(&text).unwrap(), stored);
    }
}
