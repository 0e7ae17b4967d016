//! Budgets over time: a CostBudget's period (Monthly, Weekly or a cron-defined sprint), a
//! compact per-hour ledger of the cost allocated to its scope, and the assessment the
//! controller writes to its status: spend to date, forecast for the period, the Warning and
//! Exceeded states, and the run-rate the planner may still allow so that the period cap holds.
//!
//! Pure: times come in as arguments. Periods are in UTC.
//!
//! In: a period, the ledger, a cap and the current run-rate. Out: an [`Assessment`].

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// Seconds in an hour.
const HOUR: i64 = 3600;

/// Hours of history the ledger keeps (about three months, enough for the current and the
/// previous monthly period).
pub const KEPT_HOURS: i64 = 24 * 93;

/// Share of the period cap at which the forecast raises Warning.
pub const WARNING_SHARE: f64 = 0.8;

/// How a budget's periods are cut.
#[derive(Debug, Clone)]
pub enum Period {
    /// Calendar months, from the 1st at 00:00 UTC.
    Monthly,
    /// Weeks from Monday 00:00 UTC.
    Weekly,
    /// From one firing of the cron expression to the next (a sprint), in UTC.
    Cron(Box<croner::Cron>),
}

impl FromStr for Period {
    type Err = String;

    /// `Monthly`, `Weekly`, or a five-field cron expression such as `0 0 1,15 * *`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "Monthly" => Ok(Period::Monthly),
            "Weekly" => Ok(Period::Weekly),
            _ if s.split_whitespace().count() >= 5 => croner::Cron::from_str(s)
                .map(|c| Period::Cron(Box::new(c)))
                .map_err(|e| format!("is {s:?}: not a valid cron expression ({e})")),
            _ => Err(format!(
                "is {s:?}; expected Monthly, Weekly, or a cron expression whose firings start each period (e.g. \"0 0 1,15 * *\")"
            )),
        }
    }
}

impl Period {
    /// The period that contains `at`: [start, end).
    pub fn bounds(&self, at: DateTime<Utc>) -> Result<(DateTime<Utc>, DateTime<Utc>), String> {
        match self {
            Period::Monthly => {
                let start = month_start(at.year(), at.month());
                let (y, m) = if at.month() == 12 {
                    (at.year() + 1, 1)
                } else {
                    (at.year(), at.month() + 1)
                };
                Ok((start, month_start(y, m)))
            }
            Period::Weekly => {
                let days = at.weekday().num_days_from_monday() as i64;
                let date = at.date_naive() - Duration::days(days);
                let start = Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0).unwrap_or_default());
                Ok((start, start + Duration::days(7)))
            }
            Period::Cron(cron) => {
                let start = cron
                    .find_previous_occurrence(&at, true)
                    .map_err(|e| format!("the cron expression has no firing before {at}: {e}"))?;
                let end = cron
                    .find_next_occurrence(&at, false)
                    .map_err(|e| format!("the cron expression has no firing after {at}: {e}"))?;
                Ok((start, end))
            }
        }
    }
}

fn month_start(year: i32, month: u32) -> DateTime<Utc> {
    let date = NaiveDate::from_ymd_opt(year, month, 1).unwrap_or_default();
    Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0).unwrap_or_default())
}

/// Cost allocated to a budget's scope, per hour (UTC hour start in Unix seconds → USD), and
/// the instant up to which it has been accrued.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HourlyLedger {
    /// Unix seconds up to which cost has been recorded.
    pub accrued_until: Option<i64>,
    /// USD per UTC hour, keyed by the hour's start in Unix seconds.
    pub hours: BTreeMap<i64, f64>,
}

impl HourlyLedger {
    /// Record `usd_per_hour` from where the ledger stopped (or `now` on first use) to `now`,
    /// split over the hours it spans; drops hours older than [`KEPT_HOURS`].
    pub fn accrue(&mut self, usd_per_hour: f64, now: DateTime<Utc>) {
        let now = now.timestamp();
        let from = self.accrued_until.unwrap_or(now).min(now);
        let rate = if usd_per_hour.is_finite() {
            usd_per_hour.max(0.0)
        } else {
            0.0
        };
        let mut t = from;
        while t < now {
            let hour = t - t.rem_euclid(HOUR);
            let until = (hour + HOUR).min(now);
            *self.hours.entry(hour).or_insert(0.0) += rate * (until - t) as f64 / HOUR as f64;
            t = until;
        }
        self.accrued_until = Some(now);
        let oldest = now - now.rem_euclid(HOUR) - KEPT_HOURS * HOUR;
        self.hours.retain(|&h, _| h >= oldest);
    }

    /// USD recorded in [from, to) (hours are counted whole by their start).
    pub fn spend_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
        self.hours
            .range(from.timestamp()..to.timestamp())
            .map(|(_, usd)| usd)
            .sum()
    }
}

/// A budget's standing in its current period.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    /// Start of the current period.
    pub period_start: DateTime<Utc>,
    /// End of the current period.
    pub period_end: DateTime<Utc>,
    /// USD spent in the period so far.
    pub spend: f64,
    /// Spend to date plus the current run-rate until the period ends (an estimate).
    pub forecast: f64,
    /// The run-rate that would spend exactly what is left of the cap by the period's end.
    pub allowed_run_rate: f64,
    /// Forecast at or above [`WARNING_SHARE`] of the cap.
    pub warning: bool,
    /// Spend to date at or above the cap.
    pub exceeded: bool,
}

