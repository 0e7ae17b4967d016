//! `purser plan --disrupt` end to end: the built binary on examples/disruption.yaml (every
//! voluntary reason at once, two protected nodes), interruption notices from the command line,
//! determinism, and bad input (exit code 2 with a message naming the flag, node or field).

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

/// The example's clock: 2026-11-25T12:00:00Z.
const NOW: &str = "2026-11-25T12:00:00Z";

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/disruption.yaml")
}

fn purser(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_purser"))
        .args(args)
        .output()
        .expect("the purser binary runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `purser plan -f examples/disruption.yaml --disrupt --now NOW` plus `extra`, as JSON.
fn decide(extra: &[&str]) -> Value {
    let file = example();
    let mut args = vec![
        "plan",
        "-f",
        file.to_str().unwrap(),
        "--disrupt",
        "--now",
        NOW,
        "-o",
        "json",
    ];
    args.extend_from_slice(extra);
    let out = purser(&args);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", stdout(&out)))
}

fn approx(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

fn num(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number in {v:#}"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v:#}"))
        .iter()
        .map(|s| s.as_str().expect("a string").to_string())
        .collect()
}

fn commands(d: &Value) -> &Vec<Value> {
    d["commands"].as_array().expect("commands is an array")
}

/// The one command with `reason`.
fn command<'a>(d: &'a Value, reason: &str) -> &'a Value {
    let found: Vec<&Value> = commands(d).iter().filter(|c| c["reason"] == reason).collect();
    assert_eq!(found.len(), 1, "one {reason} command expected in {d:#}");
    found[0]
}

/// Pods of all the command's new node claims.
fn claimed_pods(c: &Value) -> Vec<String> {
    let mut pods: Vec<String> = c["nodeClaims"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|n| strings(&n["pods"]))
        .collect();
    pods.sort();
    pods
}

#[test]
fn example_shows_every_reason_in_order() {
    let d = decide(&[]);
    let reasons: Vec<&str> = commands(&d).iter().map(|c| c["reason"].as_str().unwrap()).collect();
    assert_eq!(reasons, ["Expired", "Empty", "GpuIdle", "Underutilized"], "{d:#}");

    // No node is decided twice, and the protected nodes are in no command.
    let mut seen: Vec<String> = commands(&d).iter().flat_map(|c| strings(&c["nodes"])).collect();
    let total = seen.len();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), total, "a node is in two commands: {d:#}");
    assert!(!seen.contains(&"report-1".to_string()) && !seen.contains(&"ledger-1".to_string()));

    for c in commands(&d) {
        assert!(
            approx(num(c, "savingPerHour"), num(c, "costBefore") - num(c, "costAfter")),
            "{c:#}"
        );
        assert!(
            c.get("stranded").is_none(),
            "voluntary disruption strands no pod: {c:#}"
        );
        let replace = c["action"] == "Replace";
        assert_eq!(c["launchBeforeDrain"], replace, "{c:#}");
        assert_eq!(!c["nodeClaims"].as_array().unwrap().is_empty(), replace, "{c:#}");
    }
}

#[test]
fn expired_batch_node_is_replaced_in_its_own_pool() {
    let d = decide(&[]);
    let c = command(&d, "Expired");
    assert_eq!(c["action"], "Replace");
    assert_eq!(strings(&c["nodes"]), ["batch-1"]);
    assert!(c["detail"].as_str().unwrap().contains("expireAfter 604800s"), "{c:#}");
    let claims = c["nodeClaims"].as_array().unwrap();
    assert_eq!(claims.len(), 1, "{c:#}");
    assert_eq!(claims[0]["nodePool"], "batch");
    assert_eq!(claimed_pods(c), ["batch/etl-worker-0"]);
    assert!(approx(num(c, "costBefore"), 0.192));
}

#[test]
fn empty_node_is_deleted_despite_its_daemonset_pod() {
    let d = decide(&[]);
    let c = command(&d, "Empty");
    assert_eq!(c["action"], "Delete");
    assert_eq!(strings(&c["nodes"]), ["idle"]);
    assert!(c["moves"].as_array().unwrap().is_empty(), "{c:#}");
    assert!(approx(num(c, "savingPerHour"), 0.192), "{c:#}");
}

