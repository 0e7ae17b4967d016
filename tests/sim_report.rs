//! The simulator's report: kpis.json, timeline.csv, the terminal table and the HTML page,
//! including a headless Chromium load of the page.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use purser::sim::report::{TIMELINE_CSV_HEADER, html, kpi_table, kpis_json, timeline_csv, write_report};
use purser::sim::result::{HourRow, Kpis, PolicyResult, SimResult};

const POLICIES: [&str; 3] = ["purser", "karpenter", "cluster-autoscaler"];
const CHART_IDS: [&str; 5] = [
    "chart-spend",
    "chart-nodes",
    "chart-gpu",
    "chart-pending",
    "chart-latency",
];

fn kpis(i: usize) -> Kpis {
    let f = i as f64;
    Kpis {
        total_spend: 1000.0 + 250.0 * f,
        spend_by_capacity_type: BTreeMap::from([
            ("on-demand".into(), 600.0 + 200.0 * f),
            ("spot".into(), 400.0 + 50.0 * f),
        ]),
        spend_by_team: BTreeMap::from([
            ("ml-research".into(), 500.0),
            ("search".into(), 300.0 + 100.0 * f),
            ("idle".into(), 200.0 + 150.0 * f),
        ]),
        gpu_allocation: 0.9 - 0.2 * f,
        gpu_utilisation: 0.4 - 0.1 * f,
        cpu_allocation: 0.7 - 0.1 * f,
        memory_allocation: 0.6 - 0.1 * f,
        training_queue_p50_seconds: 60.0 + 30.0 * f,
        training_queue_p95_seconds: 252.0 + 600.0 * f,
        training_jobs_finished: 40 - 5 * i as u64,
        cost_per_1k_inferences: 0.0123 + 0.002 * f,
        slo_violation_minutes: 3.0 * f,
        node_hours_reclaimed: 120.0 - 40.0 * f,
        interruptions: 4,
        gpu_hours_lost: 1.5,
        budget_breaches: i as u64,
        decisions: 2880,
        mean_decision_seconds: 0.004,
        max_decision_seconds: 0.12,
        launches: 100 + 10 * i as u64,
        launch_failures: i as u64,
    }
}

fn timeline(i: usize, hours: u32) -> Vec<HourRow> {
    (0..hours)
        .map(|h| {
            let t = f64::from(h);
            HourRow {
                hour: h,
                spend: 20.0 + 5.0 * (t / 4.0).sin() + 3.0 * i as f64,
                on_demand_nodes: 4 + (h % 6) + i as u32,
                spot_nodes: 8 + (h % 4) * 2,
                gpu_allocation: (0.6 + 0.3 * (t / 7.0).cos() - 0.1 * i as f64).clamp(0.0, 1.0),
                pending_pods: (h * 7 + i as u32 * 3) % 11,
                latency_vs_slo: 0.7 + 0.5 * (t / 5.0).sin().abs() + 0.05 * i as f64,
            }
        })
        .collect()
}

fn result_with(scenario: &str, hours: u32) -> SimResult {
    SimResult {
        scenario: scenario.into(),
        seed: 1,
        simulated_hours: f64::from(hours),
        policies: POLICIES
            .iter()
            .enumerate()
            .map(|(i, name)| PolicyResult {
                name: (*name).into(),
                kpis: kpis(i),
                timeline: timeline(i, hours),
            })
            .collect(),
    }
}

fn synthetic() -> SimResult {
    result_with("gpu-week", 48)
}

fn temp_dir(tag: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("purser-sim-report-{tag}-{}-{nanos}-{n}", std::process::id()))
}

/// Whether `text` has a word `inf` or `infinity` (any case), as Rust or JS print non-finite
/// numbers; `inference` is fine.
fn has_non_finite_word(text: &str) -> bool {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .any(|word| word.eq_ignore_ascii_case("inf") || word.eq_ignore_ascii_case("infinity") || word == "NaN")
}

