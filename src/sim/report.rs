//! Renders a [`SimResult`]: `kpis.json`, `timeline.csv`, a terminal KPI table, and one
//! self-contained HTML report with inline SVG charts (no scripts, fonts or images from outside).

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Map, Number, Value};

use super::result::{HourRow, Kpis, PolicyResult, SimResult};

/// The policy that the savings lines compare against the others.
const PURSER: &str = "purser";

/// Line colours, one per policy in the order run (cycled past the end).
const PALETTE: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// Header of [`timeline_csv`].
pub const TIMELINE_CSV_HEADER: &str =
    "policy,hour,spend,on_demand_nodes,spot_nodes,gpu_allocation,pending_pods,latency_vs_slo";

/// `kpis.json`: `{"scenario", "seed", "simulatedHours", "policies": {NAME: Kpis}}`, with each
/// policy's [`Kpis`] as serde writes it (camelCase; USD and seconds; a non-finite number is
/// `null`). `simulatedHours` is an integer when it is a whole number. A policy name that occurs
/// twice keeps the later result.
pub fn kpis_json(result: &SimResult) -> Value {
    let mut policies = Map::new();
    for policy in &result.policies {
        let kpis = serde_json::to_value(&policy.kpis).unwrap_or(Value::Null);
        policies.insert(policy.name.clone(), kpis);
    }
    let mut root = Map::new();
    root.insert("scenario".into(), Value::String(result.scenario.clone()));
    root.insert("seed".into(), Value::Number(result.seed.into()));
    root.insert("simulatedHours".into(), hours_value(result.simulated_hours));
    root.insert("policies".into(), Value::Object(policies));
    Value::Object(root)
}

fn hours_value(hours: f64) -> Value {
    if hours.is_finite() && hours.fract() == 0.0 && (0.0..=9.0e15).contains(&hours) {
        Value::Number(Number::from(hours as u64))
    } else {
        Number::from_f64(hours).map_or(Value::Null, Value::Number)
    }
}

/// `timeline.csv`: [`TIMELINE_CSV_HEADER`], then one row per policy per hour (policies in the
/// order run). A non-finite number is an empty field.
pub fn timeline_csv(result: &SimResult) -> String {
    let mut out = String::with_capacity(64 * (1 + result.policies.iter().map(|p| p.timeline.len()).sum::<usize>()));
    out.push_str(TIMELINE_CSV_HEADER);
    out.push('\n');
    for policy in &result.policies {
        let name = csv_field(&policy.name);
        for row in &policy.timeline {
            let _ = writeln!(
                out,
                "{name},{},{},{},{},{},{},{}",
                row.hour,
                csv_number(row.spend),
                row.on_demand_nodes,
                row.spot_nodes,
                csv_number(row.gpu_allocation),
                row.pending_pods,
                csv_number(row.latency_vs_slo),
            );
        }
    }
    out
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

fn csv_number(value: f64) -> String {
    if value.is_finite() {
        value.to_string()
    } else {
        String::new()
    }
}

/// A duration in seconds as people read it: `0s`, `42s`, `4m12s`, `2h05m`, `3d04h`; `-` when
/// not finite or negative.
pub fn format_duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "-".into();
    }
    let total = seconds.round().min(u64::MAX as f64) as u64;
    let (days, hours, minutes, secs) = (total / 86_400, total / 3600 % 24, total / 60 % 60, total % 60);
    if total < 60 {
        format!("{secs}s")
    } else if total < 3600 {
        format!("{minutes}m{secs:02}s")
    } else if total < 86_400 {
        format!("{hours}h{minutes:02}m")
    } else {
        format!("{days}d{hours:02}h")
    }
}

fn fixed(value: f64, decimals: usize) -> String {
    if value.is_finite() {
        format!("{value:.decimals$}")
    } else {
        "-".into()
    }
}

fn percent(share: f64) -> String {
    if share.is_finite() {
        format!("{:.1}%", share * 100.0)
    } else {
        "-".into()
    }
}

/// One KPI row: label, then one cell per policy.
type Row = (String, Vec<String>);

