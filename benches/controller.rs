//! The controller at scale: 5,000 pending pods and 1,000 nodes on the in-process API server,
//! `purser controller --provider kwok` in a child process (so its memory is its own). Prints,
//! for the ILP planner and for Karpenter's FFD on the same input: seconds from the batch
//! closing to the NodeClaims created (the controller's `purser_provisioning_seconds`), the
//! claims created, and the controller's peak resident memory. Targets: < 5 s, < 500 MiB.
//!
//! `cargo bench --bench controller` (`-- --pods 5000 --nodes 1000` to change the size).

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::CustomResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use purser::api::{CostBudget, NodeClaim, NodeClass, NodePool};
use purser_test_apiserver::TestApiServer;
use serde_json::{Value, json};

const SHAPES: [(&str, &str); 5] = [
    ("250m", "512Mi"),
    ("500m", "1Gi"),
    ("1", "2Gi"),
    ("2", "4Gi"),
    ("1500m", "6Gi"),
];
const NODE_TYPES: [(&str, &str, &str); 3] = [
    ("m5.xlarge", "4", "16Gi"),
    ("c5.2xlarge", "8", "16Gi"),
    ("r5.large", "2", "16Gi"),
];

struct Size {
    pods: usize,
    nodes: usize,
}

fn size_from_args() -> Size {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str, default: usize| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    Size {
        pods: value("--pods", 5000),
        nodes: value("--nodes", 1000),
    }
}

fn node(i: usize) -> Value {
    let (it, cpu, mem) = NODE_TYPES[i % NODE_TYPES.len()];
    let zone = ["us-east-1a", "us-east-1b", "us-east-1c"][i % 3];
    json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": format!("node-{i}"), "labels": {
            "node.kubernetes.io/instance-type": it, "topology.kubernetes.io/zone": zone,
            "purser.dev/capacity-type": "on-demand", "kubernetes.io/arch": "amd64", "kubernetes.io/os": "linux",
            "kubernetes.io/hostname": format!("node-{i}")}},
        "spec": {"providerID": format!("external://node-{i}")},
        "status": {"capacity": {"cpu": cpu, "memory": mem, "pods": "58"},
            "allocatable": {"cpu": cpu, "memory": mem, "pods": "58"},
            "conditions": [{"type": "Ready", "status": "True"}]}})
}

fn pod(name: &str, shape: usize, node: Option<String>) -> Value {
    let (cpu, mem) = SHAPES[shape % SHAPES.len()];
    let mut p = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": format!("app-{}", shape % 7)},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "rs", "controller": true}]},
        "spec": {"containers": [{"name": "main", "image": "busybox", "resources": {"requests": {"cpu": cpu, "memory": mem}}}]}});
    if let Some(n) = node {
        p["spec"]["nodeName"] = json!(n);
    }
    p
}

async fn populate(client: &kube::Client, size: &Size) {
    let nodes: Api<Node> = Api::all(client.clone());
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pools: Api<NodePool> = Api::all(client.clone());
    let pool: NodePool = serde_json::from_value(json!({"apiVersion": "purser.dev/v1", "kind": "NodePool",
        "metadata": {"name": "general"}, "spec": {"template": {"spec": {"requirements": [
            {"key": "purser.dev/instance-category", "operator": "In", "values": ["c", "m", "r"]},
            {"key": "purser.dev/instance-generation", "operator": "Gt", "values": ["4"]},
            {"key": "purser.dev/capacity-type", "operator": "In", "values": ["on-demand"]}]}}}}))
    .expect("pool");
    pools.create(&PostParams::default(), &pool).await.expect("pool created");
    for i in 0..size.nodes {
        let n: Node = serde_json::from_value(node(i)).expect("node");
        nodes.create(&PostParams::default(), &n).await.expect("node created");
        // Two bound pods per node keep every node partly used.
        for j in 0..2 {
            let p: Pod =
                serde_json::from_value(pod(&format!("bound-{i}-{j}"), i + j, Some(format!("node-{i}")))).expect("pod");
            pods.create(&PostParams::default(), &p).await.expect("bound pod");
        }
    }
    let unschedulable = json!({"status": {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]}});
    for i in 0..size.pods {
        let name = format!("pending-{i}");
        let p: Pod = serde_json::from_value(pod(&name, i, None)).expect("pod");
        pods.create(&PostParams::default(), &p).await.expect("pending pod");
        pods.patch_status(&name, &PatchParams::default(), &Patch::Merge(&unschedulable))
            .await
            .expect("marked");
    }
}

