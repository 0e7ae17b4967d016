//! Watch streams: newline-delimited JSON `WatchEvent`s (ADDED, MODIFIED, DELETED, BOOKMARK,
//! ERROR) from a resourceVersion, like the real server's chunked watch responses.
//!
//! In: a `WatchRequest` and the store's history plus its live change broadcast. Out: a byte
//! stream ending at `timeoutSeconds`, when the server becomes unavailable, or after an
//! ERROR 410 for a resourceVersion older than the retained history.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use futures::Stream;
use serde_json::{Value, json};
use tokio::sync::{broadcast, watch};
use tokio::time::{Instant, Interval};

use crate::error::ApiError;
use crate::path::Target;
use crate::render::Rendering;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::store::{Change, ChangeType, Replay, Store};

/// What a `watch=true` request asked for.
#[derive(Debug, Clone)]
pub struct WatchRequest {
    /// Collection watched.
    pub target: Target,
    /// `labelSelector`.
    pub labels: LabelSelector,
    /// `fieldSelector`.
    pub fields: FieldSelector,
    /// `resourceVersion`; `None` for "" or "0" (start with the current state).
    pub resource_version: Option<u64>,
    /// `allowWatchBookmarks=true`.
    pub bookmarks: bool,
    /// `sendInitialEvents=true` (streaming list).
    pub send_initial_events: bool,
    /// `timeoutSeconds`.
    pub timeout: Duration,
    /// Interval between BOOKMARK events.
    pub bookmark_interval: Duration,
    /// Whole objects or `PartialObjectMetadata`.
    pub rendering: Rendering,
}

struct WatchState {
    request: WatchRequest,
    pending: VecDeque<Bytes>,
    receiver: Option<broadcast::Receiver<Arc<Change>>>,
    progress: u64,
    deadline: Instant,
    bookmarks: Interval,
    epoch: watch::Receiver<u64>,
}

/// The event stream for `request`, set up under the store lock so no change is missed.
pub fn start(
    store: &Store,
    request: WatchRequest,
    epoch: watch::Receiver<u64>,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    let mut pending = VecDeque::new();
    let replay = match request.resource_version {
        Some(rv) if !request.send_initial_events => store.changes_since(rv).map(|r| (r, rv)),
        _ => {
            initial_events(store, &request, &mut pending);
            let replay = Replay {
                history: Vec::new(),
                receiver: store.subscribe(),
            };
            Some((replay, store.current_rv()))
        }
    };
    let (receiver, progress) = match replay {
        Some((replay, rv)) => {
            for change in replay.history {
                pending.extend(event_for(&request, &change));
            }
            (Some(replay.receiver), rv)
        }
        None => {
            let rv = request.resource_version.unwrap_or_default();
            pending.push_back(gone(rv, store.compacted_rv()));
            (None, rv)
        }
    };
    let interval = request.bookmark_interval.max(Duration::from_millis(10));
    let state = WatchState {
        deadline: Instant::now() + request.timeout,
        bookmarks: tokio::time::interval_at(Instant::now() + interval, interval),
        request,
        pending,
        receiver,
        progress,
        epoch,
    };
    futures::stream::unfold(state, next_chunk)
}

fn initial_events(store: &Store, request: &WatchRequest, pending: &mut VecDeque<Bytes>) {
    let target = &request.target;
    for object in store.list(&target.resource.key(), target.namespace.as_deref()) {
        if request.labels.matches_object(object) && request.fields.matches(object) {
            pending.push_back(line("ADDED", request.rendering.object(object, target)));
        }
    }
    if request.send_initial_events {
        let mut bookmark = bookmark(target, store.current_rv());
        bookmark["metadata"]["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        pending.push_back(line("BOOKMARK", bookmark));
    }
}

async fn next_chunk(mut state: WatchState) -> Option<(Result<Bytes, Infallible>, WatchState)> {
    loop {
        if let Some(chunk) = state.pending.pop_front() {
            return Some((Ok(chunk), state));
        }
        let receiver = state.receiver.as_mut()?;
        tokio::select! {
            _ = tokio::time::sleep_until(state.deadline) => return None,
            _ = state.epoch.changed() => return None,
            _ = state.bookmarks.tick(), if state.request.bookmarks => {
                let chunk = line("BOOKMARK", bookmark(&state.request.target, state.progress));
                return Some((Ok(chunk), state));
            }
            received = receiver.recv() => match received {
                Ok(change) => {
                    state.progress = change.rv;
                    state.pending.extend(event_for(&state.request, &change));
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    state.receiver = None;
                    state.pending.push_back(gone(state.progress, state.progress));
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            },
        }
    }
}

/// The watch event `change` produces for `request`, if any: selectors are applied to the
/// old and new state, so an object that stops matching is reported as DELETED.
fn event_for(request: &WatchRequest, change: &Change) -> Option<Bytes> {
    let target = &request.target;
    if change.key.resource != target.resource.key() {
        return None;
    }
    if target.namespace.as_deref().is_some_and(|ns| ns != change.key.namespace) {
        return None;
    }
    let selected = |o: &Value| request.labels.matches_object(o) && request.fields.matches(o);
    let now = selected(&change.object);
    let before = change.previous.as_ref().is_some_and(&selected);
    let kind = match (change.kind, before, now) {
        (ChangeType::Added, _, true) => "ADDED",
        (ChangeType::Deleted, _, true) => "DELETED",
        (ChangeType::Modified, true, true) => "MODIFIED",
        (ChangeType::Modified, false, true) => "ADDED",
        (ChangeType::Modified, true, false) => "DELETED",
        _ => return None,
    };
    Some(line(kind, request.rendering.object(&change.object, target)))
}

fn bookmark(target: &Target, rv: u64) -> Value {
    json!({
        "kind": target.resource.kind,
        "apiVersion": target.api_version(),
        "metadata": {"resourceVersion": rv.to_string()},
    })
}

fn gone(requested: u64, oldest: u64) -> Bytes {
    let error = ApiError::Gone(format!("too old resource version: {requested} ({oldest})"));
    line("ERROR", error.status())
}

fn line(kind: &str, object: Value) -> Bytes {
    let mut text = json!({"type": kind, "object": object}).to_string();
    text.push('\n');
    Bytes::from(text)
}
