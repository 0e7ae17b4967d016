//! The admission webhook's latency on 127.0.0.1: AdmissionReviews at a fixed 200 requests per
//! second over 4 kept-alive TLS connections, each request timed from send to answer. Prints
//! p50, p99 and max for the webhook judging every pod (labels, GPU cap, dev spot, and the
//! budget policy, which asks the planning engine for the pod's cheapest capacity), next to a
//! baseline on the same server, connections and schedule: a route that answers a fixed
//! AdmissionReview without judging (what TLS, HTTP and JSON cost alone). Target: p99 < 10 ms.
//! Also printed: the answer time for the first pod of a new shape, when the planner's estimate
//! is made (later pods of that shape reuse it until the NodePools change).
//!
//! `cargo bench --bench webhook` (`-- --seconds 20 --rate 200` to change the load).

#[path = "../tests/support/certs.rs"]
mod certs;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::routing::post;
use purser::catalog::Catalog;
use purser::webhook::policy::Policies;
use purser::webhook::probe::Probe;
use purser::webhook::server::{self, Shared};
use purser::webhook::{ClusterView, Settings};
use serde_json::json;

const CONNECTIONS: usize = 4;

fn arg(flag: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn view() -> ClusterView {
    let pools = ["general", "gpu-train", "gpu-infer"]
        .iter()
        .map(|name| {
            json!({"apiVersion": "purser.dev/v1", "kind": "NodePool", "metadata": {"name": name},
                "spec": {"template": {"spec": {"requirements": [
                    {"key": "purser.dev/instance-category", "operator": "In", "values": ["c", "m", "r", "g"]}]}}}})
        })
        .collect();
    let budgets = (0..10)
        .map(|i| {
            json!({"apiVersion": "purser.dev/v1", "kind": "CostBudget", "metadata": {"name": format!("team-{i}")},
                "spec": {"selector": {"namespaces": [format!("team-{i}")]}, "maxHourlyCost": 40.0},
                "status": {"runRate": 12.5}})
        })
        .collect();
    ClusterView {
        pools,
        budgets,
        namespaces: BTreeMap::new(),
        ..ClusterView::default()
    }
}

/// Review `i`: pods of ten teams and a few shapes, all in some budget's scope.
fn review(i: u64) -> Vec<u8> {
    let shapes = [("250m", "512Mi"), ("1", "4Gi"), ("2", "8Gi"), ("4", "16Gi")];
    let (cpu, memory) = shapes[(i % 4) as usize];
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": format!("uid-{i}"), "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "operation": "CREATE", "namespace": format!("team-{}", i % 10),
            "object": {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"generateName": "job-", "labels": {"cost-centre": "cc-1"}},
                "spec": {"containers": [{"name": "main", "resources": {"requests": {"cpu": cpu, "memory": memory}}}]}}}
    }))
    .unwrap_or_default()
}

/// Send `total` reviews at `rate` per second, round-robin over the connections; latencies in ms.
async fn run(path: &'static str, addr: std::net::SocketAddr, ca: &certs::Certs, rate: u64, total: u64) -> Vec<f64> {
    let per_connection = total / CONNECTIONS as u64;
    let interval = Duration::from_secs_f64(CONNECTIONS as f64 / rate as f64);
    let mut tasks = vec![];
    for c in 0..CONNECTIONS {
        let ca = ca.ca.clone();
        tasks.push(tokio::spawn(async move {
            let mut probe = Probe::connect(addr, "localhost", ca).await.expect("connected");
            let start = Instant::now() + interval.mul_f64(c as f64 / CONNECTIONS as f64);
            let mut latencies = vec![];
            for k in 0..per_connection {
                tokio::time::sleep_until((start + interval * k as u32).into()).await;
                let body = review(k * CONNECTIONS as u64 + c as u64);
                let sent = Instant::now();
                let (status, _) = probe
                    .post(path, &body, Duration::from_secs(5))
                    .await
                    .expect("an answer");
                assert_eq!(status, 200);
                latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
            }
            latencies
        }));
    }
    let mut all = vec![];
    for t in tasks {
        all.extend(t.await.expect("a connection task"));
    }
    all.sort_by(f64::total_cmp);
    all
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let seconds = arg("--seconds", 20);
    let rate = arg("--rate", 200);
    let total = seconds * rate;
    let certs = certs::make();
    let tls = server::tls_config(&certs.cert, &certs.key).expect("TLS settings");
    let shared = Arc::new(Shared {
        settings: Settings {
            policies: Policies::default(),
            fail_open: true,
        },
        catalog: Catalog::embedded(),
        view: RwLock::new(view()),
    });
    let fixed = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "response": {"uid": "u", "allowed": true}});
    let app = server::router(shared).route("/fixed", post(move || async move { axum::Json(fixed) }));
    let (addr, _task) = server::serve("127.0.0.1:0".parse().expect("address"), tls, app)
        .await
        .expect("bound");
    println!("webhook latency on 127.0.0.1: {total} AdmissionReviews at {rate}/s over {CONNECTIONS} TLS connections");
    println!("| route | p50 ms | p99 ms | max ms |");
    println!("|---|---:|---:|---:|");
    let cold_body = serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "cold", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "operation": "CREATE", "namespace": "team-0",
            "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "cold", "labels": {"cost-centre": "cc-1"}},
                "spec": {"containers": [{"name": "main", "resources": {"requests": {"cpu": "3", "memory": "5Gi"}}}]}}}
    }))
    .unwrap_or_default();
    let mut probe = Probe::connect(addr, "localhost", certs.ca.clone())
        .await
        .expect("connected");
    let sent = Instant::now();
    probe
        .post("/validate", &cold_body, Duration::from_secs(10))
        .await
        .expect("an answer");
    println!(
        "first pod of a new shape (the planner's estimate is made, then kept per shape until the NodePools change): {:.2} ms",
        sent.elapsed().as_secs_f64() * 1000.0
    );
    let mut p99 = 0.0;
    for (name, path) in [
        ("baseline: fixed answer, no judging", "/fixed"),
        ("purser webhook: every policy", "/validate"),
    ] {
        let l = run(path, addr, &certs, rate, total).await;
        println!(
            "| {name} | {:.2} | {:.2} | {:.2} |",
            quantile(&l, 0.5),
            quantile(&l, 0.99),
            l[l.len() - 1]
        );
        p99 = quantile(&l, 0.99);
    }
    println!(
        "target p99 < 10 ms: {} ({p99:.2} ms)",
        if p99 < 10.0 { "met" } else { "NOT met" }
    );
}
