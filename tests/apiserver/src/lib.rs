//! An in-process Kubernetes API server for Purser's controller tests.
//!
//! It speaks the real HTTP/JSON protocol on 127.0.0.1, so the real `kube::Client`, watchers,
//! controllers, event recorders, finalizer helpers and `kube-lease-manager` run against it
//! unmodified. Data flow: `handlers` (HTTP) → `path` (what is addressed) → `writes` /
//! `eviction` (semantics, with `schema`, `cel`, `fields`, `patch`) → `store` (objects,
//! resourceVersions, history) → `watch` (event streams). See docs/test-apiserver.md for what
//! it supports and where it differs from a real kube-apiserver.
//!
//! ```no_run
//! # async fn demo() {
//! let server = purser_test_apiserver::TestApiServer::start().await;
//! let client: kube::Client = server.client();
//! # let _ = client;
//! # }
//! ```

mod cel;
mod discovery;
pub mod error;
mod eviction;
mod fields;
mod handlers;
mod patch;
mod path;
mod render;
mod resources;
mod schema;
mod selectors;
mod server;
mod store;
mod strategic;
mod watch;
mod writes;

pub use error::ApiError;
pub use server::{CrdSource, InstallError, Options, RequestRecord, TestApiServer};