#[test]
fn gpu_node_holding_a_cpu_pod_moves_it_to_the_cpu_pool() {
    let d = decide(&[]);
    let c = command(&d, "GpuIdle");
    assert_eq!(c["action"], "Replace");
    assert_eq!(strings(&c["nodes"]), ["gpu-1"]);
    assert!(
        c["nodeClaims"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["nodePool"] == "general"),
        "{c:#}"
    );
    assert_eq!(claimed_pods(c), ["ml/preprocess-5c8f9-q2m4x"]);
    assert!(approx(num(c, "costBefore"), 1.006), "{c:#}");
    // The cheapest m5 that holds 3 CPU is an m5.xlarge at 0.192 USD/h.
    assert!(approx(num(c, "costAfter"), 0.192), "{c:#}");
    assert!(approx(num(c, "savingPerHour"), 0.814), "{c:#}");
}

#[test]
fn four_sparse_nodes_become_one_node_per_zone() {
    let d = decide(&[]);
    let c = command(&d, "Underutilized");
    assert_eq!(c["action"], "Replace");
    assert_eq!(strings(&c["nodes"]), ["web-1a-1", "web-1a-2", "web-1b-1", "web-1b-2"]);
    assert!(c["moves"].as_array().unwrap().is_empty(), "{c:#}");
    assert_eq!(
        claimed_pods(c),
        ["prod/web-a1", "prod/web-a2", "prod/web-b1", "prod/web-b2"]
    );
    // The pods are pinned to their zones: one replacement cannot hold them all (m→n). The
    // instance types are left open (an m5.xlarge and two m5.large cost the same).
    let claims = c["nodeClaims"].as_array().unwrap();
    assert!(claims.len() >= 2, "{c:#}");
    for n in claims {
        assert_eq!(n["nodePool"], "general");
        let zone = n["zone"].as_str().unwrap();
        for pod in strings(&n["pods"]) {
            let want = if pod.starts_with("prod/web-a") {
                "us-east-1a"
            } else {
                "us-east-1b"
            };
            assert_eq!(zone, want, "{pod} placed out of its zone: {c:#}");
        }
    }
    assert!(approx(num(c, "costBefore"), 0.768), "{c:#}");
    assert!(approx(num(c, "costAfter"), 0.384), "{c:#}");
    assert!(approx(num(c, "savingPerHour"), 0.384), "{c:#}");
}

#[test]
fn protected_nodes_are_reported_blocked() {
    let d = decide(&[]);
    let blocked = d["blocked"].as_array().expect("blocked is an array");
    let nodes: Vec<&str> = blocked.iter().map(|b| b["node"].as_str().unwrap()).collect();
    assert_eq!(nodes, ["ledger-1", "report-1"], "{d:#}");
    let ledger = blocked[0]["reason"].as_str().unwrap();
    assert!(ledger.contains("PodDisruptionBudget prod/ledger"), "{ledger}");
    let report = blocked[1]["reason"].as_str().unwrap();
    assert!(
        report.contains("prod/quarterly-report-8kx2d") && report.contains("do-not-disrupt"),
        "{report}"
    );
}

#[test]
fn table_output_lists_commands_and_blocked_nodes() {
    let file = example();
    let out = purser(&[
        "plan",
        "-f",
        file.to_str().unwrap(),
        "--disrupt",
        "--now",
        NOW,
        "-o",
        "table",
    ]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "{text}");
    assert!(
        lines[0].starts_with("Replace Expired") && lines[0].contains("[batch-1]"),
        "{text}"
    );
    assert!(
        lines[1].starts_with("Delete Empty") && lines[1].contains("[idle]"),
        "{text}"
    );
    assert!(
        lines[2].starts_with("Replace GpuIdle") && lines[2].contains("[gpu-1]"),
        "{text}"
    );
    assert!(
        lines[3].starts_with("Replace Underutilized") && lines[3].contains("[web-1a-1, web-1a-2, web-1b-1, web-1b-2]"),
        "{text}"
    );
    assert!(lines[4].starts_with("blocked ledger-1: "), "{text}");
    assert!(lines[5].starts_with("blocked report-1: "), "{text}");
}

