//! The admission webhook over HTTPS on 127.0.0.1: each policy allows, denies or warns through
//! a real TLS connection, the exception label skips them, malformed bodies get clear answers,
//! and `purser webhook` refuses unusable flags with exit code 2.

#[path = "support/certs.rs"]
mod certs;

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use purser::catalog::Catalog;
use purser::webhook::policy::{Mode, Policies};
use purser::webhook::probe::Probe;
use purser::webhook::server::{self, Shared};
use purser::webhook::{ClusterView, Settings};
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(10);

fn view() -> ClusterView {
    ClusterView {
        pools: vec![
            json!({"apiVersion": "purser.dev/v1", "kind": "NodePool", "metadata": {"name": "general"},
            "spec": {"template": {"spec": {"requirements": [
                {"key": "purser.dev/capacity-type", "operator": "In", "values": ["on-demand"]},
                {"key": "purser.dev/instance-family", "operator": "In", "values": ["m5"]}]}}}}),
        ],
        budgets: vec![
            json!({"apiVersion": "purser.dev/v1", "kind": "CostBudget", "metadata": {"name": "team-vision"},
            "spec": {"selector": {"namespaces": ["vision"]}, "maxHourlyCost": 1.0},
            "status": {"runRate": 0.95}}),
        ],
        namespaces: BTreeMap::from([(
            "sandbox".to_string(),
            BTreeMap::from([("purser.dev/environment".to_string(), "dev".to_string())]),
        )]),
        ..ClusterView::default()
    }
}

async fn start(policies: Policies, fail_open: bool) -> (Probe, certs::Certs, tokio::task::JoinHandle<()>) {
    let certs = certs::make();
    let tls = server::tls_config(&certs.cert, &certs.key).expect("TLS settings");
    let shared = Arc::new(Shared {
        settings: Settings { policies, fail_open },
        catalog: Catalog::embedded(),
        view: RwLock::new(view()),
    });
    let (addr, task) = server::serve("127.0.0.1:0".parse().unwrap(), tls, server::router(shared))
        .await
        .expect("bound");
    let probe = Probe::connect(addr, "localhost", certs.ca.clone())
        .await
        .expect("connected");
    (probe, certs, task)
}

fn review(namespace: &str, labels: Value, requests: Value, node_selector: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "uid-7", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "operation": "CREATE", "namespace": namespace,
            "object": {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"generateName": "job-", "labels": labels},
                "spec": {"nodeSelector": node_selector,
                    "containers": [{"name": "main", "resources": {"requests": requests}}]}}}
    }))
    .unwrap()
}

async fn answer(probe: &mut Probe, body: &[u8]) -> (u16, Value) {
    let (status, body) = probe.post("/validate", body, LIMIT).await.expect("an answer");
    (status, serde_json::from_slice(&body).expect("JSON"))
}

fn allowed(v: &Value) -> bool {
    v["response"]["allowed"].as_bool().expect("response.allowed")
}

