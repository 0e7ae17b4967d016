//! `purser report --prometheus` against a real Prometheus server: the in-process API server,
//! the real `purser controller --provider kwok` binary provisioning nodes for pending pods in two
//! NodePools (on-demand CPU, spot GPU), Prometheus scraping its /metrics every second, and the
//! scorecard's total checked against the nodes' prices × the time they existed in the window.
//!
//! Prometheus: `$PROMETHEUS`, else `prometheus` on `PATH`, else (as root) the Debian package is
//! installed with apt-get. Every child process is killed when the test ends, panics included.

#[path = "controller/scheduler.rs"]
#[allow(dead_code, reason = "the scheduler serves several test binaries")]
mod scheduler;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, SubsecRound, Utc};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{Api, ListParams, PostParams};
use kube::{Client, CustomResourceExt};
use purser::api::{CostBudget, NodeClaim, NodeClass, NodePool};
use purser::cli::report::prometheus::Prometheus;
use purser_test_apiserver::TestApiServer;
use serde_json::{Value, json};

const PURSER: &str = env!("CARGO_BIN_EXE_purser");
/// (type, vCPUs, GiB, GPUs, on-demand USD/h, spot USD/h).
const TYPES: [(&str, u32, u32, u32, f64, f64); 3] = [
    ("mtest.2x", 2, 8, 0, 0.096, 0.031),
    ("mtest.4x", 4, 16, 0, 0.192, 0.062),
    ("gtest.1g", 8, 32, 1, 0.752, 0.301),
];

/// A child process killed (and reaped) when dropped.
struct Child {
    name: &'static str,
    process: std::process::Child,
    log: PathBuf,
}

impl Child {
    fn spawn(name: &'static str, command: &mut Command, log: PathBuf) -> Child {
        let file = std::fs::File::create(&log).expect("a log file");
        let process = command
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Child { name, process, log }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.process.try_wait() {
            panic!("{} exited ({status}):\n{}", self.name, self.log_tail());
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Aborts a task when dropped.
struct Task(tokio::task::JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The Prometheus binary: `$PROMETHEUS`, `PATH`, or the Debian package installed now (root only).
fn prometheus_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("PROMETHEUS") {
        return PathBuf::from(path);
    }
    if let Some(found) = on_path("prometheus") {
        return found;
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    assert!(
        root,
        "no prometheus binary: set PROMETHEUS=/path/to/prometheus, put it on PATH, or install the \
         Debian package (apt-get install prometheus); .ci/run does"
    );
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    let install = ["install", "-y", "-qq", "--no-install-recommends", "prometheus"];
    assert!(
        apt(&install) || (apt(&["update", "-qq"]) && apt(&install)),
        "apt-get install prometheus failed; install it or set PROMETHEUS"
    );
    on_path("prometheus").expect("prometheus on PATH after apt-get install")
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// The catalog the controller is given: the types above in two zones, on-demand and spot.
fn catalog() -> Value {
    let types: Vec<Value> = TYPES
        .iter()
        .map(|&(name, cpu, gib, gpus, on_demand, spot)| {
            let offerings: Vec<Value> = ["zone-a", "zone-b"]
                .iter()
                .flat_map(|z| {
                    [
                        json!({"zone": z, "capacityType": "on-demand", "price": on_demand}),
                        json!({"zone": z, "capacityType": "spot", "price": spot}),
                    ]
                })
                .collect();
            let mut capacity = json!({"cpu": cpu.to_string(), "memory": format!("{gib}Gi"), "pods": "110"});
            let mut labels = json!({"kubernetes.io/arch": "amd64", "kubernetes.io/os": "linux"});
            if gpus > 0 {
                capacity["nvidia.com/gpu"] = json!(gpus.to_string());
                labels["purser.dev/instance-gpu-name"] = json!("t4");
            }
            json!({"name": name, "capacity": capacity, "labels": labels, "offerings": offerings})
        })
        .collect();
    json!({"region": "test-1", "reservation": "none", "instanceTypes": types})
}

/// The catalog price of a Node, from its instance type, zone and capacity type labels.
fn price_of(node: &Node) -> f64 {
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let it = labels
        .get("node.kubernetes.io/instance-type")
        .cloned()
        .unwrap_or_default();
    let spot = labels.get("purser.dev/capacity-type").map(String::as_str) == Some("spot");
    let (.., on_demand, spot_price) = TYPES
        .iter()
        .find(|t| t.0 == it)
        .unwrap_or_else(|| panic!("node of unknown type {it:?}"));
    if spot { *spot_price } else { *on_demand }
}

fn kubeconfig(dir: &Path, server: &str) -> PathBuf {
    let path = dir.join("kubeconfig");
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {server}\n\
         contexts:\n- name: test\n  context:\n    cluster: test\n    user: test\n\
         current-context: test\nusers:\n- name: test\n  user:\n    token: test\n"
    );
    std::fs::write(&path, text).expect("kubeconfig written");
    path
}

async fn create<K>(api: &Api<K>, value: Value)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let object: K = serde_json::from_value(value).expect("a valid object");
    api.create(&PostParams::default(), &object).await.expect("created");
}

fn pool(name: &str, capacity_type: &str) -> Value {
    json!({"apiVersion": "purser.dev/v1", "kind": "NodePool", "metadata": {"name": name},
        "spec": {"template": {"spec": {"requirements": [
            {"key": "purser.dev/capacity-type", "operator": "In", "values": [capacity_type]}]}}}})
}

fn pod(namespace: &str, name: &str, team: &str, requests: Value, selector: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"team": team, "cost-centre": "cc-42"}},
        "spec": {"nodeSelector": selector, "containers": [{"name": "main", "image": "busybox",
            "resources": {"requests": requests}}]}})
}