#[test]
fn an_interruption_notice_overrides_do_not_disrupt() {
    let d = decide(&["--interruption", "report-1=scheduled-change"]);
    let first = &commands(&d)[0];
    assert_eq!(first["reason"], "Interrupted", "{d:#}");
    assert_eq!(strings(&first["nodes"]), ["report-1"]);
    assert!(
        first["detail"]
            .as_str()
            .unwrap()
            .contains("offering m5.xlarge us-east-1a on-demand unavailable"),
        "{first:#}"
    );
    assert!(
        d["blocked"].as_array().unwrap().iter().all(|b| b["node"] != "report-1"),
        "{d:#}"
    );
}

#[test]
fn same_input_gives_identical_json() {
    let file = example();
    let args = [
        "plan",
        "-f",
        file.to_str().unwrap(),
        "--disrupt",
        "--now",
        NOW,
        "-o",
        "json",
    ];
    let first = purser(&args);
    let second = purser(&args);
    assert_eq!(first.status.code(), Some(0), "stderr: {}", stderr(&first));
    assert_eq!(second.status.code(), Some(0), "stderr: {}", stderr(&second));
    assert_eq!(stdout(&first), stdout(&second));
}

/// Run `purser plan` with `args` and expect exit code 2, nothing on stdout and a message on
/// stderr that mentions every `words`.
fn assert_usage_error(args: &[&str], words: &[&str]) {
    let out = purser(args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{args:?}: stderr: {err}");
    assert!(out.stdout.is_empty(), "{args:?}: stdout: {}", stdout(&out));
    for w in words {
        assert!(err.contains(w), "{args:?}: stderr should mention {w:?}: {err}");
    }
}

#[test]
fn now_must_be_rfc3339() {
    let file = example();
    assert_usage_error(
        &[
            "plan",
            "-f",
            file.to_str().unwrap(),
            "--disrupt",
            "--now",
            "2026-11-25 12:00",
        ],
        &["--now", "RFC 3339"],
    );
}

#[test]
fn now_needs_disrupt() {
    let file = example();
    assert_usage_error(&["plan", "-f", file.to_str().unwrap(), "--now", NOW], &["--disrupt"]);
}

#[test]
fn interruption_must_name_a_node_of_the_input() {
    let file = example();
    assert_usage_error(
        &[
            "plan",
            "-f",
            file.to_str().unwrap(),
            "--disrupt",
            "--now",
            NOW,
            "--interruption",
            "nosuchnode=spot-interruption",
        ],
        &["--interruption", "\"nosuchnode\""],
    );
}

#[test]
fn interruption_kind_must_be_known() {
    let file = example();
    assert_usage_error(
        &[
            "plan",
            "-f",
            file.to_str().unwrap(),
            "--disrupt",
            "--interruption",
            "x=bogus",
        ],
        &[
            "--interruption",
            "bogus",
            "spot-interruption",
            "rebalance",
            "scheduled-change",
        ],
    );
}

#[test]
fn budget_over_100_percent_names_the_nodepool_and_field() {
    let path =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-disrupt-budget-{}.yaml", std::process::id()));
    std::fs::write(
        &path,
        "apiVersion: purser.dev/v1\nkind: NodePool\nmetadata: {name: general}\nspec:\n  disruption:\n    budgets:\n      - nodes: \"150%\"\n",
    )
    .unwrap();
    let file = path.to_str().unwrap().to_string();
    assert_usage_error(
        &["plan", "-f", &file, "--disrupt", "--now", NOW],
        &["NodePool general", "spec.disruption.budgets[0].nodes", "150%"],
    );
    let _ = std::fs::remove_file(&path);
}

#[test]
fn many_to_one_flag_keeps_replacements_to_one_node() {
    let d = decide(&["--replacement", "m-to-1"]);
    for c in commands(&d) {
        let claims = c["nodeClaims"].as_array().map_or(0, Vec::len);
        assert!(claims <= 1, "{c:#}");
    }
}