fn message(v: &Value) -> String {
    v["response"]["status"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn warnings(v: &Value) -> Vec<String> {
    v["response"]["warnings"]
        .as_array()
        .map(|w| w.iter().filter_map(|x| x.as_str().map(String::from)).collect())
        .unwrap_or_default()
}

fn warn_everything() -> Policies {
    let mut p = Policies::default();
    p.require_label.mode = Mode::Warn;
    p.budget.mode = Mode::Warn;
    p.max_gpus_per_pod.mode = Mode::Warn;
    p.dev_requires_spot.mode = Mode::Warn;
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_policy_allows_denies_and_warns_over_https() {
    let (mut probe, _certs, _task) = start(Policies::default(), true).await;
    let cc = json!({"cost-centre": "cc-42"});
    let none = json!({});
    // Label policy.
    let (status, v) = answer(
        &mut probe,
        &review("web", none.clone(), json!({"cpu": "100m"}), none.clone()),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(v["response"]["uid"], "uid-7");
    assert!(!allowed(&v) && message(&v).contains("\"cost-centre\""), "{v}");
    let (_, v) = answer(
        &mut probe,
        &review("web", cc.clone(), json!({"cpu": "100m"}), none.clone()),
    )
    .await;
    assert!(allowed(&v), "{v}");
    // Budget policy: 0.95 USD/h used of 1.00; two vCPUs on an m5 cost more than 0.05.
    let (_, v) = answer(
        &mut probe,
        &review("vision", cc.clone(), json!({"cpu": "2", "memory": "1Gi"}), none.clone()),
    )
    .await;
    assert!(!allowed(&v), "{v}");
    assert!(message(&v).starts_with("budget team-vision: 0.95 + "), "{v}");
    assert!(message(&v).contains("> 1.00 USD/h"), "{v}");
    let (_, v) = answer(
        &mut probe,
        &review(
            "vision",
            cc.clone(),
            json!({"cpu": "10m", "memory": "16Mi"}),
            none.clone(),
        ),
    )
    .await;
    assert!(allowed(&v), "a small pod fits the budget: {v}");
    // GPU cap.
    let (_, v) = answer(
        &mut probe,
        &review("ml", cc.clone(), json!({"nvidia.com/gpu": "8"}), none.clone()),
    )
    .await;
    assert!(!allowed(&v) && message(&v).contains("8 accelerators"), "{v}");
    // Dev namespaces need spot.
    let (_, v) = answer(
        &mut probe,
        &review("sandbox", cc.clone(), json!({"cpu": "1"}), none.clone()),
    )
    .await;
    assert!(!allowed(&v) && message(&v).contains("marked dev"), "{v}");
    let spot = json!({"karpenter.sh/capacity-type": "spot"});
    let (_, v) = answer(&mut probe, &review("sandbox", cc.clone(), json!({"cpu": "1"}), spot)).await;
    assert!(allowed(&v), "{v}");
    // The exception label.
    let exempt = json!({"purser.dev/cost-exception": "true"});
    let (_, v) = answer(
        &mut probe,
        &review("ml", exempt, json!({"nvidia.com/gpu": "8"}), none.clone()),
    )
    .await;
    assert!(allowed(&v) && warnings(&v)[0].contains("skipped"), "{v}");

    // Dry-run: the same findings allow with warnings.
    let (mut probe, _certs, _task) = start(warn_everything(), true).await;
    let (_, v) = answer(
        &mut probe,
        &review("ml", none.clone(), json!({"nvidia.com/gpu": "8"}), none.clone()),
    )
    .await;
    assert!(allowed(&v), "{v}");
    let w = warnings(&v);
    assert!(
        w.iter().any(|w| w.contains("cost-centre")) && w.iter().any(|w| w.contains("accelerators")),
        "{w:?}"
    );
    let (_, v) = answer(&mut probe, &review("vision", cc.clone(), json!({"cpu": "2"}), none)).await;
    assert!(
        allowed(&v)
            && warnings(&v)
                .iter()
                .any(|w| w.starts_with("dry-run: budget team-vision")),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_reviews_get_clear_answers_and_the_failure_mode_decides() {
    let (mut open, _c1, _t1) = start(Policies::default(), true).await;
    let (status, body) = open.post("/validate", b"{\"request\": ", LIMIT).await.expect("answer");
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("not JSON"));
    let (status, body) = open
        .post("/validate", br#"{"kind": "AdmissionReview"}"#, LIMIT)
        .await
        .expect("answer");
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("request.uid"));
    let bad_quantity = review("web", json!({"cost-centre": "cc"}), json!({"cpu": "a lot"}), json!({}));
    let (_, v) = answer(&mut open, &bad_quantity).await;
    assert!(allowed(&v) && warnings(&v)[0].contains("fail-open"), "{v}");
    let (mut closed, _c2, _t2) = start(Policies::default(), false).await;
    let (_, v) = answer(&mut closed, &bad_quantity).await;
    assert!(!allowed(&v) && message(&v).contains("cpu"), "{v}");
    let not_a_pod = serde_json::to_vec(
        &json!({"request": {"uid": "u", "kind": {"kind": "Pod"}, "operation": "CREATE",
        "namespace": "web", "object": {"spec": {"containers": 7}}}}),
    )
    .unwrap();
    let (_, v) = answer(&mut closed, &not_a_pod).await;
    assert!(!allowed(&v) && message(&v).contains("not a Pod"), "{v}");
    let deployment = serde_json::to_vec(
        &json!({"request": {"uid": "u", "kind": {"group": "apps", "kind": "Deployment"},
        "operation": "CREATE", "object": {}}}),
    )
    .unwrap();
    let (_, v) = answer(&mut closed, &deployment).await;
    assert!(allowed(&v), "objects the webhook does not judge pass: {v}");
}

#[test]
fn unusable_flags_exit_2_naming_the_flag() {
    let exe = env!("CARGO_BIN_EXE_purser");
    let out = Command::new(exe)
        .args([
            "webhook",
            "--tls-cert-file",
            "/nonexistent/tls.crt",
            "--tls-key-file",
            "/nonexistent/tls.key",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--tls-cert-file /nonexistent/tls.crt"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("policies.yaml");
    std::fs::write(&config, "maxGpusPerPod: {maximum: 2}\n").unwrap();
    let out = Command::new(exe)
        .args(["webhook", "--tls-cert-file", "x", "--tls-key-file", "y", "--config"])
        .arg(&config)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("policies.yaml") && err.contains("maximum"), "{err}");
}