fn kpi_rows(result: &SimResult) -> Vec<Row> {
    type Cell = fn(&Kpis) -> String;
    fn capacity(k: &Kpis, key: &str) -> f64 {
        k.spend_by_capacity_type.get(key).copied().unwrap_or(0.0)
    }
    let rows: [(&str, Cell); 21] = [
        ("Total spend (USD)", |k| fixed(k.total_spend, 2)),
        ("Spend on-demand (USD)", |k| fixed(capacity(k, "on-demand"), 2)),
        ("Spend spot (USD)", |k| fixed(capacity(k, "spot"), 2)),
        ("GPU allocation", |k| percent(k.gpu_allocation)),
        ("GPU utilisation", |k| percent(k.gpu_utilisation)),
        ("CPU allocation", |k| percent(k.cpu_allocation)),
        ("Memory allocation", |k| percent(k.memory_allocation)),
        ("Training queue p50", |k| format_duration(k.training_queue_p50_seconds)),
        ("Training queue p95", |k| format_duration(k.training_queue_p95_seconds)),
        ("Training jobs finished", |k| k.training_jobs_finished.to_string()),
        ("Cost per 1k inferences (USD)", |k| fixed(k.cost_per_1k_inferences, 4)),
        ("SLO violation minutes", |k| fixed(k.slo_violation_minutes, 1)),
        ("Node-hours reclaimed", |k| fixed(k.node_hours_reclaimed, 1)),
        ("Spot interruptions", |k| k.interruptions.to_string()),
        ("GPU-hours lost", |k| fixed(k.gpu_hours_lost, 1)),
        ("Budget breach minutes", |k| k.budget_breaches.to_string()),
        ("Decisions", |k| k.decisions.to_string()),
        ("Mean decision (ms)", |k| fixed(k.mean_decision_seconds * 1000.0, 2)),
        ("Max decision (ms)", |k| fixed(k.max_decision_seconds * 1000.0, 2)),
        ("Launches", |k| k.launches.to_string()),
        ("Launch failures", |k| k.launch_failures.to_string()),
    ];
    rows.iter()
        .map(|(label, cell)| {
            (
                label.to_string(),
                result.policies.iter().map(|p| cell(&p.kpis)).collect(),
            )
        })
        .collect()
}

/// Spend per team, one row per team (sorted, `idle` last), one cell per policy.
fn team_rows(result: &SimResult) -> Vec<Row> {
    let mut teams: Vec<&str> = result
        .policies
        .iter()
        .flat_map(|p| p.kpis.spend_by_team.keys().map(String::as_str))
        .collect();
    teams.sort_by_key(|team| (*team == "idle", *team));
    teams.dedup();
    teams
        .into_iter()
        .map(|team| {
            let cells = result
                .policies
                .iter()
                .map(|p| {
                    p.kpis
                        .spend_by_team
                        .get(team)
                        .map_or_else(|| "-".to_string(), |v| fixed(*v, 2))
                })
                .collect();
            (team.to_string(), cells)
        })
        .collect()
}

/// "purser saves X% vs P (A vs B USD)" for every other policy, when a `purser` policy ran.
fn savings_lines(result: &SimResult) -> Vec<String> {
    let Some(purser) = result.policies.iter().find(|p| p.name == PURSER) else {
        return Vec::new();
    };
    let ours = purser.kpis.total_spend;
    result
        .policies
        .iter()
        .filter(|p| p.name != PURSER)
        .map(|other| {
            let theirs = other.kpis.total_spend;
            let name = &other.name;
            let amounts = format!("({} vs {} USD)", fixed(ours, 2), fixed(theirs, 2));
            if !(ours.is_finite() && theirs.is_finite() && theirs > 0.0) {
                format!("purser vs {name}: no savings figure {amounts}")
            } else if ours <= theirs {
                format!(
                    "purser saves {:.1}% vs {name} {amounts}",
                    (theirs - ours) / theirs * 100.0
                )
            } else {
                format!(
                    "purser spends {:.1}% more than {name} {amounts}",
                    (ours - theirs) / theirs * 100.0
                )
            }
        })
        .collect()
}

