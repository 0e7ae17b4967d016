//! The benchmark report: one table of the measured figures, a table of details, and the
//! targets of the planner next to what was measured.

use std::fmt::Write;

use super::{CaseResult, Outcome};

/// Target: 10k pods planned in under this many seconds.
pub const TARGET_SECONDS_10K: f64 = 1.0;
/// Karpenter's own scheduling benchmark time for 10k pods, seconds (as quoted in the issue).
pub const KARPENTER_SECONDS_10K: f64 = 12.0;
/// Target: peak memory under this many MiB.
pub const TARGET_MIB: f64 = 300.0;
/// Target: ILP cost within this many percent of the lower bound.
pub const TARGET_GAP_PERCENT: f64 = 2.0;
/// Target: ILP at least this many percent cheaper than FFD on the AI/ML cluster.
pub const TARGET_SAVING_PERCENT: f64 = 8.0;

/// The machine the benchmark ran on, for the report header.
#[derive(Debug, Clone)]
pub struct Machine {
    /// Logical cores available to the process.
    pub cores: usize,
    /// CPU model, when known.
    pub cpu: Option<String>,
}

impl Machine {
    /// Describe this machine.
    pub fn current() -> Self {
        let cpu = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("model name")?
                    .split_once(':')
                    .map(|(_, v)| v.trim().to_string())
            })
        });
        Machine {
            cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            cpu,
        }
    }
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "n/a".into(), |v| format!("{v:.digits$}"))
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

/// The main table (Markdown), one row per case.
pub fn main_table(outcomes: &[Outcome]) -> String {
    let mut s = String::new();
    s.push_str(
        "| case | pods | classes | FFD $/h | ILP $/h | lower bound $/h | ILP gap to bound % | ILP saving vs FFD % | FFD s | ILP s | ILP status | peak MiB | violations FFD / ILP |\n",
    );
    s.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|\n");
    for o in outcomes {
        match o {
            Ok(r) => {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {:.2} | {:.2} | {:.2} | {} | {} | {:.3} | {:.3} | {} | {:.0} | {} / {} |",
                    r.case,
                    r.pods,
                    r.classes,
                    r.ffd.cost,
                    r.ilp.cost,
                    r.ilp.lower_bound,
                    opt(r.gap_percent(), 2),
                    opt(r.saving_percent(), 2),
                    r.ffd.seconds,
                    r.ilp.seconds,
                    r.ilp.status,
                    r.ilp.peak_mib,
                    r.ffd.violations,
                    r.ilp.violations,
                );
            }
            Err(e) => {
                let _ = writeln!(s, "| {} | failed: {} |||||||||||| |", e.case, e.message);
            }
        }
    }
    s
}

/// The details table: nodes, unplaced pods, memory by phase, and phase timings.
pub fn details_table(outcomes: &[Outcome]) -> String {
    let mut s = String::new();
    s.push_str(
        "| case | kinds | nodes FFD / ILP | unplaced FFD / ILP | FFD bound $/h | MiB inputs / FFD call / ILP call / process | build s | FFD s | ILP solve s | materialize+bound s |\n",
    );
    s.push_str("|---|---:|---|---|---:|---|---:|---:|---:|---:|\n");
    for r in outcomes.iter().flatten() {
        let (build, ffd, ilp, finish) = match &r.phases {
            Some(p) => (
                format!("{:.3}", p.build),
                format!("{:.3}", p.ffd),
                format!("{:.3}", p.ilp),
                format!("{:.3}", p.finish),
            ),
            None => ("-".into(), "-".into(), "-".into(), "-".into()),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} / {} | {} / {} | {:.2} | {:.0} / {:.0} / {:.0} / {:.0} | {build} | {ffd} | {ilp} | {finish} |",
            r.case,
            r.kinds,
            r.ffd.nodes,
            r.ilp.nodes,
            r.ffd.unplaced,
            r.ilp.unplaced,
            r.ffd.lower_bound,
            r.inputs_mib,
            r.ffd.peak_mib,
            r.ilp.peak_mib,
            r.process_mib,
        );
    }
    s
}

fn find<'a>(outcomes: &'a [Outcome], case: &str) -> Option<&'a CaseResult> {
    outcomes.iter().flatten().find(|r| r.case == case)
}