async fn start_cluster() -> (TestApiServer, Client) {
    let server = TestApiServer::start().await;
    server
        .install_crds(&[NodePool::crd(), NodeClaim::crd(), CostBudget::crd(), NodeClass::crd()])
        .expect("Purser's CRDs install");
    let client = server.client();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for ns in ["purser", "web", "vision"] {
        create(&namespaces, json!({"metadata": {"name": ns}})).await;
    }
    (server, client)
}

async fn workload(client: &Client) {
    let pools: Api<NodePool> = Api::all(client.clone());
    create(&pools, pool("general", "on-demand")).await;
    create(&pools, pool("gpu-spot", "spot")).await;
    let budgets: Api<CostBudget> = Api::all(client.clone());
    let budget = json!({"apiVersion": "purser.dev/v1", "kind": "CostBudget", "metadata": {"name": "team-vision"},
        "spec": {"selector": {"namespaces": ["vision"]}, "maxHourlyCost": 100, "maxPeriodCost": 5000, "period": "Monthly"}});
    create(&budgets, budget).await;
    let web: Api<Pod> = Api::namespaced(client.clone(), "web");
    for i in 0..3 {
        let requests = json!({"cpu": "1", "memory": "2Gi"});
        let on_demand = json!({"purser.dev/capacity-type": "on-demand"});
        create(&web, pod("web", &format!("api-{i}"), "shop", requests, on_demand)).await;
    }
    let vision: Api<Pod> = Api::namespaced(client.clone(), "vision");
    for i in 0..2 {
        let requests = json!({"cpu": "2", "memory": "8Gi", "nvidia.com/gpu": "1"});
        create(
            &vision,
            pod("vision", &format!("train-{i}"), "vision", requests, json!({})),
        )
        .await;
    }
}

async fn wait_for<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < limit {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("timed out after {limit:?} waiting until {what}");
}

async fn all_bound(client: &Client) -> bool {
    let pods = Api::<Pod>::all(client.clone()).list(&ListParams::default()).await;
    pods.is_ok_and(|p| {
        !p.items.is_empty()
            && p.items
                .iter()
                .all(|p| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some())
    })
}