fn text_table(corner: &str, policies: &[&str], rows: &[Row]) -> String {
    let width = |s: &str| s.chars().count();
    let mut widths = vec![
        rows.iter()
            .map(|(label, _)| width(label))
            .chain([width(corner)])
            .max()
            .unwrap_or(0),
    ];
    for (i, policy) in policies.iter().enumerate() {
        let cells = rows.iter().filter_map(|(_, cells)| cells.get(i)).map(|c| width(c));
        widths.push(cells.chain([width(policy)]).max().unwrap_or(0));
    }
    let mut out = String::new();
    let line = |out: &mut String, first: &str, rest: &[&str]| {
        let mut text = format!("{first:<w$}", w = widths[0]);
        for (i, cell) in rest.iter().enumerate() {
            let _ = write!(text, "  {cell:>w$}", w = widths[i + 1]);
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut out, corner, policies);
    let rules: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    let rule_refs: Vec<&str> = rules.iter().map(String::as_str).collect();
    line(&mut out, rule_refs[0], &rule_refs[1..]);
    for (label, cells) in rows {
        let cells: Vec<&str> = cells.iter().map(String::as_str).collect();
        line(&mut out, label, &cells);
    }
    out
}

/// The terminal report: one row per KPI and one column per policy, then a "purser saves X% vs
/// P (A vs B USD)" line for each other policy (when `purser` ran), then spend per team.
pub fn kpi_table(result: &SimResult) -> String {
    let names: Vec<&str> = result.policies.iter().map(|p| p.name.as_str()).collect();
    let mut out = text_table("KPI", &names, &kpi_rows(result));
    let savings = savings_lines(result);
    if !savings.is_empty() {
        out.push('\n');
        for line in savings {
            out.push_str(&line);
            out.push('\n');
        }
    }
    let teams = team_rows(result);
    if !teams.is_empty() {
        out.push('\n');
        out.push_str(&text_table("Spend per team (USD)", &names, &teams));
    }
    out
}

/// Escapes text for HTML and SVG text and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn html_table(out: &mut String, id: &str, corner: &str, policies: &[&str], rows: &[Row]) {
    let _ = write!(
        out,
        "<table id=\"{id}\">\n<thead><tr><th scope=\"col\">{}</th>",
        escape(corner)
    );
    for policy in policies {
        let _ = write!(out, "<th scope=\"col\">{}</th>", escape(policy));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for (label, cells) in rows {
        let _ = write!(out, "<tr><th scope=\"row\">{}</th>", escape(label));
        for cell in cells {
            let _ = write!(out, "<td>{}</td>", escape(cell));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
}

const CSS: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:2rem auto;max-width:900px;\
padding:0 1rem;color:#222;background:#fff}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0;font-variant-numeric:tabular-nums}
th,td{padding:.25rem .75rem;border-bottom:1px solid #ddd}
td{text-align:right}thead th{text-align:right;border-bottom:2px solid #999}
thead th:first-child,tbody th{text-align:left;font-weight:normal}
ul.savings{font-weight:600}
figure{margin:1.5rem 0}svg{max-width:100%;height:auto}
.meta{color:#555}";

/// The whole report as one self-contained HTML page: the KPI table, the savings lines, spend
/// per team, and five inline SVG charts over hours (`chart-spend`, `chart-nodes`, `chart-gpu`,
/// `chart-pending`, `chart-latency`), one line per policy.
pub fn html(result: &SimResult) -> String {
    let names: Vec<&str> = result.policies.iter().map(|p| p.name.as_str()).collect();
    let scenario = escape(&result.scenario);
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>purser simulate: {scenario} (seed {seed})</title>\n<style>\n{CSS}\n</style>\n</head>\n<body>\n\
         <h1>purser simulate: {scenario} <span class=\"meta\">(seed {seed})</span></h1>\n\
         <p class=\"meta\">{hours} simulated hour{plural}, policies: {policies}</p>\n",
        seed = result.seed,
        hours = hours_text(result.simulated_hours),
        plural = if result.simulated_hours == 1.0 { "" } else { "s" },
        policies = escape(&names.join(", ")),
    );
    out.push_str("<h2>KPIs</h2>\n");
    html_table(&mut out, "kpi-table", "KPI", &names, &kpi_rows(result));
    let savings = savings_lines(result);
    if !savings.is_empty() {
        out.push_str("<ul class=\"savings\" id=\"savings\">\n");
        for line in savings {
            let _ = writeln!(out, "<li>{}</li>", escape(&line));
        }
        out.push_str("</ul>\n");
    }
    let teams = team_rows(result);
    if !teams.is_empty() {
        out.push_str("<h2>Spend per team (USD)</h2>\n");
        html_table(&mut out, "team-table", "Team", &names, &teams);
    }
    out.push_str("<h2>Hour by hour</h2>\n");
    for chart in charts(&result.policies) {
        out.push_str("<figure>\n");
        out.push_str(&chart.svg());
        out.push_str("</figure>\n");
    }
    out.push_str("</body>\n</html>\n");
    out
}

fn hours_text(hours: f64) -> String {
    if hours.is_finite() && hours.fract() == 0.0 {
        fixed(hours, 0)
    } else {
        fixed(hours, 1)
    }
}

/// Writes `report.html`, `kpis.json` (pretty) and `timeline.csv` into `dir`, creating it.
pub fn write_report(dir: &Path, result: &SimResult) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("report.html"), html(result))?;
    let mut json = serde_json::to_string_pretty(&kpis_json(result)).map_err(std::io::Error::other)?;
    json.push('\n');
    std::fs::write(dir.join("kpis.json"), json)?;
    std::fs::write(dir.join("timeline.csv"), timeline_csv(result))?;
    Ok(())
}

// ---- SVG charts -------------------------------------------------------------------------------

struct Series {
    label: String,
    color: &'static str,
    dashed: bool,
    points: Vec<(f64, f64)>,
}

struct Chart {
    id: &'static str,
    title: &'static str,
    y_label: &'static str,
    series: Vec<Series>,
    /// A horizontal reference line (value, legend label).
    reference: Option<(f64, &'static str)>,
    /// The y axis reaches at least this high.
    y_min_top: f64,
    /// Ticks on whole numbers only.
    integer: bool,
}

fn charts(policies: &[PolicyResult]) -> Vec<Chart> {
    let color = |i: usize| PALETTE[i % PALETTE.len()];
    let per_policy = |value: fn(&HourRow) -> f64| -> Vec<Series> {
        policies
            .iter()
            .enumerate()
            .map(|(i, p)| Series {
                label: p.name.clone(),
                color: color(i),
                dashed: false,
                points: p.timeline.iter().map(|r| (f64::from(r.hour), value(r))).collect(),
            })
            .collect()
    };
    let mut nodes = Vec::new();
    for (i, p) in policies.iter().enumerate() {
        for (kind, dashed, value) in [
            (
                "on-demand",
                false,
                (|r: &HourRow| r.on_demand_nodes) as fn(&HourRow) -> u32,
            ),
            ("spot", true, |r: &HourRow| r.spot_nodes),
        ] {
            nodes.push(Series {
                label: format!("{} {kind}", p.name),
                color: color(i),
                dashed,
                points: p
                    .timeline
                    .iter()
                    .map(|r| (f64::from(r.hour), f64::from(value(r))))
                    .collect(),
            });
        }
    }
    vec![
        Chart {
            id: "chart-spend",
            title: "Spend per hour",
            y_label: "USD per hour",
            series: per_policy(|r| r.spend),
            reference: None,
            y_min_top: 0.0,
            integer: false,
        },
        Chart {
            id: "chart-nodes",
            title: "Nodes by capacity type (solid: on-demand, dashed: spot)",
            y_label: "nodes",
            series: nodes,
            reference: None,
            y_min_top: 1.0,
            integer: true,
        },
        Chart {
            id: "chart-gpu",
            title: "GPU allocation",
            y_label: "% of paid GPU-hours requested",
            series: per_policy(|r| r.gpu_allocation * 100.0),
            reference: None,
            y_min_top: 100.0,
            integer: false,
        },
        Chart {
            id: "chart-pending",
            title: "Pending pods",
            y_label: "pods",
            series: per_policy(|r| f64::from(r.pending_pods)),
            reference: None,
            y_min_top: 1.0,
            integer: true,
        },
        Chart {
            id: "chart-latency",
            title: "Inference latency vs SLO (worst service p95 ÷ SLO)",
            y_label: "latency ÷ SLO",
            series: per_policy(|r| r.latency_vs_slo),
            reference: Some((1.0, "SLO (1.0)")),
            y_min_top: 1.2,
            integer: false,
        },
    ]
}

/// A coordinate for SVG: two decimals, never NaN or infinite.
fn coord(v: f64) -> String {
    if v.is_finite() {
        format!("{:.2}", v.clamp(-1.0e6, 1.0e6))
    } else {
        "0".into()
    }
}

/// A 1-2-5 step near `raw`; 1 when `raw` is not a positive finite number.
fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    let norm = raw / magnitude;
    let step = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    } * magnitude;
    if step.is_finite() && step > 0.0 { step } else { 1.0 }
}

/// Hour ticks on steps people expect (1, 2, 3, 6, 12 h, days, weeks), about `target` of them.
fn hour_step(span: f64, target: f64) -> f64 {
    const STEPS: [f64; 13] = [
        1.0, 2.0, 3.0, 4.0, 6.0, 12.0, 24.0, 48.0, 72.0, 168.0, 336.0, 672.0, 1344.0,
    ];
    STEPS
        .into_iter()
        .find(|s| span / s <= target)
        .unwrap_or_else(|| nice_step(span / target).max(1.0))
}

fn ticks(lo: f64, hi: f64, step: f64) -> Vec<f64> {
    let count = ((hi - lo) / step + 1e-9).floor();
    let count = if count.is_finite() {
        count.clamp(0.0, 100.0) as usize
    } else {
        0
    };
    (0..=count)
        .map(|i| lo + step * i as f64)
        .map(|v| if v == 0.0 { 0.0 } else { v })
        .collect()
}

fn tick_label(value: f64, step: f64) -> String {
    let decimals = if step >= 1.0 && step.fract() == 0.0 {
        0
    } else {
        (-step.log10().floor()).clamp(0.0, 6.0) as usize
    };
    let text = format!("{value:.decimals$}");
    if text.trim_start_matches('-').chars().all(|c| c == '0' || c == '.') {
        text.replace('-', "")
    } else {
        text
    }
}

const WIDTH: f64 = 800.0;
const LEFT: f64 = 72.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 44.0;
const PLOT_HEIGHT: f64 = 240.0;
const LEGEND_ROW: f64 = 20.0;

impl Chart {
    fn svg(&self) -> String {
        let plot_width = WIDTH - LEFT - RIGHT;
        let finite = |&(x, y): &(f64, f64)| x.is_finite() && y.is_finite();
        let all = || self.series.iter().flat_map(|s| s.points.iter().copied()).filter(finite);

        // Domains.
        let (mut x_lo, mut x_hi) = all().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), (x, _)| {
            (a.min(x), b.max(x))
        });
        if !(x_lo.is_finite() && x_hi.is_finite()) {
            (x_lo, x_hi) = (0.0, 1.0);
        } else if x_hi - x_lo < 1.0 {
            x_hi = x_lo + 1.0;
        }
        let (mut y_data_lo, mut y_data_hi) =
            all().fold((0.0f64, self.y_min_top), |(a, b), (_, y)| (a.min(y), b.max(y)));
        if let Some((value, _)) = self.reference {
            y_data_hi = y_data_hi.max(value);
        }
        if !(y_data_hi - y_data_lo).is_finite() {
            (y_data_lo, y_data_hi) = (0.0, 1.0);
        }
        if y_data_hi <= y_data_lo {
            y_data_hi = y_data_lo + 1.0;
        }
        let mut y_step = nice_step((y_data_hi - y_data_lo) / 5.0);
        if self.integer {
            y_step = y_step.max(1.0).ceil();
        }
        let y_lo = (y_data_lo / y_step).floor() * y_step;
        let y_hi = (y_data_hi / y_step).ceil() * y_step;
        let x_step = hour_step(x_hi - x_lo, 12.0);

        let sx = |x: f64| LEFT + (x - x_lo) / (x_hi - x_lo) * plot_width;
        let sy = |y: f64| TOP + PLOT_HEIGHT - (y - y_lo) / (y_hi - y_lo) * PLOT_HEIGHT;

        // Legend layout.
        let mut legend: Vec<(&str, &str, bool)> = self
            .series
            .iter()
            .map(|s| (s.label.as_str(), s.color, s.dashed))
            .collect();
        if let Some((_, label)) = self.reference {
            legend.push((label, "#444", true));
        }
        let item_width = legend
            .iter()
            .map(|(l, _, _)| l.chars().count() as f64 * 7.0 + 44.0)
            .fold(120.0, f64::max);
        let per_row = ((plot_width / item_width).floor() as usize).max(1);
        let legend_rows = legend.len().div_ceil(per_row).max(1);
        let legend_top = TOP + PLOT_HEIGHT + 56.0;
        let height = legend_top + legend_rows as f64 * LEGEND_ROW + 4.0;

        let id = self.id;
        let title = escape(self.title);
        let mut s = String::new();
        let _ = writeln!(
            s,
            "<svg id=\"{id}\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
             viewBox=\"0 0 {w} {h}\" role=\"img\" aria-labelledby=\"{id}-title\" \
             font-family=\"system-ui, sans-serif\" font-size=\"12\">",
            w = coord(WIDTH),
            h = coord(height),
        );
        let _ = writeln!(s, "<title id=\"{id}-title\">{title}</title>");
        let _ = writeln!(
            s,
            "<rect x=\"0\" y=\"0\" width=\"{}\" height=\"{}\" fill=\"#fff\"/>",
            coord(WIDTH),
            coord(height)
        );
        let _ = writeln!(
            s,
            "<text class=\"chart-title\" x=\"{}\" y=\"22\" font-size=\"15\" font-weight=\"600\">{title}</text>",
            coord(LEFT)
        );

        // Grid and y ticks.
        for y in ticks(y_lo, y_hi, y_step) {
            let py = coord(sy(y));
            let _ = writeln!(
                s,
                "<line x1=\"{}\" y1=\"{py}\" x2=\"{}\" y2=\"{py}\" stroke=\"#e5e5e5\"/>\
                 <text x=\"{}\" y=\"{py}\" text-anchor=\"end\" dominant-baseline=\"middle\" fill=\"#444\">{}</text>",
                coord(LEFT),
                coord(LEFT + plot_width),
                coord(LEFT - 6.0),
                escape(&tick_label(y, y_step)),
            );
        }
        // X ticks.
        let first_x = (x_lo / x_step).ceil() * x_step;
        let axis_y = TOP + PLOT_HEIGHT;
        for x in ticks(first_x, x_hi, x_step) {
            let px = coord(sx(x));
            let _ = writeln!(
                s,
                "<line x1=\"{px}\" y1=\"{}\" x2=\"{px}\" y2=\"{}\" stroke=\"#444\"/>\
                 <text x=\"{px}\" y=\"{}\" text-anchor=\"middle\" fill=\"#444\">{}</text>",
                coord(axis_y),
                coord(axis_y + 5.0),
                coord(axis_y + 18.0),
                escape(&tick_label(x, x_step)),
            );
        }
        // Axes and their labels.
        let _ = writeln!(
            s,
            "<line x1=\"{l}\" y1=\"{t}\" x2=\"{l}\" y2=\"{b}\" stroke=\"#444\"/>\
             <line x1=\"{l}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#444\"/>",
            l = coord(LEFT),
            t = coord(TOP),
            b = coord(axis_y),
            r = coord(LEFT + plot_width),
        );
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#222\">hour</text>",
            coord(LEFT + plot_width / 2.0),
            coord(axis_y + 38.0),
        );
        let (lx, ly) = (coord(16.0), coord(TOP + PLOT_HEIGHT / 2.0));
        let _ = writeln!(
            s,
            "<text x=\"{lx}\" y=\"{ly}\" transform=\"rotate(-90 {lx} {ly})\" text-anchor=\"middle\" \
             dominant-baseline=\"middle\" fill=\"#222\">{}</text>",
            escape(self.y_label),
        );

        // Reference line.
        if let Some((value, label)) = self.reference {
            let py = coord(sy(value));
            let _ = writeln!(
                s,
                "<line class=\"reference\" x1=\"{}\" y1=\"{py}\" x2=\"{}\" y2=\"{py}\" stroke=\"#444\" \
                 stroke-width=\"1.5\" stroke-dasharray=\"2 3\"><title>{}</title></line>",
                coord(LEFT),
                coord(LEFT + plot_width),
                escape(label),
            );
        }

        // Series: runs of finite points as paths; a lone point as a dot.
        let mut any = false;
        for series in &self.series {
            let dash = if series.dashed { " stroke-dasharray=\"6 4\"" } else { "" };
            let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
            for point in &series.points {
                if finite(point) {
                    if let Some(run) = runs.last_mut() {
                        run.push(*point);
                    }
                } else if runs.last().is_some_and(|run| !run.is_empty()) {
                    runs.push(Vec::new());
                }
            }
            for run in runs.iter().filter(|run| !run.is_empty()) {
                any = true;
                if let [(x, y)] = run[..] {
                    let _ = writeln!(
                        s,
                        "<circle cx=\"{}\" cy=\"{}\" r=\"3\" fill=\"{}\"><title>{}</title></circle>",
                        coord(sx(x)),
                        coord(sy(y)),
                        series.color,
                        escape(&series.label),
                    );
                    continue;
                }
                let mut d = String::new();
                for (i, (x, y)) in run.iter().enumerate() {
                    let _ = write!(
                        d,
                        "{}{},{}",
                        if i == 0 { "M" } else { " L" },
                        coord(sx(*x)),
                        coord(sy(*y))
                    );
                }
                let _ = writeln!(
                    s,
                    "<path d=\"{d}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\" stroke-linejoin=\"round\"{dash}>\
                     <title>{}</title></path>",
                    series.color,
                    escape(&series.label),
                );
            }
        }
        if !any {
            let _ = writeln!(
                s,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#888\" font-size=\"14\">no data</text>",
                coord(LEFT + plot_width / 2.0),
                coord(TOP + PLOT_HEIGHT / 2.0),
            );
        }

        // Legend.
        let _ = writeln!(s, "<g class=\"legend\">");
        for (i, (label, color, dashed)) in legend.iter().enumerate() {
            let x = LEFT + (i % per_row) as f64 * item_width;
            let y = legend_top + (i / per_row) as f64 * LEGEND_ROW;
            let dash = if *dashed { " stroke-dasharray=\"6 4\"" } else { "" };
            let _ = writeln!(
                s,
                "<line x1=\"{}\" y1=\"{py}\" x2=\"{}\" y2=\"{py}\" stroke=\"{color}\" stroke-width=\"2\"{dash}/>\
                 <text x=\"{}\" y=\"{py}\" dominant-baseline=\"middle\" fill=\"#222\">{}</text>",
                coord(x),
                coord(x + 28.0),
                coord(x + 34.0),
                escape(label),
                py = coord(y),
            );
        }
        s.push_str("</g>\n</svg>\n");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(format_duration(0.0), "0s");
        assert_eq!(format_duration(42.4), "42s");
        assert_eq!(format_duration(252.0), "4m12s");
        assert_eq!(format_duration(3600.0 * 2.0 + 300.0), "2h05m");
        assert_eq!(format_duration(86_400.0 * 3.0 + 3600.0 * 4.0), "3d04h");
        assert_eq!(format_duration(f64::NAN), "-");
    }

    #[test]
    fn steps() {
        assert_eq!(nice_step(0.3), 0.5);
        assert_eq!(nice_step(17.0), 20.0);
        assert_eq!(nice_step(f64::NAN), 1.0);
        assert_eq!(hour_step(168.0, 12.0), 24.0);
        assert_eq!(hour_step(1.0, 12.0), 1.0);
        assert_eq!(tick_label(0.30000000000000004, 0.1), "0.3");
        assert_eq!(ticks(0.0, 1.0, 0.2).len(), 6);
    }
}
