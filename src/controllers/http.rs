//! `/metrics`, `/healthz` and `/readyz` (axum), served on every replica, leader or not.
//!
//! In: the metrics and a readiness flag (set once the watch caches are synced). Out: HTTP
//! answers on the configured address.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;

use super::metrics::Metrics;

/// What the probe server reads.
#[derive(Clone)]
pub struct Probes {
    /// Metrics to expose.
    pub metrics: Arc<Metrics>,
    /// True once the caches are synced.
    pub ready: Arc<AtomicBool>,
}

/// Bind `addr` and serve until the task is dropped; returns the bound address.
pub async fn serve(addr: SocketAddr, probes: Probes) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(probes);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "probe server stopped");
        }
    });
    Ok((bound, task))
}

async fn metrics(State(p): State<Probes>) -> impl IntoResponse {
    (
        [(
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        p.metrics.encode(),
    )
}

async fn readyz(State(p): State<Probes>) -> impl IntoResponse {
    if p.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "caches not synced")
    }
}