/// Assess a budget with period cap `cap` now, spending `run_rate` USD per hour.
pub fn assess(
    period: &Period,
    ledger: &HourlyLedger,
    cap: f64,
    run_rate: f64,
    now: DateTime<Utc>,
) -> Result<Assessment, String> {
    let (start, end) = period.bounds(now)?;
    let spend = ledger.spend_between(start, end);
    let hours_left = (end - now).num_seconds().max(0) as f64 / HOUR as f64;
    let forecast = spend + run_rate.max(0.0) * hours_left;
    let allowed_run_rate = if hours_left > 0.0 {
        ((cap - spend) / hours_left).max(0.0)
    } else {
        0.0
    };
    Ok(Assessment {
        period_start: start,
        period_end: end,
        spend,
        forecast,
        allowed_run_rate,
        warning: forecast >= WARNING_SHARE * cap,
        exceeded: spend >= cap,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn periods_parse_or_say_what_is_expected() {
        assert!(matches!("Monthly".parse::<Period>(), Ok(Period::Monthly)));
        assert!(matches!("Weekly".parse::<Period>(), Ok(Period::Weekly)));
        assert!(matches!("0 0 1,15 * *".parse::<Period>(), Ok(Period::Cron(_))));
        let err = "Fortnightly".parse::<Period>().unwrap_err();
        assert!(err.contains("expected Monthly, Weekly, or a cron expression"), "{err}");
        let err = "0 0 99 * *".parse::<Period>().unwrap_err();
        assert!(err.contains("not a valid cron expression"), "{err}");
    }

    #[test]
    fn bounds_of_each_period() {
        let (s, e) = Period::Monthly.bounds(at("2026-12-07T10:30:00Z")).unwrap();
        assert_eq!((s, e), (at("2026-12-01T00:00:00Z"), at("2027-01-01T00:00:00Z")));
        let (s, e) = Period::Weekly.bounds(at("2026-12-07T10:30:00Z")).unwrap();
        assert_eq!((s, e), (at("2026-12-07T00:00:00Z"), at("2026-12-14T00:00:00Z")));
        let (s, e) = Period::Weekly.bounds(at("2026-12-06T23:59:59Z")).unwrap();
        assert_eq!(s, at("2026-11-30T00:00:00Z"));
        assert_eq!(e, at("2026-12-07T00:00:00Z"));
        let sprint: Period = "0 0 1,15 * *".parse().unwrap();
        let (s, e) = sprint.bounds(at("2026-12-07T10:30:00Z")).unwrap();
        assert_eq!((s, e), (at("2026-12-01T00:00:00Z"), at("2026-12-15T00:00:00Z")));
    }

    #[test]
    fn accrual_splits_over_hours_and_survives_a_round_trip() {
        let mut ledger = HourlyLedger::default();
        ledger.accrue(10.0, at("2026-12-07T10:30:00Z"));
        assert!(ledger.hours.is_empty(), "the first call only starts the clock");
        ledger.accrue(10.0, at("2026-12-07T12:15:00Z"));
        let by_hour: Vec<f64> = ledger.hours.values().copied().collect();
        assert_eq!(by_hour, vec![5.0, 10.0, 2.5]);
        let json = serde_json::to_string(&ledger).unwrap();
        let back: HourlyLedger = serde_json::from_str(&json).unwrap();
        assert_eq!(back, ledger);
        // A clock that goes backwards records nothing and loses nothing.
        let mut again = back.clone();
        again.accrue(10.0, at("2026-12-07T11:00:00Z"));
        assert_eq!(again.hours, back.hours);
    }

    #[test]
    fn a_synthetic_month_warns_then_exceeds_and_the_allowed_rate_falls() {
        // A 3,000 USD monthly cap; December has 744 hours. Spend 3 USD/h for ten days, then 6.
        let period = Period::Monthly;
        let cap = 3000.0;
        let mut ledger = HourlyLedger::default();
        let start = at("2026-12-01T00:00:00Z");
        ledger.accrue(3.0, start);
        let mut first_warning = None;
        let mut first_exceeded = None;
        for hour in 1..=744 {
            let rate = if hour <= 240 { 3.0 } else { 6.0 };
            let now = start + Duration::hours(hour);
            ledger.accrue(rate, now);
            if hour == 744 {
                break;
            }
            let a = assess(&period, &ledger, cap, rate, now).unwrap();
            if a.warning && first_warning.is_none() {
                first_warning = Some(hour);
            }
            if a.exceeded && first_exceeded.is_none() {
                first_exceeded = Some(hour);
            }
            if hour == 240 {
                // 720 spent; 3 USD/h for the 504 hours left forecasts 2,232 (under 80%: 2,400).
                assert!((a.spend - 720.0).abs() < 1e-9);
                assert!((a.forecast - 2232.0).abs() < 1e-9);
                assert!(!a.warning);
                assert!((a.allowed_run_rate - 2280.0 / 504.0).abs() < 1e-9);
            }
        }
        // At 6 USD/h from hour 241: forecast = 720 + 6 (h - 240) + 6 (744 - h) = 3,744 ≥ 2,400.
        assert_eq!(first_warning, Some(241));
        // Spend reaches 3,000 when 720 + 6 (h - 240) ≥ 3,000: h = 620.
        assert_eq!(first_exceeded, Some(620));
        let a = assess(&period, &ledger, cap, 6.0, at("2026-12-31T23:00:00Z")).unwrap();
        assert_eq!(a.allowed_run_rate, 0.0);
        // The next period starts from nothing.
        let jan = assess(&period, &ledger, cap, 6.0, at("2027-01-01T00:00:00Z")).unwrap();
        assert_eq!(jan.spend, 0.0);
        assert!(!jan.exceeded);
    }
}