/// The targets next to the measured figures.
pub fn targets(outcomes: &[Outcome]) -> String {
    let mut s = String::new();
    let results: Vec<&CaseResult> = outcomes.iter().flatten().collect();
    match find(outcomes, "karpenter-10000") {
        Some(r) => {
            let _ = writeln!(
                s,
                "- 10k pods planned in under {TARGET_SECONDS_10K:.0} s (Karpenter's own benchmark: about {KARPENTER_SECONDS_10K:.0} s): \
                 ILP {:.3} s, FFD {:.3} s -> {}",
                r.ilp.seconds,
                r.ffd.seconds,
                met(r.ilp.seconds < TARGET_SECONDS_10K)
            );
        }
        None => {
            let _ = writeln!(
                s,
                "- 10k pods planned in under {TARGET_SECONDS_10K:.0} s: not run (add 10000 to --pods)"
            );
        }
    }
    if let Some(worst) = results.iter().max_by(|a, b| a.ilp.peak_mib.total_cmp(&b.ilp.peak_mib)) {
        let process = results.iter().map(|r| r.process_mib).fold(0.0, f64::max);
        let _ = writeln!(
            s,
            "- memory under {TARGET_MIB:.0} MiB: highest peak during an ILP plan call {:.0} MiB ({}); highest whole-process peak {:.0} MiB -> {}",
            worst.ilp.peak_mib,
            worst.case,
            process,
            met(worst.ilp.peak_mib < TARGET_MIB)
        );
    }
    if !results.is_empty() {
        let within: Vec<String> = results
            .iter()
            .map(|r| {
                let gap = r.gap_percent();
                let ok = gap.is_some_and(|g| g <= TARGET_GAP_PERCENT);
                format!("{} {}% ({})", r.case, opt(gap, 2), if ok { "met" } else { "not met" })
            })
            .collect();
        let all = results
            .iter()
            .all(|r| r.gap_percent().is_some_and(|g| g <= TARGET_GAP_PERCENT));
        let _ = writeln!(
            s,
            "- ILP cost within {TARGET_GAP_PERCENT:.0}% of the lower bound: {} -> {}",
            within.join(", "),
            met(all)
        );
    }
    match find(outcomes, "ai-ml-mixed") {
        Some(r) => {
            let _ = writeln!(
                s,
                "- ILP at least {TARGET_SAVING_PERCENT:.0}% cheaper than FFD on the AI/ML cluster: {}% -> {}",
                opt(r.saving_percent(), 2),
                met(r.saving_percent().is_some_and(|v| v >= TARGET_SAVING_PERCENT))
            );
        }
        None => {
            let _ = writeln!(
                s,
                "- ILP at least {TARGET_SAVING_PERCENT:.0}% cheaper than FFD on the AI/ML cluster: not run"
            );
        }
    }
    s
}

/// Violation messages the validator reported, a few per plan.
pub fn violation_samples(outcomes: &[Outcome]) -> String {
    let mut s = String::new();
    for r in outcomes.iter().flatten() {
        for (name, run) in [("FFD", &r.ffd), ("ILP", &r.ilp)] {
            if run.violations == 0 {
                continue;
            }
            let _ = writeln!(s, "- {} {}: {} violation(s), e.g.", r.case, name, run.violations);
            for v in &run.violation_samples {
                let _ = writeln!(s, "  - {v}");
            }
        }
    }
    s
}

/// The whole report.
pub fn render(outcomes: &[Outcome], machine: &Machine) -> String {
    let mut s = String::new();
    let first = outcomes.iter().flatten().next();
    let isolated = first.is_some_and(|r| r.isolated);
    let per_phase = first.is_some_and(|r| r.per_phase_memory);
    let _ = writeln!(
        s,
        "Machine: {} cores{}. ILP time limit {}. Each case ran {}.",
        machine.cores,
        machine.cpu.as_deref().map(|c| format!(" ({c})")).unwrap_or_default(),
        first.map_or_else(|| "n/a".into(), |r| format!("{} s", r.time_limit)),
        if isolated {
            "in its own child process"
        } else {
            "in this process, one after the other"
        }
    );
    s.push('\n');
    s.push_str(&main_table(outcomes));
    s.push('\n');
    let _ = writeln!(
        s,
        "Costs are list prices of the new nodes, USD/hour. Gap = (ILP - bound) / bound; saving = (FFD - ILP) / FFD. \
         Seconds are the wall clock of one `plan` call; both strategies build the problem and run FFD, so ILP s includes FFD s. \
         peak MiB = {}, input data included.",
        match (isolated, per_phase) {
            (true, true) => "peak resident memory of the case's process during the ILP `plan` call",
            (true, false) => "peak resident memory of the case's process up to the end of the ILP `plan` call",
            (false, true) =>
                "peak resident memory of this process during the ILP `plan` call (earlier cases' freed memory may still be resident)",
            (false, false) => "peak resident memory of this whole process so far (all earlier cases included)",
        }
    );
    s.push('\n');
    s.push_str("Details:\n\n");
    s.push_str(&details_table(outcomes));
    s.push('\n');
    s.push_str("Phase columns come from a separate run that calls `Problem::build`, `ffd::solve`, `ilp::solve`, `plan::materialize` and `bound::lower_bound` one by one.\n\n");
    let violations = violation_samples(outcomes);
    if !violations.is_empty() {
        s.push_str("Validator findings:\n\n");
        s.push_str(&violations);
        s.push('\n');
    }
    s.push_str("Targets:\n\n");
    s.push_str(&targets(outcomes));
    s
}