/// Asserts the page has no non-finite numbers and every chart.
fn assert_sane_html(page: &str) {
    assert!(!page.contains("NaN"), "HTML contains NaN");
    assert!(!has_non_finite_word(page), "HTML contains inf or Infinity");
    for id in CHART_IDS {
        assert!(page.contains(&format!("<svg id=\"{id}\"")), "HTML lacks <svg id={id}>");
    }
    assert_eq!(page.matches("<svg ").count(), 5);
    assert_eq!(page.matches("</svg>").count(), 5);
    assert!(!page.contains("<script"), "the report must not have scripts");
    assert!(
        !page.contains("http://")
            || page.matches("http://").count() == page.matches("http://www.w3.org/2000/svg").count()
    );
    assert!(
        !page.contains("https://"),
        "the report must not load anything from outside"
    );
}

#[test]
fn kpis_json_has_the_documented_shape() {
    let result = synthetic();
    let json = kpis_json(&result);
    let root = json.as_object().expect("object");
    let keys: Vec<&str> = root.keys().map(String::as_str).collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, ["policies", "scenario", "seed", "simulatedHours"]);
    assert_eq!(json["scenario"], "gpu-week");
    assert_eq!(json["seed"], 1);
    assert_eq!(json["simulatedHours"], 48);
    assert!(json["simulatedHours"].is_u64());

    let policies = json["policies"].as_object().expect("policies object");
    let mut names: Vec<&str> = policies.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(names, ["cluster-autoscaler", "karpenter", "purser"]);
    for (i, name) in POLICIES.iter().enumerate() {
        let entry = &policies[*name];
        for key in [
            "totalSpend",
            "spendByCapacityType",
            "spendByTeam",
            "gpuAllocation",
            "gpuUtilisation",
            "cpuAllocation",
            "memoryAllocation",
            "trainingQueueP50Seconds",
            "trainingQueueP95Seconds",
            "trainingJobsFinished",
            "costPer1kInferences",
            "sloViolationMinutes",
            "nodeHoursReclaimed",
            "interruptions",
            "gpuHoursLost",
            "budgetBreaches",
            "decisions",
            "meanDecisionSeconds",
            "maxDecisionSeconds",
            "launches",
            "launchFailures",
        ] {
            assert!(entry.get(key).is_some(), "{name} lacks {key}");
        }
        // Each value is exactly the serialized Kpis.
        assert_eq!(*entry, serde_json::to_value(kpis(i)).unwrap());
        let back: Kpis = serde_json::from_value(entry.clone()).unwrap();
        assert_eq!(back, kpis(i));
    }
    assert_eq!(json["policies"]["karpenter"]["totalSpend"], 1250.0);

    let fractional = SimResult {
        simulated_hours: 1.5,
        ..SimResult::default()
    };
    assert_eq!(kpis_json(&fractional)["simulatedHours"], 1.5);
    assert!(kpis_json(&fractional)["policies"].as_object().unwrap().is_empty());
}

#[test]
fn timeline_csv_has_one_row_per_policy_per_hour() {
    let result = synthetic();
    let csv = timeline_csv(&result);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "policy,hour,spend,on_demand_nodes,spot_nodes,gpu_allocation,pending_pods,latency_vs_slo"
    );
    assert_eq!(lines[0], TIMELINE_CSV_HEADER);
    assert_eq!(lines.len(), 1 + 3 * 48);
    assert!(csv.ends_with('\n'));
    for line in &lines[1..] {
        assert_eq!(line.split(',').count(), 8, "{line}");
    }
    assert!(lines[1].starts_with("purser,0,"));
    assert!(lines[48].starts_with("purser,47,"));
    assert!(lines[49].starts_with("karpenter,0,"));
    assert!(lines[144].starts_with("cluster-autoscaler,47,"));
    let row = &result.policies[1].timeline[5];
    let fields: Vec<&str> = lines[49 + 5].split(',').collect();
    assert_eq!(fields[2].parse::<f64>().unwrap(), row.spend);
    assert_eq!(fields[3].parse::<u32>().unwrap(), row.on_demand_nodes);
    assert_eq!(fields[4].parse::<u32>().unwrap(), row.spot_nodes);
    assert_eq!(fields[5].parse::<f64>().unwrap(), row.gpu_allocation);
    assert_eq!(fields[6].parse::<u32>().unwrap(), row.pending_pods);
    assert_eq!(fields[7].parse::<f64>().unwrap(), row.latency_vs_slo);

    assert_eq!(timeline_csv(&SimResult::default()).lines().count(), 1);
}

