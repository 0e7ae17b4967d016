//! The controller test harness: an in-process API server with Purser's CRDs, the kwok cloud
//! (its "kubelet" runs apart from the controller, so killing the controller leaves the cloud
//! running), the test scheduler, and controllers started and killed at will.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams, PostParams};
use kube::{Client, CustomResourceExt};
use purser::api::{CostBudget, NodeClaim, NodePool};
use purser::catalog::Catalog;
use purser::controllers::{self, Context, Settings};
use purser_cloudprovider::CloudProvider;
use purser_test_apiserver::TestApiServer;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

/// A cluster for one test.
pub struct Cluster {
    /// The in-process API server (None against a real cluster).
    pub server: Option<TestApiServer>,
    /// A client of it.
    pub client: Client,
    /// The catalog the controller and the cloud share.
    pub catalog: Catalog,
    /// The kwok cloud.
    pub cloud: Arc<purser_kwok::KwokProvider>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// A running controller.
pub struct Running {
    /// Its context (metrics, decisions).
    pub ctx: Arc<Context>,
    task: JoinHandle<Result<(), controllers::Error>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Running {
    /// Kill it as a crash would: no lease release, no cleanup.
    pub fn kill(self) {
        self.task.abort();
    }

    /// Stop it gracefully (releases the Lease).
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), &mut self.task).await;
    }

    /// True while its task runs.
    pub fn is_running(&self) -> bool {
        !self.task.is_finished()
    }
}

/// Settings fast enough for tests.
pub fn fast_settings(identity: &str) -> Settings {
    Settings {
        batch_idle: Duration::from_millis(300),
        batch_max: Duration::from_secs(3),
        plan_time_limit: Duration::from_millis(500),
        registration_ttl: Duration::from_secs(60),
        disruption_interval: Duration::ZERO,
        gc_interval: Duration::from_millis(500),
        leak_grace: Duration::from_secs(2),
        termination_grace: Duration::from_secs(30),
        identity: identity.into(),
        lease_namespace: "purser".into(),
        lease_duration: Duration::from_secs(3),
        ..Settings::default()
    }
}

impl Cluster {
    /// Start an in-process API server with Purser's CRDs, the kwok cloud (with
    /// `registration_delay`) and the test scheduler.
    #[allow(dead_code, reason = "used by tests/controller only")]
    pub async fn start(registration_delay: Duration) -> Cluster {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let server = TestApiServer::start().await;
        let crds = vec![
            NodePool::crd(),
            NodeClaim::crd(),
            CostBudget::crd(),
            purser::api::NodeClass::crd(),
        ];
        server.install_crds(&crds).expect("Purser's CRDs install");
        let client = server.client();
        let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
        for ns in ["default", "kube-system", "purser", "vision"] {
            let object = serde_json::from_value(json!({"metadata": {"name": ns}})).expect("namespace");
            let _ = namespaces.create(&PostParams::default(), &object).await;
        }
        let mut cluster = Cluster::over(client.clone(), Some(server), registration_delay);
        cluster.tasks.push(tokio::spawn(super::scheduler::run(client)));
        cluster
    }

    /// The cluster in KUBECONFIG (CRDs applied from charts/purser/crds, the kwok provider;
    /// its own kube-scheduler binds pods).
    #[allow(dead_code, reason = "used by tests/e2e only")]
    pub async fn from_kubeconfig() -> Cluster {
        let client = Client::try_default().await.expect("a cluster in KUBECONFIG");
        Cluster::over(client, None, Duration::from_secs(1))
    }

    fn over(client: Client, server: Option<TestApiServer>, registration_delay: Duration) -> Cluster {
        let catalog = test_catalog();
        let options = purser_kwok::KwokOptions {
            registration_delay,
            ready_delay: Duration::from_millis(200),
            ..purser_kwok::KwokOptions::default()
        };
        let cloud = Arc::new(purser_kwok::KwokProvider::new(
            client.clone(),
            catalog.to_spec(),
            options,
        ));
        let tasks = vec![tokio::spawn(cloud.kubelet().run(futures::future::pending::<()>()))];
        Cluster {
            server,
            client,
            catalog,
            cloud,
            tasks,
        }
    }

    /// Also recreate evicted ReplicaSet pods.
    pub fn with_replicasets(&mut self) {
        self.tasks
            .push(tokio::spawn(super::scheduler::replace_evicted(self.client.clone())));
    }

    /// Start a controller with `settings` over `cloud`.
    pub fn controller_with(&self, settings: Settings, cloud: Arc<dyn CloudProvider>) -> Running {
        let ctx = Context::new(self.client.clone(), cloud, self.catalog.clone(), settings);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(controllers::run(ctx.clone(), async move {
            let _ = rx.await;
        }));
        Running {
            ctx,
            task,
            stop: Some(tx),
        }
    }

    /// Start a controller over the kwok cloud.
    pub fn controller(&self, settings: Settings) -> Running {
        self.controller_with(settings, self.cloud.clone())
    }

