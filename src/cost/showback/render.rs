//! A scorecard as text: an aligned table, CSV (the group rows and the total) or Markdown.
//!
//! Pure. In: a [`Scorecard`]. Out: a `String`.

use std::fmt::Write;

use super::{Change, GroupRow, Scorecard};

/// The CSV header of the group rows.
pub const CSV_HEADER: &str =
    "group,spend_usd,idle_usd,waste_pct,gpu_allocation_pct,spot_share_pct,previous_spend_usd,change_usd";

/// The scorecard as an aligned text table, then the changes and the budgets.
pub fn table(card: &Scorecard) -> String {
    let mut cells = vec![header(card)];
    cells.extend(card.rows.iter().chain([&card.total]).map(|r| cells_of(r, card)));
    let mut out = format!("{}\n\n", title(card));
    out.push_str(&aligned(&cells));
    out.push_str(&format!(
        "\nnodes cost {:.4} USD in the window; the rows add up to {:.4} USD\n",
        card.node_cost, card.total.spend
    ));
    if !card.changes.is_empty() {
        out.push_str(&format!(
            "\nTop changes against the previous window ({}):\n",
            card.window.previous().start.to_rfc3339()
        ));
        out.push_str(&aligned(&changes_cells(card)));
    }
    if !card.budgets.is_empty() {
        out.push_str("\nBudgets (current period):\n");
        out.push_str(&aligned(&budget_cells(card)));
    }
    out
}

/// The group rows and the total as CSV (header [`CSV_HEADER`]).
pub fn csv(card: &Scorecard) -> String {
    let mut out = format!("{CSV_HEADER}\n");
    for row in card.rows.iter().chain([&card.total]) {
        let (previous, change) = previous_of(card, row);
        let _ = writeln!(
            out,
            "{},{:.6},{:.6},{:.2},{},{:.2},{},{}",
            csv_field(&row.group),
            row.spend,
            row.idle,
            row.waste_pct(),
            row.gpu_allocation_pct().map(|p| format!("{p:.2}")).unwrap_or_default(),
            row.spot_share_pct(),
            previous.map(|p| format!("{p:.6}")).unwrap_or_default(),
            change.map(|c| format!("{c:.6}")).unwrap_or_default(),
        );
    }
    out
}

/// The scorecard as Markdown tables.
pub fn markdown(card: &Scorecard) -> String {
    let mut out = format!("## {}\n\n", title(card));
    let mut rows = vec![header(card)];
    rows.extend(card.rows.iter().chain([&card.total]).map(|r| cells_of(r, card)));
    out.push_str(&markdown_table(&rows));
    if !card.changes.is_empty() {
        out.push_str("\n### Top changes against the previous window\n\n");
        out.push_str(&markdown_table(&changes_cells(card)));
    }
    if !card.budgets.is_empty() {
        out.push_str("\n### Budgets (current period)\n\n");
        out.push_str(&markdown_table(&budget_cells(card)));
    }
    out
}

/// The top changes as cells, header first.
fn changes_cells(card: &Scorecard) -> Vec<Vec<String>> {
    let mut cells = vec![vec![
        card.by.as_str().to_string(),
        "previous".into(),
        "now".into(),
        "change".into(),
    ]];
    cells.extend(card.changes.iter().map(change_cells));
    cells
}

/// A CSV field, quoted when it holds a comma, a quote or a line break.
pub fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

fn title(card: &Scorecard) -> String {
    format!(
        "Showback by {} from {} to {}",
        card.by.as_str(),
        card.window.start.to_rfc3339(),
        card.window.end.to_rfc3339()
    )
}

fn header(card: &Scorecard) -> Vec<String> {
    [
        card.by.as_str(),
        "spend USD",
        "idle USD",
        "waste %",
        "GPU alloc %",
        "spot %",
        "change USD",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn cells_of(row: &GroupRow, card: &Scorecard) -> Vec<String> {
    let (_, change) = previous_of(card, row);
    vec![
        row.group.clone(),
        format!("{:.4}", row.spend),
        format!("{:.4}", row.idle),
        format!("{:.1}", row.waste_pct()),
        row.gpu_allocation_pct().map_or("-".into(), |p| format!("{p:.1}")),
        format!("{:.1}", row.spot_share_pct()),
        change.map_or("-".into(), |c| format!("{c:+.4}")),
    ]
}

/// The previous window's spend and the change, for the groups among the top changes.
fn previous_of(card: &Scorecard, row: &GroupRow) -> (Option<f64>, Option<f64>) {
    card.changes
        .iter()
        .find(|c| c.group == row.group)
        .map_or((None, None), |c| (Some(c.previous), Some(c.delta())))
}

fn change_cells(c: &Change) -> Vec<String> {
    vec![
        c.group.clone(),
        format!("{:.4}", c.previous),
        format!("{:.4}", c.current),
        format!("{:+.4}", c.delta()),
    ]
}

fn budget_cells(card: &Scorecard) -> Vec<Vec<String>> {
    let mut rows = vec![
        [
            "budget",
            "status",
            "spend USD",
            "period cap USD",
            "forecast USD",
            "USD/h",
            "cap USD/h",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
    ];
    rows.extend(card.budgets.iter().map(|b| {
        vec![
            b.name.clone(),
            b.standing().to_string(),
            format!("{:.2}", b.spend),
            b.period_cap.map_or("-".into(), |c| format!("{c:.2}")),
            format!("{:.2}", b.forecast),
            format!("{:.2}", b.run_rate),
            format!("{:.2}", b.hourly_cap),
        ]
    }));
    rows
}

/// Rows padded to column width, the first column left-aligned and the rest right-aligned.
fn aligned(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, cell)| {
                if c == 0 {
                    format!("{cell:<w$}", w = widths[c])
                } else {
                    format!("{cell:>w$}", w = widths[c])
                }
            })
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn markdown_table(rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        let cells: Vec<String> = row.iter().map(|c| c.replace('|', "\\|")).collect();
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
        if i == 0 {
            let rule: Vec<&str> = (0..row.len()).map(|c| if c == 0 { "---" } else { "---:" }).collect();
            out.push_str(&format!("|{}|\n", rule.join("|")));
        }
    }
    out
}