fn kubeconfig(url: &str) -> tempfile_path::Path {
    tempfile_path::write(&format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {url}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: test\ncurrent-context: test\nusers:\n- name: test\n  user: {{}}\n"
    ))
}

/// A file in the temp dir, removed on drop.
mod tempfile_path {
    /// The file's path.
    pub struct Path(pub std::path::PathBuf);
    impl Drop for Path {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    /// Write `text` to a new temp file.
    pub fn write(text: &str) -> Path {
        let path = std::env::temp_dir().join(format!("purser-bench-kubeconfig-{}", std::process::id()));
        std::fs::write(&path, text).expect("kubeconfig written");
        Path(path)
    }
}

fn spawn_controller(kubeconfig: &std::path::Path, metrics: &str, strategy: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_purser"))
        .args([
            "controller",
            "--provider",
            "kwok",
            "--no-leader-election",
            "--no-disruption",
        ])
        .args([
            "--metrics-addr",
            metrics,
            "--strategy",
            strategy,
            "--kwok-registration-delay",
            "1s",
        ])
        .env("KUBECONFIG", kubeconfig)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("purser controller starts")
}

fn peak_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

async fn scrape(addr: &str, metric: &str) -> Option<f64> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut body = String::new();
    stream.read_to_string(&mut body).await.ok()?;
    body.lines()
        .find(|l| l.starts_with(metric))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
}

struct Outcome {
    seconds: f64,
    claims: usize,
    hourly_cost: f64,
    peak_mib: f64,
}

async fn measure(size: &Size, strategy: &str, port: u16) -> Outcome {
    let server = TestApiServer::start().await;
    server
        .install_crds(&[NodePool::crd(), NodeClaim::crd(), CostBudget::crd(), NodeClass::crd()])
        .expect("CRDs");
    let client = server.client();
    populate(&client, size).await;
    let config = kubeconfig(&server.url());
    let addr = format!("127.0.0.1:{port}");
    let mut child = spawn_controller(&config.0, &addr, strategy);
    let started = Instant::now();
    let mut seconds = None;
    while started.elapsed() < Duration::from_secs(600) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if scrape(&addr, "purser_provisioning_seconds_count").await.unwrap_or(0.0) >= 1.0 {
            seconds = scrape(&addr, "purser_provisioning_seconds_sum").await;
            break;
        }
    }
    let items = Api::<NodeClaim>::all(client)
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    let hourly_cost = items
        .iter()
        .filter_map(|c| {
            c.metadata
                .annotations
                .as_ref()?
                .get("purser.dev/hourly-price")?
                .parse::<f64>()
                .ok()
        })
        .sum();
    let claims = items.len();
    let peak = peak_mib(child.id());
    let _ = child.kill();
    let _ = child.wait();
    Outcome {
        seconds: seconds.unwrap_or(f64::NAN),
        claims,
        hourly_cost,
        peak_mib: peak,
    }
}

fn main() {
    let size = size_from_args();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let ilp = runtime.block_on(measure(&size, "ilp", 18_931));
    let ffd = runtime.block_on(measure(&size, "ffd", 18_932));
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "controller at scale: {} pending pods, {} nodes ({} bound pods)",
        size.pods,
        size.nodes,
        2 * size.nodes
    );
    let _ = writeln!(
        out,
        "| planner | batch closed -> NodeClaims created s | NodeClaims | their USD/h | controller peak MiB |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|");
    for (name, o) in [("ilp (purser)", &ilp), ("ffd (karpenter's algorithm)", &ffd)] {
        let _ = writeln!(
            out,
            "| {name} | {:.3} | {} | {:.3} | {:.0} |",
            o.seconds, o.claims, o.hourly_cost, o.peak_mib
        );
    }
    let _ = writeln!(
        out,
        "targets: under 5 s and under 500 MiB (ilp: {} / {})",
        if ilp.seconds < 5.0 { "met" } else { "NOT met" },
        if ilp.peak_mib < 500.0 { "met" } else { "NOT met" }
    );
}