    /// Create a cluster-scoped object from JSON.
    pub async fn apply<K>(&self, value: Value) -> K
    where
        K: kube::Resource<DynamicType = (), Scope = k8s_openapi::ClusterResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + serde::Serialize
            + std::fmt::Debug,
    {
        let object: K = serde_json::from_value(value).expect("a valid object");
        Api::<K>::all(self.client.clone())
            .create(&PostParams::default(), &object)
            .await
            .expect("created")
    }

    /// Create a namespaced object from JSON (in its `metadata.namespace`).
    pub async fn apply_ns<K>(&self, value: Value) -> K
    where
        K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + serde::Serialize
            + std::fmt::Debug,
    {
        let object: K = serde_json::from_value(value).expect("a valid object");
        let ns = object.meta().namespace.clone().unwrap_or_else(|| "default".into());
        Api::<K>::namespaced(self.client.clone(), &ns)
            .create(&PostParams::default(), &object)
            .await
            .expect("created")
    }

    /// Create pods from (name, cpu, memory) in `namespace`.
    pub async fn pods(&self, namespace: &str, shapes: &[(String, &str, &str)]) {
        for (name, cpu, memory) in shapes {
            self.apply_ns::<Pod>(pod(namespace, name, cpu, memory)).await;
        }
    }

    /// All pods.
    pub async fn all_pods(&self) -> Vec<Pod> {
        Api::<Pod>::all(self.client.clone())
            .list(&ListParams::default())
            .await
            .expect("pods")
            .items
    }

    /// All NodeClaims.
    pub async fn claims(&self) -> Vec<NodeClaim> {
        Api::<NodeClaim>::all(self.client.clone())
            .list(&ListParams::default())
            .await
            .expect("claims")
            .items
    }

    /// All Nodes.
    pub async fn nodes(&self) -> Vec<Node> {
        Api::<Node>::all(self.client.clone())
            .list(&ListParams::default())
            .await
            .expect("nodes")
            .items
    }

    /// Wait (up to `limit`) until `check` holds; panics with `what` otherwise.
    pub async fn until<F, Fut>(&self, what: &str, limit: Duration, mut check: F) -> Duration
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let start = Instant::now();
        while start.elapsed() < limit {
            if check().await {
                return start.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("timed out after {limit:?} waiting until {what}");
    }

    /// True when every pod is bound.
    pub async fn all_bound(&self) -> bool {
        let pods = self.all_pods().await;
        !pods.is_empty()
            && pods
                .iter()
                .all(|p| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some())
    }

    /// True when every pending pod has been marked unschedulable by the scheduler.
    pub async fn all_marked(&self, count: usize) -> bool {
        let pods = self.all_pods().await;
        pods.len() == count
            && pods.iter().all(|p| {
                p.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| !c.is_empty())
            })
    }
}

/// A small synthetic on-demand catalog: m-like types (4 GiB per vCPU) and c-like types
/// (2 GiB per vCPU), three zones; allocatable = capacity so the numbers are easy to read.
pub fn test_catalog() -> Catalog {
    let mut types = vec![];
    for (family, gib_per_cpu, price_per_cpu) in [("m", 4, 0.048), ("c", 2, 0.0425)] {
        for cpu in [1, 2, 4, 8, 16] {
            let name = format!("{family}test.{cpu}x");
            let offerings: Vec<Value> = ["zone-a", "zone-b", "zone-c"]
                .iter()
                .map(|z| json!({"zone": z, "capacityType": "on-demand", "price": price_per_cpu * cpu as f64}))
                .collect();
            types.push(json!({
                "name": name,
                "capacity": {"cpu": cpu.to_string(), "memory": format!("{}Gi", cpu * gib_per_cpu), "pods": "110"},
                "labels": {"kubernetes.io/arch": "amd64", "kubernetes.io/os": "linux", "purser.dev/instance-family": format!("{family}test")},
                "offerings": offerings,
            }));
        }
    }
    let file = json!({"region": "test", "reservation": "none", "instanceTypes": types});
    let spec: purser_cloudprovider::CatalogFile = serde_json::from_value(file).expect("catalog file");
    Catalog::from_spec(spec).expect("catalog")
}

/// A NodePool named `name` with no requirements beyond on-demand.
pub fn nodepool(name: &str, extra: Value) -> Value {
    let mut pool = json!({
        "apiVersion": "purser.dev/v1", "kind": "NodePool",
        "metadata": {"name": name},
        "spec": {"template": {"spec": {"requirements": [
            {"key": "purser.dev/capacity-type", "operator": "In", "values": ["on-demand"]}]}}}
    });
    merge(&mut pool, extra);
    pool
}

/// A pod owned by a ReplicaSet with one container requesting `cpu` and `memory`.
pub fn pod(namespace: &str, name: &str, cpu: &str, memory: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "rs-uid", "controller": true}]},
        "spec": {"containers": [{"name": "main", "image": "busybox",
            "resources": {"requests": {"cpu": cpu, "memory": memory}}}]}
    })
}

/// JSON merge of `patch` into `target` (objects merged, everything else replaced).
pub fn merge(target: &mut Value, patch: Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                merge(t.entry(k).or_insert(Value::Null), v);
            }
        }
        (t, p) => *t = p,
    }
}