fn report(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(PURSER)
        .arg("report")
        .args(args)
        .output()
        .expect("purser report runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Σ price × the time each node existed within [start, end), USD.
fn expected_cost(nodes: &[Node], start: DateTime<Utc>, end: DateTime<Utc>) -> f64 {
    nodes
        .iter()
        .map(|n| {
            let created = n
                .metadata
                .creation_timestamp
                .as_ref()
                .and_then(|t| DateTime::from_timestamp_millis(t.0.as_millisecond()))
                .unwrap_or(start);
            let from = created.max(start);
            let seconds = (end - from).num_milliseconds().max(0) as f64 / 1000.0;
            price_of(n) * seconds / 3600.0
        })
        .sum()
}

/// The `(total)` row's spend in `purser report -o csv`.
fn csv_total(csv: &str) -> f64 {
    let line = csv
        .lines()
        .find(|l| l.starts_with("(total),"))
        .unwrap_or_else(|| panic!("no total row in:\n{csv}"));
    line.split(',').nth(1).and_then(|v| v.parse().ok()).expect("a spend")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scorecard_totals_equal_node_prices_times_time() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let prometheus_bin = prometheus_binary();
    let (server, client) = start_cluster().await;
    let _scheduler = Task(tokio::spawn(scheduler::run(client.clone())));
    let catalog_path = dir.path().join("catalog.json");
    std::fs::write(&catalog_path, catalog().to_string()).expect("catalog written");
    let metrics_port = free_port();
    let mut controller = Child::spawn(
        "purser controller",
        Command::new(PURSER)
            .args([
                "controller",
                "--provider",
                "kwok",
                "--no-leader-election",
                "--no-disruption",
            ])
            .arg("--catalog")
            .arg(&catalog_path)
            .args(["--metrics-addr", &format!("127.0.0.1:{metrics_port}")])
            .args([
                "--batch-idle",
                "300ms",
                "--batch-max",
                "2s",
                "--kwok-registration-delay",
                "500ms",
            ])
            .args(["--namespace", "purser"])
            .env("KUBECONFIG", kubeconfig(dir.path(), &server.url()))
            .env("RUST_LOG", "info"),
        dir.path().join("controller.log"),
    );
    workload(&client).await;
    wait_for("every pod is bound to a kwok node", Duration::from_secs(40), || {
        controller.assert_running();
        all_bound(&client)
    })
    .await;
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
        .expect("nodes")
        .items;
    assert!(nodes.len() >= 2, "{} nodes", nodes.len());

    let prom_port = free_port();
    let mut prometheus = Child::spawn(
        "prometheus",
        Command::new(&prometheus_bin)
            .arg(format!(
                "--config.file={}",
                prometheus_config(dir.path(), metrics_port).display()
            ))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("tsdb").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}")),
        dir.path().join("prometheus.log"),
    );
    let url = format!("http://127.0.0.1:{prom_port}");
    let api = Prometheus::new(&url).expect("a URL");
    let count = nodes.len();
    wait_for("Prometheus has every node's price", Duration::from_secs(30), || {
        prometheus.assert_running();
        let api = api.clone();
        async move {
            let now = Utc::now().timestamp() as f64;
            api.instant("count(node_total_hourly_cost)", now)
                .await
                .ok()
                .and_then(|s| s.first().and_then(|s| s.last()))
                .is_some_and(|c| c as usize >= count)
        }
    })
    .await;

    let start = Utc::now().trunc_subsecs(0) + chrono::Duration::seconds(1);
    let end = start + chrono::Duration::seconds(20);
    while Utc::now() < end + chrono::Duration::seconds(3) {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    controller.assert_running();
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
        .expect("nodes")
        .items;
    let expected = expected_cost(&nodes, start, end);
    let window = [
        "--prometheus",
        url.as_str(),
        "--start",
        &start.to_rfc3339(),
        "--end",
        &end.to_rfc3339(),
        "--step",
        "1s",
    ];
    let run = |extra: &[&str]| {
        let args: Vec<&str> = window.iter().chain(extra).copied().collect();
        let (code, out, err) = report(&args);
        assert_eq!(code, 0, "purser report {args:?}: {err}");
        out
    };
    let csv = run(&["-o", "csv"]);
    let total = csv_total(&csv);
    let table = run(&["-o", "table"]);
    eprintln!(
        "expected {expected:.8} USD, report {total:.8} USD ({:+.4}%)\n{csv}\n{table}\n{}",
        100.0 * (total - expected) / expected,
        run(&["-o", "markdown", "--by", "nodepool"])
    );
    assert!(
        table.contains("Budgets (current period):") && table.contains("team-vision"),
        "{table}"
    );
    assert!(
        (total - expected).abs() <= 0.01 * expected,
        "report total {total} vs Σ price × time {expected}\n{csv}"
    );
    let pools = run(&["-o", "csv", "--by", "nodepool"]);
    assert!(pools.contains("\ngeneral,") && pools.contains("\ngpu-spot,"), "{pools}");
    assert!((csv_total(&pools) - total).abs() < 1e-6, "{pools}");
    let teams = run(&["-o", "csv", "--by", "team"]);
    assert!(teams.contains("\nvision,") && teams.contains("\nshop,"), "{teams}");

    let focus = run(&["-o", "focus"]);
    let mut lines = focus.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|c| *c == name)
            .unwrap_or_else(|| panic!("no {name}"))
    };
    let (billed, pricing) = (col("BilledCost"), col("PricingCategory"));
    let rows: Vec<Vec<String>> = lines.map(split_csv).collect();
    assert!(rows.len() >= nodes.len(), "{focus}");
    let focus_total: f64 = rows.iter().map(|r| r[billed].parse::<f64>().expect("BilledCost")).sum();
    assert!((focus_total - total).abs() < 1e-6, "FOCUS {focus_total} vs CSV {total}");
    assert!(rows.iter().any(|r| r[pricing] == "Dynamic") && rows.iter().any(|r| r[pricing] == "Standard"));
    drop(prometheus);
    drop(controller);
    the_cluster_ledger_agrees(&client, &nodes, dir.path()).await;
}