#[test]
fn kpi_table_has_every_kpi_a_column_per_policy_and_savings() {
    let table = kpi_table(&synthetic());
    let header = table.lines().next().unwrap();
    for name in POLICIES {
        assert!(header.contains(name), "{header}");
    }
    for label in [
        "Total spend",
        "Spend on-demand",
        "Spend spot",
        "GPU allocation",
        "CPU allocation",
        "Memory allocation",
        "Training queue p50",
        "Training queue p95",
        "Training jobs finished",
        "Cost per 1k inferences",
        "SLO violation minutes",
        "Node-hours reclaimed",
        "Spot interruptions",
        "GPU-hours lost",
        "Budget breach",
        "Mean decision (ms)",
        "Max decision (ms)",
        "Launches",
        "Launch failures",
    ] {
        assert!(table.lines().any(|l| l.starts_with(label)), "no row {label}:\n{table}");
    }
    assert!(table.contains("4m12s"), "{table}");
    assert!(table.contains("90.0%"), "{table}");
    assert!(
        table.contains("purser saves 20.0% vs karpenter (1000.00 vs 1250.00 USD)"),
        "{table}"
    );
    assert!(
        table.contains("purser saves 33.3% vs cluster-autoscaler (1000.00 vs 1500.00 USD)"),
        "{table}"
    );
    assert!(table.contains("Spend per team"), "{table}");
    let team_lines: Vec<&str> = table.lines().skip_while(|l| !l.starts_with("Spend per team")).collect();
    assert!(team_lines.iter().any(|l| l.starts_with("ml-research")));
    assert_eq!(
        team_lines.last().map(|l| l.starts_with("idle")),
        Some(true),
        "idle is last:\n{table}"
    );

    // Without purser there are no savings lines.
    let mut others = synthetic();
    others.policies.remove(0);
    assert!(!kpi_table(&others).contains("saves"));
    // Purser spending more is said so.
    let mut dearer = synthetic();
    dearer.policies[0].kpis.total_spend = 2000.0;
    assert!(kpi_table(&dearer).contains("purser spends 60.0% more than karpenter (2000.00 vs 1250.00 USD)"));
}

#[test]
fn html_is_self_contained_with_five_charts() {
    let result = synthetic();
    let page = html(&result);
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains("<title>purser simulate: gpu-week (seed 1)</title>"));
    assert!(page.contains("<table id=\"kpi-table\">"));
    assert!(page.contains("<table id=\"team-table\">"));
    assert!(page.contains("purser saves 20.0% vs karpenter"));
    assert_sane_html(&page);
    // Every policy in every chart's legend, the SLO line in the latency chart.
    for name in POLICIES {
        assert!(
            page.matches(&format!(">{name}</text>")).count() >= 4,
            "{name} missing from legends"
        );
    }
    let latency = &page[page.find("<svg id=\"chart-latency\"").unwrap()..];
    assert!(latency[..latency.find("</svg>").unwrap()].contains("SLO (1.0)"));
    // Each chart has a title, axis labels and ticks.
    for id in CHART_IDS {
        let start = page.find(&format!("<svg id=\"{id}\"")).unwrap();
        let svg = &page[start..start + page[start..].find("</svg>").unwrap()];
        assert!(svg.contains("class=\"chart-title\""), "{id}");
        assert!(svg.contains(">hour</text>"), "{id}");
        assert!(svg.matches("text-anchor=\"end\"").count() >= 2, "{id}: y ticks");
        assert!(
            svg.matches("text-anchor=\"middle\" fill=\"#444\"").count() >= 2,
            "{id}: x ticks"
        );
        assert!(svg.contains("<path d=\"M"), "{id}: lines");
    }
}

#[test]
fn html_escapes_the_scenario_and_policy_names() {
    let mut result = result_with("a <b> & \"c\" 'd'", 3);
    result.policies[1].name = "karp<enter>&".into();
    let page = html(&result);
    assert!(page.contains("a &lt;b&gt; &amp; &quot;c&quot; &#39;d&#39;"));
    assert!(!page.contains("<b>"));
    assert!(page.contains("karp&lt;enter&gt;&amp;"));
    assert!(!page.contains("karp<enter>"));
    assert_sane_html(&page);
}

