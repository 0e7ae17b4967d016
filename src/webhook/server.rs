//! The webhook's HTTPS server: axum routes (`POST /validate`, `GET /healthz`) served over
//! rustls (ring), and the loop that keeps its [`ClusterView`] current.
//!
//! In: a certificate and key (PEM files), settings, the catalog, an API client. Out: answers
//! on the bound address until the returned task is dropped.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DynamicObject};
use kube::discovery::ApiResource;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use super::{ClusterView, Settings};
use crate::catalog::Catalog;

/// What every request shares.
pub struct Shared {
    /// Policies and failure mode.
    pub settings: Settings,
    /// The catalog cost estimates price from.
    pub catalog: Catalog,
    /// The cluster as last seen.
    pub view: RwLock<ClusterView>,
}

/// The routes.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/validate", post(validate))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(shared)
}

async fn validate(State(shared): State<Arc<Shared>>, body: Bytes) -> impl IntoResponse {
    let answer = {
        let view = shared.view.read().unwrap_or_else(|e| e.into_inner());
        super::review(&body, &shared.settings, &view, &shared.catalog)
    };
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(answer.body))
}

/// The rustls server settings for a PEM certificate chain and key, naming the file that is
/// wrong when one is.
pub fn tls_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .map_err(|e| format!("--tls-cert-file {}: not a PEM certificate chain ({e})", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("--tls-cert-file {}: holds no certificate", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("--tls-key-file {}: not a PEM private key ({e})", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS settings: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("--tls-cert-file/--tls-key-file: the key does not fit the certificate ({e})"))
}

/// Bind `addr` and serve `app` over TLS until the task is dropped; returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    tls: rustls::ServerConfig,
    app: Router,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = TowerToHyperService::new(app);
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok((bound, task))
}

/// How often the webhook re-reads NodePools, CostBudgets and Namespaces.
pub const REFRESH: std::time::Duration = std::time::Duration::from_secs(2);

/// Keep `shared.view` current: read NodePools, CostBudgets and Namespaces every [`REFRESH`]
/// (a failed read keeps the previous view and is logged). The task ends when dropped.
pub fn watch(client: kube::Client, shared: Arc<Shared>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match read_view(&client).await {
                Ok(view) => install(&shared, view),
                Err(e) => tracing::warn!(error = %e, "webhook: cannot read the cluster; keeping the last view"),
            }
            tokio::time::sleep(REFRESH).await;
        }
    })
}

/// Make `view` the current one: its CostBudgets are loaded here, outside the lock and once per
/// view (a CostBudget that stops loading is logged once), and the estimates are kept while the
/// NodePools stay the same.
pub fn install(shared: &Shared, mut view: ClusterView) {
    let errors = view.loaded_budgets(&shared.catalog).errors.clone();
    let mut current = shared.view.write().unwrap_or_else(|e| e.into_inner());
    let known = current.loaded.get().map(|l| l.errors.as_slice()).unwrap_or_default();
    for error in errors.iter().filter(|e| !known.contains(*e)) {
        tracing::warn!(error = %error, "webhook: a CostBudget does not load");
    }
    if view.pools == current.pools {
        view.estimates = current.estimates.clone();
    }
    *current = view;
}

/// One read of what the webhook judges with.
pub async fn read_view(client: &kube::Client) -> Result<ClusterView, kube::Error> {
    let purser = |kind: &str, plural: &str| ApiResource {
        group: "purser.dev".into(),
        version: "v1".into(),
        api_version: "purser.dev/v1".into(),
        kind: kind.into(),
        plural: plural.into(),
    };
    let list = |kind: &str, plural: &str| {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &purser(kind, plural));
        async move { api.list(&Default::default()).await }
    };
    // List items carry no apiVersion and kind; the loader needs them.
    let as_values = |items: Vec<DynamicObject>, kind: &str| -> Vec<serde_json::Value> {
        items
            .iter()
            .filter_map(|o| serde_json::to_value(o).ok())
            .map(|mut v| {
                v["apiVersion"] = "purser.dev/v1".into();
                v["kind"] = kind.into();
                v
            })
            .collect()
    };
    let pools = as_values(list("NodePool", "nodepools").await?.items, "NodePool");
    let budgets = as_values(list("CostBudget", "costbudgets").await?.items, "CostBudget");
    let namespaces = Api::<Namespace>::all(client.clone())
        .list(&Default::default())
        .await?
        .items
        .into_iter()
        .filter_map(|n| Some((n.metadata.name?, n.metadata.labels.unwrap_or_default())))
        .collect();
    Ok(ClusterView {
        pools,
        budgets,
        namespaces,
        ..ClusterView::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn shared() -> Shared {
        Shared {
            settings: Settings {
                policies: Default::default(),
                fail_open: true,
            },
            catalog: Catalog::embedded(),
            view: RwLock::new(ClusterView::default()),
        }
    }

    #[test]
    fn an_installed_view_has_its_budgets_loaded_and_keeps_estimates_while_the_pools_stay() {
        let shared = shared();
        let budget = json!({"apiVersion": "purser.dev/v1", "kind": "CostBudget", "metadata": {"name": "b"},
            "spec": {"selector": {"namespaces": ["x"]}, "maxHourlyCost": 2.0}, "status": {"runRate": 0.5}});
        shared
            .view
            .read()
            .unwrap()
            .estimates
            .lock()
            .unwrap()
            .insert("shape".into(), Some(0.1));
        install(
            &shared,
            ClusterView {
                budgets: vec![budget],
                ..ClusterView::default()
            },
        );
        let view = shared.view.read().unwrap();
        let loaded = view.loaded.get().expect("loaded at install");
        assert_eq!(loaded.views.len(), 1);
        assert_eq!(loaded.views[0].run_rate, 0.5);
        assert!(view.estimates.lock().unwrap().contains_key("shape"));
    }
}