/// `purser report` without --prometheus reads the controller's ledger through the API server:
/// each node is charged from the first status pass that saw it (at most 5 s after it was
/// created, plus the watch delay) to the last pass.
async fn the_cluster_ledger_agrees(client: &Client, nodes: &[Node], dir: &Path) {
    let maps: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client.clone(), "purser");
    let rates = maps.get("purser-showback-rates").await.expect("the rates ConfigMap");
    let text = rates
        .data
        .as_ref()
        .and_then(|d| d.get("rates.json"))
        .expect("rates.json");
    let rates: Value = serde_json::from_str(text).expect("rates JSON");
    let until = rates["accruedUntil"].as_i64().expect("accruedUntil");
    let until = DateTime::from_timestamp(until, 0).expect("a time");
    let start = (until - chrono::Duration::hours(2)).to_rfc3339();
    let end = (until + chrono::Duration::hours(1)).to_rfc3339();
    let args = ["--start", start.as_str(), "--end", end.as_str(), "-o", "csv"];
    let out = Command::new(PURSER)
        .arg("report")
        .args(args)
        .env("KUBECONFIG", dir.join("kubeconfig"))
        .env_remove("PURSER_PROMETHEUS")
        .output()
        .expect("purser report runs");
    let csv = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let total = csv_total(&csv);
    let lifetime = |slack: i64| {
        nodes
            .iter()
            .map(|n| {
                let created = n
                    .metadata
                    .creation_timestamp
                    .as_ref()
                    .and_then(|t| DateTime::from_timestamp_millis(t.0.as_millisecond()))
                    .expect("a creation time");
                price_of(n) * ((until - created).num_milliseconds() as f64 / 1000.0 - slack as f64).max(0.0) / 3600.0
            })
            .sum::<f64>()
    };
    let (high, low) = (lifetime(0), lifetime(8));
    eprintln!("ledger {total:.8} USD; nodes' lifetime to the last pass {low:.8}..{high:.8} USD\n{csv}");
    assert!(
        total <= high * 1.001 && total >= low * 0.999,
        "ledger {total} not in {low}..{high}\n{csv}"
    );
}

fn prometheus_config(dir: &Path, metrics_port: u16) -> PathBuf {
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n\
             - job_name: purser\n  static_configs:\n  - targets: ['127.0.0.1:{metrics_port}']\n"
        ),
    )
    .expect("prometheus.yml written");
    config
}

/// One CSV line's fields (quoted fields may hold commas and doubled quotes).
fn split_csv(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                fields.last_mut().expect("a field").push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(String::new()),
            (c, _) => fields.last_mut().expect("a field").push(c),
        }
    }
    fields
}

#[test]
fn a_prometheus_that_does_not_answer_is_a_clear_error() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/");
    let (code, out, err) = report(&["--prometheus", &url, "--window", "1h"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.starts_with(&format!(
            "error: prometheus {url}: no answer to \"node_total_hourly_cost\": cannot connect"
        )),
        "{err}"
    );
}

#[test]
fn an_error_answer_names_the_query() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = listener.local_addr().expect("an address").port();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("a connection");
        let mut buf = [0u8; 4096];
        let _ = stream.read(&mut buf);
        let body = r#"{"status":"error","errorType":"bad_data","error":"out of bounds"}"#;
        let _ = write!(
            stream,
            "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
    });
    let (code, _, err) = report(&["--prometheus", &format!("http://127.0.0.1:{port}"), "--window", "1h"]);
    let _ = server.join();
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("query \"node_total_hourly_cost\" failed: status error: bad_data: out of bounds"),
        "{err}"
    );
}

#[test]
fn bad_flags_exit_2_and_say_what_is_expected() {
    let (code, _, err) = report(&["--prometheus", "http://127.0.0.1:1", "--by", "pod"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("expected namespace, team, cost-centre or nodepool"),
        "{err}"
    );
    let (code, _, err) = report(&["--prometheus", "http://127.0.0.1:1", "--start", "yesterday"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("expected RFC 3339"), "{err}");
    let args = [
        "--prometheus",
        "http://127.0.0.1:1",
        "--start",
        "2026-12-07T10:00:00Z",
        "--end",
        "2026-12-07T09:00:00Z",
    ];
    let (code, _, err) = report(&args);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("expected --end after --start"), "{err}");
}