#[test]
fn html_handles_empty_and_single_hour_timelines() {
    for hours in [0, 1, 2] {
        let result = result_with("tiny", hours);
        let page = html(&result);
        assert_sane_html(&page);
        if hours == 0 {
            assert_eq!(page.matches(">no data</text>").count(), 5);
        }
        if hours == 1 {
            assert!(page.contains("<circle"), "a single hour is drawn as dots");
        }
        assert_eq!(timeline_csv(&result).lines().count(), 1 + 3 * hours as usize);
    }
    // No policies at all, and non-finite values.
    assert_sane_html(&html(&SimResult::default()));
    let mut weird = result_with("weird", 5);
    weird.simulated_hours = f64::NAN;
    weird.policies[0].timeline[2].spend = f64::NAN;
    weird.policies[1].timeline[3].latency_vs_slo = f64::INFINITY;
    weird.policies[2].timeline[0].gpu_allocation = f64::NEG_INFINITY;
    weird.policies[0].kpis.total_spend = f64::INFINITY;
    weird.policies[0].kpis.gpu_allocation = f64::NAN;
    assert_sane_html(&html(&weird));
    assert!(!has_non_finite_word(&timeline_csv(&weird)));
    assert!(!has_non_finite_word(&kpi_table(&weird)));
    assert!(kpis_json(&weird)["simulatedHours"].is_null());
}

#[test]
fn write_report_writes_three_files() {
    let dir = temp_dir("write").join("nested");
    let result = synthetic();
    write_report(&dir, &result).unwrap();
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, ["kpis.json", "report.html", "timeline.csv"]);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("kpis.json")).unwrap()).unwrap();
    assert_eq!(json, kpis_json(&result));
    assert!(
        std::fs::read_to_string(dir.join("kpis.json"))
            .unwrap()
            .contains("\n  \"policies\""),
        "pretty JSON"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("timeline.csv")).unwrap(),
        timeline_csv(&result)
    );
    assert_eq!(std::fs::read_to_string(dir.join("report.html")).unwrap(), html(&result));
    // Writing again over the same directory works.
    write_report(&dir, &result).unwrap();
    std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
}

fn find_chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .collect();
    ["chromium", "chromium-browser"]
        .iter()
        .flat_map(|name| dirs.iter().map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// Runs headless Chromium on `page` and returns the DOM it dumps; fails after 60 s.
fn dump_dom(chromium: &Path, page: &Path, work: &Path) -> String {
    let out_path = work.join("dom.html");
    let err_path = work.join("chromium.stderr");
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", work.join("profile").display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("could not start {}: {e}", chromium.display()));
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{} --dump-dom did not finish in 60 s; stderr:\n{}",
                chromium.display(),
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let dom = std::fs::read_to_string(&out_path).unwrap_or_default();
    assert!(
        status.success() && !dom.is_empty(),
        "{} --dump-dom failed ({status}); stderr:\n{}",
        chromium.display(),
        std::fs::read_to_string(&err_path).unwrap_or_default()
    );
    dom
}

#[test]
fn headless_chromium_renders_the_report() {
    let Some(chromium) = find_chromium() else {
        panic!(
            "no chromium binary (tried `chromium` and `chromium-browser` on PATH): install the Debian package \
             `chromium` (`apt-get install -y chromium`; .ci/run installs it)"
        );
    };
    let dir = temp_dir("chromium");
    write_report(&dir, &synthetic()).unwrap();
    let page = dir.join("report.html").canonicalize().unwrap();
    let dom = dump_dom(&chromium, &page, &dir);
    for id in CHART_IDS {
        assert!(dom.contains(&format!("id=\"{id}\"")), "dumped DOM lacks svg #{id}");
    }
    assert_eq!(dom.matches("<svg ").count(), 5, "five svg elements in the DOM");
    assert!(dom.contains("id=\"kpi-table\""), "dumped DOM lacks the KPI table");
    assert!(dom.contains("Total spend (USD)"), "dumped DOM lacks the KPI rows");
    assert!(dom.contains("purser saves 20.0% vs karpenter"));
    assert!(dom.contains("purser simulate: gpu-week (seed 1)"));
    let _ = std::fs::remove_dir_all(&dir);
}
