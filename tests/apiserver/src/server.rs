//! `TestApiServer`: binds 127.0.0.1:0, serves the API with axum on a background task, and
//! gives tests a `kube::Client` plus knobs (CRDs, compaction, availability, request log).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::ApiError;
use crate::handlers;
use crate::path::Target;
use crate::store::Store;
use crate::writes::{self, WriteParams};

/// Tunables of a test server.
#[derive(Debug, Clone)]
pub struct Options {
    /// Interval between BOOKMARK events on watches that allow them (real servers: ~1 min).
    pub bookmark_interval: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            bookmark_interval: Duration::from_secs(1),
        }
    }
}

/// One request the server received.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestRecord {
    /// HTTP method, e.g. `PATCH`.
    pub method: String,
    /// URL path.
    pub path: String,
    /// Raw query string.
    pub query: String,
    /// `Content-Type` header, empty if absent.
    pub content_type: String,
    /// `Accept` header, empty if absent.
    pub accept: String,
}

/// State shared by the handlers and the `TestApiServer` handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) store: Mutex<Store>,
    pub(crate) available: AtomicBool,
    pub(crate) epoch: watch::Sender<u64>,
    pub(crate) log: Mutex<Vec<RequestRecord>>,
    pub(crate) options: Options,
}

impl Shared {
    pub(crate) fn record(&self, record: RequestRecord) {
        if let Ok(mut log) = self.log.lock() {
            log.push(record);
        }
    }

    fn end_watches(&self) {
        self.epoch.send_modify(|e| *e += 1);
    }
}

/// Why CRDs could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The YAML or JSON did not parse.
    #[error("cannot parse CRD document: {0}")]
    Parse(String),
    /// The API rejected the CRD.
    #[error("CRD rejected: {0}")]
    Rejected(#[from] ApiError),
}

/// Something `install_crds` accepts: YAML/JSON text (possibly several `---` documents), a
/// JSON value, or a typed `CustomResourceDefinition`.
pub trait CrdSource {
    /// The CRD documents this source holds.
    fn documents(&self) -> Result<Vec<Value>, InstallError>;
}

impl CrdSource for str {
    fn documents(&self) -> Result<Vec<Value>, InstallError> {
        use serde::Deserialize;
        let mut docs = Vec::new();
        for doc in serde_norway::Deserializer::from_str(self) {
            let value = Value::deserialize(doc).map_err(|e| InstallError::Parse(e.to_string()))?;
            if !value.is_null() {
                docs.push(value);
            }
        }
        Ok(docs)
    }
}

impl CrdSource for &str {
    fn documents(&self) -> Result<Vec<Value>, InstallError> {
        (**self).documents()
    }
}

impl CrdSource for String {
    fn documents(&self) -> Result<Vec<Value>, InstallError> {
        self.as_str().documents()
    }
}

impl CrdSource for Value {
    fn documents(&self) -> Result<Vec<Value>, InstallError> {
        Ok(vec![self.clone()])
    }
}

impl CrdSource for k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition {
    fn documents(&self) -> Result<Vec<Value>, InstallError> {
        serde_json::to_value(self)
            .map(|v| vec![v])
            .map_err(|e| InstallError::Parse(e.to_string()))
    }
}

/// An in-process Kubernetes API server; dropping it ends the server and its watches.
#[derive(Debug)]
pub struct TestApiServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl TestApiServer {
    /// Start with default options on 127.0.0.1 and a free port.
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    /// Start with `options`. Panics only if no loopback port can be bound.
    pub async fn start_with(options: Options) -> Self {
        let (epoch, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::default()),
            available: AtomicBool::new(true),
            epoch,
            log: Mutex::new(Vec::new()),
            options,
        });
        create_default_namespaces(&shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0 for the test API server");
        let addr = listener.local_addr().expect("local address of the test API server");
        let app = axum::Router::new()
            .fallback(handlers::handle)
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::warn!(%error, "test API server stopped");
            }
        });
        TestApiServer { shared, addr, task }
    }

    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A `kube::Config` for this server, as production would build it (kube's default retry
    /// of 429/503/504 responses on).
    pub fn config(&self) -> kube::Config {
        let uri = self.url().parse().expect("the server URL is a valid URI");
        let mut config = kube::Config::new(uri);
        config.default_namespace = "default".to_owned();
        config
    }

    /// A `kube::Client` talking to this server, with kube's default retry layer off so that
    /// 429 (eviction refused) and 503 (`set_available(false)`) reach the caller at once
    /// instead of being retried up to 15 times with exponential backoff. Build a client from
    /// `config()` to keep the retries.
    pub fn client(&self) -> kube::Client {
        let mut config = self.config();
        config.default_retry = false;
        kube::Client::try_from(config).expect("a kube client for the test API server")
    }

    /// Install CRDs, as a POST to `apiextensions.k8s.io/v1/customresourcedefinitions` would.
    /// Returns the names installed.
    pub fn install_crds<C: CrdSource>(&self, crds: &[C]) -> Result<Vec<String>, InstallError> {
        let mut names = Vec::new();
        for source in crds {
            for doc in source.documents()? {
                names.push(self.install_one(doc)?);
            }
        }
        Ok(names)
    }

    fn install_one(&self, crd: Value) -> Result<String, InstallError> {
        let mut store = self.store();
        let resource = store
            .resource("apiextensions.k8s.io", "v1", "customresourcedefinitions")
            .cloned()
            .ok_or_else(|| ApiError::Internal("CRD resource missing".to_owned()))?;
        let target = Target {
            resource,
            version: "v1".to_owned(),
            namespace: None,
            name: None,
            subresource: None,
        };
        let params = WriteParams {
            manager: "install-crds".to_owned(),
            ..Default::default()
        };
        let created = writes::create(&mut store, &target, crd, &params)?;
        Ok(created
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned())
    }

    /// Forget the watch history: a watch from any earlier resourceVersion gets 410 Gone.
    pub fn compact(&self) {
        self.store().compact();
    }

    /// Make the server answer 503 to every request and end open watches (`false`), or
    /// serve normally again (`true`).
    pub fn set_available(&self, available: bool) {
        self.shared.available.store(available, Ordering::SeqCst);
        if !available {
            self.shared.end_watches();
        }
    }

    /// End every open watch now (clients see the stream close and re-watch).
    pub fn close_watches(&self) {
        self.shared.end_watches();
    }

    /// Every request received so far, oldest first.
    pub fn request_log(&self) -> Vec<RequestRecord> {
        self.shared.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// How many requests had `method` and a path containing `path_part`.
    pub fn count(&self, method: &str, path_part: &str) -> usize {
        self.request_log()
            .iter()
            .filter(|r| r.method == method && r.path.contains(path_part))
            .count()
    }

    /// The latest resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.store().current_rv()
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.shared
            .store
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for TestApiServer {
    fn drop(&mut self) {
        self.shared.end_watches();
        self.task.abort();
    }
}

fn create_default_namespaces(shared: &Shared) {
    let Ok(mut store) = shared.store.lock() else {
        return;
    };
    let Some(resource) = store.resource("", "v1", "namespaces").cloned() else {
        return;
    };
    let target = Target {
        resource,
        version: "v1".to_owned(),
        namespace: None,
        name: None,
        subresource: None,
    };
    let params = WriteParams {
        manager: "test-apiserver".to_owned(),
        ..Default::default()
    };
    for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        if let Err(error) = writes::create(&mut store, &target, namespace, &params) {
            tracing::warn!(%error, name, "cannot create default namespace");
        }
    }
}
